"""``--includes`` and ``--cmakedir``: where the installed package keeps its C++ headers and CMake
package, printed for shell use, as ``python -m pybind11`` prints its own."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from typing import Any

from .._locations import get_cmake_dir, get_include

__all__ = ["add_arguments"]


class _Print(argparse.Action):
    """Prints ``text()`` and exits, as ``--version`` does, with no command needed."""

    def __init__(self, option_strings: Sequence[str], text: Callable[[], str], **kwargs: Any):
        super().__init__(option_strings, nargs=0, default=argparse.SUPPRESS, **kwargs)
        self.text = text

    def __call__(self, parser: argparse.ArgumentParser, *args: Any) -> None:
        print(self.text())
        parser.exit()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--includes",
        action=_Print,
        text=lambda: f"-I{get_include()}",
        help="print the compiler flag for convt's C++ headers (convt.get_include()) and exit",
    )
    parser.add_argument(
        "--cmakedir",
        action=_Print,
        text=get_cmake_dir,
        help="print the folder of convtConfig.cmake (convt.get_cmake_dir()) and exit",
    )
