"""The six operations convt computes, and what each is called elsewhere.

:mod:`convt.functional`, :mod:`convt.nn`, :mod:`convt.torch`, :mod:`convt.compat.tensorflow`
and :mod:`convt.dask` make their functions and layers from this table, each with the signature
of its kind; the sizes, weight shapes and multiply-adds of a call come from its geometry
(:func:`convt.geometry`).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Operation:
    """A convolution or transposed convolution over ``dims`` spatial dimensions."""

    #: convt.functional's and torch.nn.functional's name.
    name: str
    dims: int
    transposed: bool
    #: convt.nn's and torch.nn's layer class.
    layer: str
    #: tf.nn's function.
    tensorflow: str

    @property
    def kernel_axes(self) -> str:
        """The kernel's axes as the weight layouts name them: "k", "kH, kW", "kD, kH, kW"."""
        return {1: "k", 2: "kH, kW", 3: "kD, kH, kW"}[self.dims]

    @property
    def weight_layout(self) -> str:
        """PyTorch's weight layout, which convt's is."""
        channels = "C_in, C_out / groups" if self.transposed else "C_out, C_in / groups"
        return f"({channels}, {self.kernel_axes})"


OPERATIONS = (
    Operation("conv1d", 1, False, "Conv1d", "conv1d"),
    Operation("conv2d", 2, False, "Conv2d", "conv2d"),
    Operation("conv3d", 3, False, "Conv3d", "conv3d"),
    Operation("conv_transpose1d", 1, True, "ConvTranspose1d", "conv1d_transpose"),
    Operation("conv_transpose2d", 2, True, "ConvTranspose2d", "conv2d_transpose"),
    Operation("conv_transpose3d", 3, True, "ConvTranspose3d", "conv3d_transpose"),
)
CONV1D, CONV2D, CONV3D, CONV_TRANSPOSE1D, CONV_TRANSPOSE2D, CONV_TRANSPOSE3D = OPERATIONS
BY_NAME = {operation.name: operation for operation in OPERATIONS}
BY_KIND = {(operation.dims, operation.transposed): operation for operation in OPERATIONS}


def operation(caller: str, name: object) -> Operation:
    """The operation called ``name``; ValueError naming the six otherwise."""
    found = BY_NAME.get(name) if isinstance(name, str) else None
    if found is None:
        raise ValueError(f"{caller}: op must be one of {', '.join(BY_NAME)}, got {name!r}")
    return found
