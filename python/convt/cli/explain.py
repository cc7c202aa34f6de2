"""``convt explain``: shows how a 2-D transposed convolution (PyTorch's ConvTranspose2d, one
channel) makes its output, for the input size, kernel, stride, padding, output_padding and
dilation you give: the output size formula with your numbers; the input with stride - 1 zeros
inserted between neighbours and padded by dilation*(kernel - 1) - padding (cropped instead when
that is negative), plus output_padding at the end; the kernel turned by 180 degrees; which input
values and kernel taps make each output value; how many products overlap on each output pixel
(uneven overlap is where checkerboard artifacts come from); and a check, with x = 1, 2, 3, ...
and w = 1, 2, 3, ..., that three formulations computed by convt give the same numbers:
(i) scatter (convt.convolute_full), (ii) zero insertion + padding + convolution with the flipped
kernel (convt.convolute), (iii) the gradient for the input of a convolution
(convt.functional.conv2d_backward).

Each size or argument is one number (square) or HxW, e.g. --input 3x4 --stride 2x1; padding may
differ before and after (--padding 1,2 for both dimensions, or 1,2x0,1). --padding-mode reflect,
replicate or circular shows the padding ring that the transposed layer computes and folds back
onto its output (the adjoint of a convolution that reads the ring). Cells are labelled a11, a12,
... (input x[0, 0], x[0, 1], ...), w11, ... (kernel) and y11, ... (output)."""

from __future__ import annotations

import argparse
from typing import Any

from .. import functional
from ..explain import explain
from ._common import CommandError, check_figure_path, int_list, padding_list

EPILOG = """\
examples:
  python -m convt explain --input 3 --kernel 3 --stride 2 --padding 1 --output-padding 1
  python -m convt explain --input 3 --kernel 2               (seed 001's example, stride 1)
  python -m convt explain --input 4 --kernel 4 --stride 2 --padding 1     (even overlap)
  python -m convt explain --input 3x4 --kernel 3x2 --stride 2x1 --dilation 2
  python -m convt explain --input 3 --kernel 3 --stride 2 --save explain.png
  python -m convt explain --input 4 --kernel 3 --stride 2 --padding 1,2 --padding-mode circular

Exit code 0 when the three formulations agree, 1 when they do not, 2 for a bad argument
(including a geometry convt rejects, e.g. output_padding not smaller than stride)."""


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = commands.add_parser(
        "explain",
        help="show how a transposed convolution makes its output, as text and a picture",
        description=(__doc__ or "").replace("``", ""),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--input", type=int_list(1, 2), default=(3,), metavar="HxW", help="input size, H or HxW (3)"
    )
    p.add_argument(
        "--kernel", type=int_list(1, 2), default=(3,), metavar="KxK", help="kernel size (3)"
    )
    p.add_argument("--stride", type=int_list(1, 2), default=(1,), metavar="SxS", help="stride (1)")
    p.add_argument(
        "--padding",
        type=padding_list(2),
        default=(0,),
        metavar="PxP",
        help="padding: P, or BEFORE,AFTER, per dimension joined by x (0)",
    )
    p.add_argument(
        "--padding-mode",
        choices=functional.PADDING_MODES,
        default="zeros",
        help="what the padding holds; other than zeros, the ring folds back (zeros)",
    )
    p.add_argument(
        "--output-padding",
        type=int_list(0, 2),
        default=(0,),
        metavar="PxP",
        help="output_padding (0)",
    )
    p.add_argument(
        "--dilation", type=int_list(1, 2), default=(1,), metavar="DxD", help="dilation (1)"
    )
    p.add_argument("--save", metavar="FILE.png", help="also draw it to an image file")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    check_figure_path(args.save)
    try:
        explanation = explain(
            args.input,
            args.kernel,
            stride=args.stride,
            padding=_padding(args.padding),
            output_padding=args.output_padding,
            dilation=args.dilation,
            padding_mode=args.padding_mode,
        )
    except ValueError as error:  # convt's message for an impossible geometry, or too large
        raise CommandError(str(error)) from None
    print(explanation.text())
    if args.save:
        explanation.save(args.save)
        print(f"\nsaved {args.save}")
    return 0 if explanation.passed else 1


def _padding(values: tuple[Any, ...]) -> Any:
    """--padding as explain takes it: ints, or (before, after) pairs when one differs."""
    if not any(isinstance(v, tuple) for v in values):
        return values
    pairs = tuple(v if isinstance(v, tuple) else (v, v) for v in values)
    return pairs * 2 if len(pairs) == 1 else pairs
