"""Where the installed package keeps what C++ and Cython users build against: the headers and the
CMake package, installed beside the extension module by the same ``CMakeLists.txt`` that installs
them under a plain CMake prefix."""

from __future__ import annotations

from pathlib import Path

from . import _core

__all__ = ["get_cmake_dir", "get_include"]


def _installed(*parts: str, marker: str) -> str:
    # Beside _core rather than this file: an editable install keeps the Python sources in the
    # checkout but the built files, headers included, in site-packages.
    folder = Path(_core.__file__).resolve().parent.joinpath(*parts)
    if not (folder / marker).is_file():
        raise FileNotFoundError(
            f"convt is installed without its C++ files: {folder / marker} is missing "
            "(reinstall with pip install convt, or pip install . from a checkout)"
        )
    return str(folder)


def get_include() -> str:
    """The folder holding convt's C++ headers, for ``#include <convt/convt.hpp>``: the include path
    of a C++ program or a Cython extension, as ``numpy.get_include()``.

    ``python -m convt --includes`` prints it as a compiler flag."""
    return _installed("include", marker="convt/convt.hpp")


def get_cmake_dir() -> str:
    """The folder holding ``convtConfig.cmake``: ``cmake -Dconvt_DIR=<it>`` lets
    ``find_package(convt)`` find the installed package, as ``pybind11.get_cmake_dir()``.

    ``python -m convt --cmakedir`` prints it."""
    return _installed("share", "cmake", "convt", marker="convtConfig.cmake")
