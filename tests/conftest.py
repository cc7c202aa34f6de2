"""Shared test set-up: the hypothesis profile, random convolution configurations, tolerances.

The hypothesis profile ``convt`` (loaded by default) is derandomized, so every run, locally and in
CI, tries the same examples; ``CONVT_HYPOTHESIS_PROFILE=explore`` draws fresh random examples
instead and ``CONVT_HYPOTHESIS_SCALE=10`` runs ten times as many, for a longer search.

``conv_case_strategy`` draws a :class:`ConvCase`: the geometry of one call of
``convt.functional`` with its arrays, the keyword arguments for convt and for PyTorch, and the
plain-loop reference result from ``tests/reference.py``. The test modules import these helpers
with ``from conftest import ...`` (tests/ is on sys.path as pytest's rootdir-relative test
directory, as it is for ``import reference``).
"""

from __future__ import annotations

import contextlib
import math
import os
import warnings
from dataclasses import dataclass
from functools import cached_property

import convt
import numpy as np
import pytest
import reference
from convt import functional
from hypothesis import settings
from hypothesis import strategies as st

# When a property fails, hypothesis's pytest plugin imports hypothesis.extra._patching to print
# an @example patch; with the libcst of some environments that import warns (a DeprecationWarning
# from mypy_extensions), which filterwarnings=error turns into an INTERNALERROR that hides the
# failure. Importing it once here, with that warning ignored, keeps failures readable.
with warnings.catch_warnings(), contextlib.suppress(ImportError):
    warnings.simplefilter("ignore", DeprecationWarning)
    import hypothesis.extra._patching  # noqa: F401

settings.register_profile("convt", derandomize=True, deadline=None, database=None)
settings.register_profile("explore", derandomize=False, deadline=None, database=None)
settings.load_profile(os.environ.get("CONVT_HYPOTHESIS_PROFILE", "convt"))

EXAMPLE_SCALE = float(os.environ.get("CONVT_HYPOTHESIS_SCALE", "1"))

# Relative tolerance per computed dtype; the absolute one is this times the largest magnitude of
# the expected array (at least 1), which is the scale rounding errors of a sum of products have.
TOLERANCE = {np.dtype(np.float32): 1e-4, np.dtype(np.float64): 1e-10}


def examples(count: int) -> int:
    """The number of examples a property runs: ``count`` times ``CONVT_HYPOTHESIS_SCALE``."""
    return max(1, round(count * EXAMPLE_SCALE))


def assert_close(actual, expected, dtype, what="result"):
    """``actual`` has ``dtype``, the shape of ``expected`` and its values within TOLERANCE."""
    dtype = np.dtype(dtype)
    assert isinstance(actual, np.ndarray), f"{what}: expected an ndarray, got {type(actual)}"
    assert actual.dtype == dtype, f"{what}: dtype {actual.dtype}, expected {dtype}"
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    tol = TOLERANCE[dtype]
    scale = max(1.0, float(np.abs(expected).max(initial=0.0)))
    np.testing.assert_allclose(actual, expected, rtol=tol, atol=tol * scale, err_msg=what)


def same_pads(kernel, dilation) -> tuple[tuple[int, int], ...]:
    """The (before, after) padding of padding='same': PyTorch puts the odd element after."""
    totals = [d * (k - 1) for k, d in zip(kernel, dilation, strict=True)]
    return tuple((t // 2, t - t // 2) for t in totals)


@dataclass(frozen=True)
class ConvCase:
    """One call of a convt.functional convolution or transposed convolution, drawn at random.

    Spatial per-dimension values are tuples of ``dims`` ints; ``padding`` is what is passed to
    convt (an int, a tuple, 'same' or 'valid'), ``pads`` the (before, after) pairs it means.
    ``output_padding`` is the effective one; ``output_size`` (transposed only) is passed instead
    of it when set.
    """

    transposed: bool
    dims: int
    batch: int | None  # None: unbatched input (C, *spatial)
    groups: int
    channels_in: int  # channels of the layer's input
    channels_out: int  # channels of the layer's output
    kernel: tuple[int, ...]
    size: tuple[int, ...]  # spatial size of the layer's input
    stride: int | tuple[int, ...]
    padding: int | tuple[int, ...] | str
    dilation: int | tuple[int, ...]
    output_padding: tuple[int, ...]
    output_size: tuple[int, ...] | None
    bias: bool
    dtype: np.dtype
    layout: str  # how the input array is laid out: 'C', 'F' or 'strided'
    seed: int

    # ---- geometry ----

    def per_dim(self, value) -> tuple[int, ...]:
        return tuple(value) if isinstance(value, tuple) else (value,) * self.dims

    @property
    def strides(self) -> tuple[int, ...]:
        return self.per_dim(self.stride)

    @property
    def dilations(self) -> tuple[int, ...]:
        return self.per_dim(self.dilation)

    @property
    def pads(self) -> tuple[tuple[int, int], ...]:
        if self.padding == "valid":
            return ((0, 0),) * self.dims
        if self.padding == "same":
            return same_pads(self.kernel, self.dilations)
        return tuple((p, p) for p in self.per_dim(self.padding))

    @property
    def name(self) -> str:
        return f"conv_transpose{self.dims}d" if self.transposed else f"conv{self.dims}d"

    @property
    def input_shape(self) -> tuple[int, ...]:
        batch = () if self.batch is None else (self.batch,)
        return (*batch, self.channels_in, *self.size)

    @property
    def weight_shape(self) -> tuple[int, ...]:
        if self.transposed:
            return (self.channels_in, self.channels_out // self.groups, *self.kernel)
        return (self.channels_out, self.channels_in // self.groups, *self.kernel)

    @property
    def output_spatial(self) -> tuple[int, ...]:
        if self.transposed:
            return reference.conv_transpose_output_size(
                self.size, self.kernel, self.strides, self.pads, self.output_padding, self.dilations
            )
        return reference.conv_output_size(
            self.size, self.kernel, self.strides, self.pads, self.dilations
        )

    @property
    def output_shape(self) -> tuple[int, ...]:
        batch = () if self.batch is None else (self.batch,)
        return (*batch, self.channels_out, *self.output_spatial)

    # ---- arrays ----

    @cached_property
    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray]:
        """``(input, weight, bias or None, grad_output)`` in ``dtype``, input laid out as
        ``layout``; values are standard normal (rounded to the dtype, so the float64 reference
        sees exactly what convt sees)."""
        rng = np.random.default_rng(self.seed)

        def normal(shape):
            return rng.standard_normal(shape).astype(self.dtype)

        x = normal(self.input_shape)
        if self.layout == "F":
            x = np.asfortranarray(x)
        elif self.layout == "strided":
            wide = np.zeros((*x.shape[:-1], 2 * x.shape[-1]), self.dtype)
            wide[..., ::2] = x
            x = wide[..., ::2]
        w = normal(self.weight_shape)
        b = normal((self.channels_out,)) if self.bias else None
        dy = normal(self.output_shape)
        return x, w, b, dy

    # ---- keyword arguments ----

    def kwargs(self) -> dict:
        """Keyword arguments of the convt.functional forward call."""
        if not self.transposed:
            return dict(
                stride=self.stride, padding=self.padding, dilation=self.dilation, groups=self.groups
            )
        extra = (
            dict(output_size=self.output_size)
            if self.output_size is not None
            else dict(output_padding=self.output_padding)
        )
        return dict(
            stride=self.stride,
            padding=self.padding,
            groups=self.groups,
            dilation=self.dilation,
            **extra,
        )

    def backward_kwargs(self) -> dict:
        """Keyword arguments of the convt.functional backward call (and of PyTorch's calls)."""
        kwargs = self.kwargs()
        if self.transposed:
            kwargs.pop("output_size", None)
            kwargs["output_padding"] = self.output_padding
        return kwargs

    def forward(self, *, out=None):
        x, w, b, _ = self.arrays
        return getattr(functional, self.name)(x, w, b, out=out, **self.kwargs())

    def backward(self, *, output_mask=(True, True, True), out=None):
        x, w, _, dy = self.arrays
        fn = getattr(functional, f"{self.name}_backward")
        return fn(dy, x, w, output_mask=output_mask, out=out, **self.backward_kwargs())

    # ---- the plain-loop reference (float64) ----

    def _batched(self, a: np.ndarray) -> np.ndarray:
        """``a`` in float64 with a batch axis (the reference takes batched arrays only)."""
        a = a.astype(np.float64)
        return a[None] if self.batch is None else a

    def _unbatched(self, a: np.ndarray) -> np.ndarray:
        return a[0] if self.batch is None else a

    def reference_forward(self) -> np.ndarray:
        x, w, b, _ = self.arrays
        x64 = self._batched(x)
        w64, b64 = w.astype(np.float64), None if b is None else b.astype(np.float64)
        if self.transposed:
            y = reference.conv_transpose_forward(
                x64,
                w64,
                b64,
                self.strides,
                self.pads,
                self.output_padding,
                self.groups,
                self.dilations,
            )
        else:
            y = reference.conv_forward(
                x64, w64, b64, self.strides, self.pads, self.dilations, self.groups
            )
        return self._unbatched(y)

    def reference_backward(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        x, w, _, dy = self.arrays
        x64, dy64 = self._batched(x), self._batched(dy)
        w64 = w.astype(np.float64)
        if self.transposed:
            dx, dw, db = reference.conv_transpose_backward(
                dy64,
                x64,
                w64,
                self.strides,
                self.pads,
                self.output_padding,
                self.groups,
                self.dilations,
            )
        else:
            dx, dw, db = reference.conv_backward(
                dy64, x64, w64, self.strides, self.pads, self.dilations, self.groups
            )
        return self._unbatched(dx), dw, db


def _per_dim_argument(draw, values: tuple[int, ...]):
    """``values`` as convt accepts them: an int when all are equal (sometimes), else a tuple."""
    if len(set(values)) == 1 and draw(st.booleans()):
        return values[0]
    return tuple(values)


@st.composite
def conv_case_strategy(
    draw,
    *,
    transposed: bool | None = None,
    dims: int | None = None,
    dtype=None,
    max_size: int = 4,
    max_channels: int = 3,
    allow_unbatched: bool = True,
    allow_strings: bool = True,
    allow_large: bool = True,
):
    """A random ConvCase: 1-3 dims, stride 1-3, padding 0-2 (int, tuple, 'same', 'valid'),
    dilation 1-3, groups 1-3, output_padding < max(stride, dilation) or output_size, batch 0-3
    or unbatched, bias or not, float32 or float64, C/F/strided input.

    ``max_size`` bounds how far spatial sizes go past the smallest valid one and
    ``max_channels`` the channels per group, to keep the plain-loop reference quick. Half the
    cases (with ``allow_large``) are larger: 6-12 channels per group, 2-4 samples and longer
    sizes, so that convt's lowered GEMM path is taken as well as its path for tiny problems
    (both must agree with the reference on every geometry).
    """
    transposed = draw(st.booleans()) if transposed is None else transposed
    dims = draw(st.integers(1, 3)) if dims is None else dims
    dtype = np.dtype(draw(st.sampled_from([np.float32, np.float64])) if dtype is None else dtype)
    large = allow_large and draw(st.booleans())
    if large:
        low, high = {1: (16, 40), 2: (4, 8), 3: (2, 4)}[dims]
        extras = st.integers(low, high)
        channels = st.integers(6, 12)
        batches = st.integers(2, 4)
    else:
        extras = st.integers(0, max_size if dims < 3 else max(1, max_size // 2))
        channels = st.integers(1, max_channels)
        batches = st.integers(0, 3)
        if allow_unbatched:
            batches = st.one_of(st.none(), batches)

    groups = draw(st.integers(1, 3))
    per_group_in = draw(channels)
    per_group_out = draw(channels)
    batch = draw(batches)
    taps = st.integers(2, 3) if large else st.integers(1, 3)
    kernel = tuple(draw(st.lists(taps, min_size=dims, max_size=dims)))
    strides = tuple(draw(st.lists(st.integers(1, 3), min_size=dims, max_size=dims)))
    dilations = tuple(draw(st.lists(st.integers(1, 3), min_size=dims, max_size=dims)))
    pads = tuple(draw(st.lists(st.integers(0, 2), min_size=dims, max_size=dims)))
    kinds = ["int", "tuple"] + (["same", "valid"] if allow_strings and not transposed else [])
    padding_kind = draw(st.sampled_from(kinds))
    if padding_kind == "same":
        strides = (1,) * dims
        padding = "same"
        pad_pairs = same_pads(kernel, dilations)
    elif padding_kind == "valid":
        padding = "valid"
        pad_pairs = [(0, 0)] * dims
    else:
        if padding_kind == "int":
            pads = (pads[0],) * dims
        padding = _per_dim_argument(draw, pads) if padding_kind == "int" else tuple(pads)
        pad_pairs = [(p, p) for p in pads]

    size, output_padding, output_size = [], [], None
    use_output_size = transposed and draw(st.booleans())
    for k, s, d, (p0, p1) in zip(kernel, strides, dilations, pad_pairs, strict=True):
        span = d * (k - 1) + 1
        extra = draw(extras)
        if transposed:
            op = 0 if use_output_size else draw(st.integers(0, max(s, d) - 1))
            # smallest input size whose output (i-1)*s - p0 - p1 + span + op is positive
            need = p0 + p1 - span - op + 1  # (i-1)*s >= need
            size.append(1 + max(0, math.ceil(need / s)) + extra)
            output_padding.append(op)
        else:
            size.append(max(1, span - p0 - p1) + extra)
    if use_output_size:
        smallest = reference.conv_transpose_output_size(
            size, kernel, strides, pad_pairs, (0,) * dims, dilations
        )
        output_padding = [draw(st.integers(0, s - 1)) for s in strides]
        output_size = tuple(m + op for m, op in zip(smallest, output_padding, strict=True))
        if batch is not None and draw(st.booleans()):
            # PyTorch also accepts the whole output shape (N, C_out, *spatial)
            output_size = (batch, groups * per_group_out, *output_size)

    return ConvCase(
        transposed=transposed,
        dims=dims,
        batch=batch,
        groups=groups,
        channels_in=groups * per_group_in,
        channels_out=groups * per_group_out,
        kernel=kernel,
        size=tuple(size),
        stride=_per_dim_argument(draw, strides),
        padding=padding,
        dilation=_per_dim_argument(draw, dilations),
        output_padding=tuple(output_padding),
        output_size=output_size,
        bias=draw(st.booleans()),
        dtype=dtype,
        layout=draw(st.sampled_from(["C", "C", "F", "strided"])),
        seed=draw(st.integers(0, 2**32 - 1)),
    )


@pytest.fixture
def isa():
    """Restores the micro-kernel instruction set a test changes."""
    saved = convt.get_isa()
    yield saved
    convt.set_isa(saved)


@pytest.fixture
def num_threads():
    """Restores the thread count a test changes."""
    saved = convt.get_num_threads()
    yield saved
    convt.set_num_threads(saved)
