"""convt: convolution and transposed convolution, forward and backward.

A header-only C++ core bound to NumPy. ``convt.functional`` has PyTorch's functions and their
gradients, ``convt.nn`` and ``convt.optim`` a small layer API, and the top level the
single-channel functions convt grew from (``convolute``, ``convolute_full``, ``fcn_forward``, ...)
and a call's geometry without computing it (``geometry``, ``weight_shape``).
``get_include()`` and ``get_cmake_dir()`` locate the C++ headers and CMake package inside the
installed package, for C++ programs and Cython extensions (``convt/__init__.pxd``).
"""

from . import functional, nn, optim
from ._core import (
    Geometry,
    Matrix,
    Matrix32,
    __version__,
    get_isa,
    get_num_threads,
    set_isa,
    set_num_threads,
    supported_isas,
)
from ._locations import get_cmake_dir, get_include
from ._seed import (
    cnn_backward,
    cnn_forward,
    convolute,
    convolute_full,
    fcn_backward,
    fcn_forward,
    rotate_180,
)
from .functional import geometry, weight_shape
from .gradcheck import GradcheckError, gradcheck, jacobian
from .nn import manual_seed

__all__ = [
    "Geometry",
    "GradcheckError",
    "Matrix",
    "Matrix32",
    "__version__",
    "cnn_backward",
    "cnn_forward",
    "convolute",
    "convolute_full",
    "fcn_backward",
    "fcn_forward",
    "functional",
    "geometry",
    "get_cmake_dir",
    "get_include",
    "get_isa",
    "get_num_threads",
    "gradcheck",
    "jacobian",
    "manual_seed",
    "nn",
    "optim",
    "rotate_180",
    "set_isa",
    "set_num_threads",
    "supported_isas",
    "weight_shape",
]
