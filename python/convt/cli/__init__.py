"""The command line: ``python -m convt <command>``, also the ``convt`` console script.

Each command is a module here with ``add_parser(commands)`` and ``run(args) -> exit code``:
``demo`` trains small transposed-convolution networks, ``gradcheck`` checks a layer's gradients
against finite differences, ``explain`` shows how a transposed convolution makes its output, and
``bench`` runs the benchmark suite. A bad argument gives one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from .._core import __version__
from . import bench, demo, explain, gradcheck, locations
from ._common import CommandError, Parser

__all__ = ["build_parser", "main"]

EPILOG = """\
examples:
  python -m convt demo
  python -m convt gradcheck conv_transpose2d --kernel 3 --stride 2 --padding 1 --output-padding 1
  python -m convt explain --input 3 --kernel 3 --stride 2 --padding 1 --output-padding 1
  python -m convt bench --quick

'python -m convt <command> --help' shows each command's options and examples."""


def build_parser() -> Parser:
    parser = Parser(
        prog="convt",
        description="convt: convolution and transposed convolution, forward and backward.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"convt {__version__}")
    locations.add_arguments(parser)
    commands = parser.add_subparsers(dest="command", metavar="command", required=True)
    for module in (demo, gradcheck, explain, bench):
        module.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command line with ``argv`` (default ``sys.argv[1:]``); returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args))
    except CommandError as error:
        print(f"convt {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"convt {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. python -m convt explain | head
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
