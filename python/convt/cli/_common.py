"""What the commands share: the argument parser that fails in one line, argument types, and the
error a command raises for a bad argument it finds late (exit code 2, like argparse's)."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from typing import NoReturn

__all__ = [
    "CommandError",
    "Parser",
    "check_figure_path",
    "int_list",
    "nonnegative_int",
    "padding_list",
    "positive_int",
]


class CommandError(Exception):
    """A bad argument found by a command (e.g. an impossible geometry): ``convt <command>:
    error: <message>`` on stderr and exit code 2."""


class Parser(argparse.ArgumentParser):
    """argparse, but an error is one line (``convt explain: error: ...``), never the usage block
    and never a traceback; exit code 2 as argparse's."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def positive_int(text: str) -> int:
    value = _int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def nonnegative_int(text: str) -> int:
    value = _int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {value}")
    return value


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def int_list(minimum: int, most: int) -> Callable[[str], tuple[int, ...]]:
    """An argument type for one value or several per dimension: ``3``, ``3x4`` or ``3,4``, each
    at least ``minimum``, at most ``most`` values."""

    def parse(text: str) -> tuple[int, ...]:
        parts = text.lower().replace(",", "x").split("x")
        try:
            values = tuple(int(part) for part in parts)
        except ValueError:
            example = "x".join(["3"] * most)
            raise argparse.ArgumentTypeError(
                f"expected an integer or integers joined by x (e.g. 3 or {example}), got {text!r}"
            ) from None
        if len(values) > most:
            raise argparse.ArgumentTypeError(f"expected at most {most} values, got {text!r}")
        if min(values) < minimum:
            kind = "positive" if minimum == 1 else "non-negative"
            raise argparse.ArgumentTypeError(f"expected {kind} integers, got {text!r}")
        return values

    parse.__name__ = "sizes"  # argparse names the type in its messages
    return parse


PaddingArgument = tuple[int | tuple[int, int], ...]


def padding_list(most: int) -> Callable[[str], PaddingArgument]:
    """An argument type for padding: per dimension (joined by x) one amount for both sides or
    ``before,after``: ``1``, ``1x0``, ``1,2`` (1 before and 2 after, in every dimension) or
    ``1,2x0,1``. At most ``most`` dimensions."""

    def parse(text: str) -> PaddingArgument:
        values: list[int | tuple[int, int]] = []
        for part in text.lower().split("x"):
            try:
                amounts = [int(v) for v in part.split(",")]
            except ValueError:
                amounts = []
            if len(amounts) not in (1, 2):
                raise argparse.ArgumentTypeError(
                    "expected an amount or before,after per dimension, joined by x (e.g. 1, "
                    f"1x0, 1,2 or 1,2x0,1), got {text!r}"
                )
            if min(amounts) < 0:
                raise argparse.ArgumentTypeError(f"expected non-negative integers, got {text!r}")
            values.append(amounts[0] if len(amounts) == 1 else (amounts[0], amounts[1]))
        if len(values) > most:
            raise argparse.ArgumentTypeError(f"expected at most {most} dimensions, got {text!r}")
        return tuple(values)

    parse.__name__ = "padding"
    return parse


def check_figure_path(path: str | None) -> None:
    """Fails early, before any work, when ``--save`` cannot be honoured: matplotlib missing, no
    such directory, or a file type matplotlib cannot write."""
    if path is None:
        return
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise CommandError(
            "--save needs matplotlib, which is not installed; install it with "
            "pip install matplotlib (or pip install 'convt[plot]')"
        ) from None
    directory = os.path.dirname(path) or "."
    if not os.path.isdir(directory):
        raise CommandError(f"--save: no such directory: {directory}")
    extension = os.path.splitext(path)[1].lstrip(".").lower()
    supported = Figure().canvas.get_supported_filetypes()
    if extension not in supported:
        raise CommandError(
            f"--save: cannot tell the image type of {path!r}; use one of "
            + ", ".join(f".{e}" for e in sorted(supported))
        )
