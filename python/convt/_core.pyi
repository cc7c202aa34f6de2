"""Type stub of convt._core, the private pybind11 extension (src/bindings.cpp).

Use the convt package instead: it converts arrays to one C-contiguous float32 or float64 dtype
before calling here, and the functions below raise TypeError or ValueError for anything else.
"""

# The seed's functions keep the question's argument names (X, W), as the binding does.
# ruff: noqa: N803

from collections.abc import Sequence
from typing import Any, overload

from numpy.typing import ArrayLike, NDArray

__version__: str

class Geometry:
    """The validated geometry of one convolution or transposed convolution call."""

    @property
    def name(self) -> str: ...
    @property
    def transposed(self) -> bool: ...
    @property
    def algorithms(self) -> dict[str, str]:
        """The path each kernel takes: conv_forward, conv_backward_input, conv_backward_weight."""
    @property
    def dims(self) -> int: ...
    @property
    def batched(self) -> bool: ...
    @property
    def batch(self) -> int: ...
    @property
    def groups(self) -> int: ...
    @property
    def x_channels(self) -> int: ...
    @property
    def y_channels(self) -> int: ...
    @property
    def x_size(self) -> tuple[int, ...]: ...
    @property
    def y_size(self) -> tuple[int, ...]: ...
    @property
    def kernel(self) -> tuple[int, ...]: ...
    @property
    def stride(self) -> tuple[int, ...]: ...
    @property
    def padding_before(self) -> tuple[int, ...]: ...
    @property
    def padding_after(self) -> tuple[int, ...]: ...
    @property
    def dilation(self) -> tuple[int, ...]: ...
    @property
    def output_padding(self) -> tuple[int, ...]: ...
    @property
    def input_size(self) -> tuple[int, ...]:
        """The input's spatial sizes."""
    @property
    def output_size(self) -> tuple[int, ...]:
        """The output's spatial sizes."""
    @property
    def multiply_adds(self) -> float:
        """The convolution's multiply-adds, which each of its three kernels performs."""
    @property
    def padding_mode(self) -> str: ...
    @property
    def output_size_first(self) -> tuple[int, ...]:
        """A transposed convolution's smallest output size per dimension that output_size takes."""
    @property
    def output_size_last(self) -> tuple[int, ...]:
        """A transposed convolution's largest output size per dimension that output_size takes."""
    @property
    def input_shape(self) -> tuple[int, ...]: ...
    @property
    def output_shape(self) -> tuple[int, ...]: ...
    @property
    def weight_shape(self) -> tuple[int, ...]: ...
    def receptive_field(self, dim: int, y_begin: int, y_end: int) -> tuple[int, int, int, int, int]:
        """``(begin, end, padding_before, padding_after, output_padding)``: the x that
        ``y[y_begin:y_end]`` reads along spatial dimension ``dim``, and how a chunk pads it."""
    def y_split(self, dim: int, x: int) -> int:
        """The first output whose receptive field is centred at or after x."""
    def x_split(self, dim: int, y: int) -> int:
        """The centre of output y's receptive field: where a split of y before y falls in x."""

def conv_geometry(
    dims: int,
    input_shape: Sequence[int],
    weight_shape: Sequence[int],
    stride: Sequence[int],
    padding: Sequence[int],
    padding_after: Sequence[int],
    padding_rule: str,
    dilation: Sequence[int],
    groups: int,
    padding_mode: str = "zeros",
) -> Geometry: ...
def conv_transpose_geometry(
    dims: int,
    input_shape: Sequence[int],
    weight_shape: Sequence[int],
    stride: Sequence[int],
    padding: Sequence[int],
    padding_after: Sequence[int],
    padding_rule: str,
    output_padding: Sequence[int],
    groups: int,
    dilation: Sequence[int],
    output_size: Sequence[int],
    padding_mode: str = "zeros",
) -> Geometry: ...
def layer_weight_shape(
    transposed: bool,
    in_channels: int,
    out_channels: int,
    kernel_size: Sequence[int],
    groups: int = 1,
) -> tuple[int, ...]:
    """PyTorch's weight shape of a layer with these channels and kernel."""

class Plan:
    """A geometry planned once: the algorithm each kernel takes and, when ``keep_weights`` is
    set, the weights packed for them, reused while a call's weight is bitwise the same."""

    @overload
    def __init__(self, geometry: Geometry) -> None: ...
    @overload
    def __init__(self, geometry: Geometry, algorithms: dict[str, str]) -> None:
        """Takes the named algorithm for each kernel given (ValueError where it cannot compute
        that kernel); the others take their fastest."""
    @property
    def geometry(self) -> Geometry: ...
    @property
    def algorithms(self) -> dict[str, str]:
        """The path each kernel takes: conv_forward, conv_backward_input, conv_backward_weight."""
    @property
    def keep_weights(self) -> bool: ...
    @keep_weights.setter
    def keep_weights(self, keep: bool) -> None: ...
    @property
    def kept_bytes(self) -> int: ...
    @property
    def kept_packings(self) -> int: ...

def forward(
    plan: Plan | Geometry,
    input: ArrayLike,
    weight: ArrayLike,
    bias: ArrayLike | None = None,
    out: NDArray[Any] | None = None,
) -> NDArray[Any]: ...
def backward(
    plan: Plan | Geometry,
    grad_output: ArrayLike,
    input: ArrayLike,
    weight: ArrayLike,
    need_input: bool,
    need_weight: bool,
    need_bias: bool,
    out_input: NDArray[Any] | None = None,
    out_weight: NDArray[Any] | None = None,
    out_bias: NDArray[Any] | None = None,
) -> tuple[NDArray[Any] | None, NDArray[Any] | None, NDArray[Any] | None]: ...

class Matrix:
    """A 2-D float64 matrix (convt::Matrix<double>); NumPy reads it through the buffer protocol."""

    @overload
    def __init__(self, rows: int, cols: int) -> None: ...
    @overload
    def __init__(self, values: ArrayLike) -> None: ...
    def __buffer__(self, flags: int, /) -> memoryview: ...
    @property
    def rows(self) -> int: ...
    @property
    def cols(self) -> int: ...
    @property
    def shape(self) -> tuple[int, int]: ...
    def __getitem__(self, ij: tuple[int, int], /) -> float: ...
    def __setitem__(self, ij: tuple[int, int], value: float, /) -> None: ...
    def convolute(self, kernel: Matrix, strides: Sequence[int] = (1, 1)) -> Matrix: ...
    def convolute_full(self, kernel: Matrix, strides: Sequence[int] = (1, 1)) -> Matrix: ...
    def rotate_180(self) -> Matrix: ...

class Matrix32:
    """A 2-D float32 matrix (convt::Matrix<float>); NumPy reads it through the buffer protocol."""

    @overload
    def __init__(self, rows: int, cols: int) -> None: ...
    @overload
    def __init__(self, values: ArrayLike) -> None: ...
    def __buffer__(self, flags: int, /) -> memoryview: ...
    @property
    def rows(self) -> int: ...
    @property
    def cols(self) -> int: ...
    @property
    def shape(self) -> tuple[int, int]: ...
    def __getitem__(self, ij: tuple[int, int], /) -> float: ...
    def __setitem__(self, ij: tuple[int, int], value: float, /) -> None: ...
    def convolute(self, kernel: Matrix32, strides: Sequence[int] = (1, 1)) -> Matrix32: ...
    def convolute_full(self, kernel: Matrix32, strides: Sequence[int] = (1, 1)) -> Matrix32: ...
    def rotate_180(self) -> Matrix32: ...

# The seed's single-channel functions over 2-D float32 or float64 arrays.
def convolute(X: ArrayLike, W: ArrayLike, strides: Sequence[int] = (1, 1)) -> NDArray[Any]: ...
def convolute_full(X: ArrayLike, W: ArrayLike, strides: Sequence[int] = (1, 1)) -> NDArray[Any]: ...
def rotate_180(W: ArrayLike) -> NDArray[Any]: ...
def cnn_forward(
    weight: ArrayLike, prev: ArrayLike, strides: Sequence[int] = (1, 1)
) -> NDArray[Any]: ...
def cnn_backward(
    a_prev: ArrayLike, dz: ArrayLike, kernel: ArrayLike, strides: Sequence[int] = (1, 1)
) -> tuple[NDArray[Any], NDArray[Any]]: ...
def fcn_forward(
    weight: ArrayLike, prev: ArrayLike, strides: Sequence[int] = (1, 1)
) -> NDArray[Any]: ...
def fcn_backward(
    a_prev: ArrayLike, dz: ArrayLike, kernel: ArrayLike, strides: Sequence[int] = (1, 1)
) -> tuple[NDArray[Any], NDArray[Any]]: ...

# Threads, micro-kernels and workspace.
def get_num_threads() -> int: ...
def set_num_threads(threads: int) -> None: ...
def get_isa() -> str: ...
def set_isa(isa: str) -> None: ...
def supported_isas() -> list[str]: ...
def gemm_config() -> dict[str, Any]:
    """The current ISA, the caches read (l1d, l2, l2_ways, l3, source) and, per dtype, the
    micro-kernel's tile and the cache blocking (depth, rows, cols) derived from them."""

def gemm(
    a: NDArray[Any], b: NDArray[Any], out: NDArray[Any] | None = None, accumulate: bool = False
) -> NDArray[Any]:
    """out = a @ b (out += a @ b when accumulate) for 2-D float arrays of any strides."""

def fma_peak_gflops(seconds: float) -> float: ...
def workspace_bytes() -> int: ...
def floor_probe(a: NDArray[Any], b: NDArray[Any]) -> NDArray[Any]: ...
def release_workspace() -> None: ...
def kept_output_bytes() -> int: ...
