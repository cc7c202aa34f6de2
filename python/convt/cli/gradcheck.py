"""``convt gradcheck``: checks the gradients of one layer configuration (for the input, the
weight and the bias) against central finite differences with convt.gradcheck, and prints the
largest absolute and relative error of each with PASS or FAIL.

The loss is sum(layer(x) * dy) for a random dy; each numeric gradient element is
(loss(p + eps) - loss(p - eps)) / (2 eps). A convolution is linear in each of its arguments, so
these differences are exact up to rounding for any eps: float64 uses eps 1e-6, float32 a larger
eps (1e-1) so that float32 rounding is not magnified. Sizes and arguments take one value for
every dimension or one per dimension (5x4x3). Padding may differ before and after
(--padding 1,2 or 1,2x0,1 per dimension), and --padding-mode says what it holds, for both layer
kinds: a transposed convolution with a mode is the adjoint of the convolution with it."""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np

from .. import functional
from ..gradcheck import gradcheck
from ._common import CommandError, int_list, nonnegative_int, padding_list, positive_int

OPS = ("conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d")

# dtype -> (eps, atol, rtol)
TOLERANCES = {"float64": (1e-6, 1e-5, 1e-3), "float32": (1e-1, 1e-3, 1e-3)}

EPILOG = """\
examples:
  python -m convt gradcheck conv_transpose2d --in-channels 2 --out-channels 3 --kernel 3 \\
      --stride 2 --padding 1 --output-padding 1 --size 5
  python -m convt gradcheck conv1d --kernel 5 --dilation 2 --groups 2 --in-channels 4 \\
      --out-channels 4 --size 12
  python -m convt gradcheck conv_transpose3d --kernel 2x3x2 --stride 2x1x2 --size 3 --no-bias
  python -m convt gradcheck conv2d --dtype float32 --batch 4 --seed 7
  python -m convt gradcheck conv_transpose2d --stride 2 --padding 1,2 --padding-mode circular

Exit code 0 when every gradient passes, 1 when one fails, 2 for a bad argument
(including a geometry convt rejects, e.g. output_padding not smaller than stride)."""


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = commands.add_parser(
        "gradcheck",
        help="check a layer's gradients (input, weight, bias) against finite differences",
        description=(__doc__ or "").replace("``", ""),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("op", choices=OPS, metavar="op", help=f"the layer: {', '.join(OPS)}")
    p.add_argument(
        "--in-channels", type=positive_int, default=2, metavar="C", help="input channels (2)"
    )
    p.add_argument(
        "--out-channels", type=positive_int, default=3, metavar="C", help="output channels (3)"
    )
    p.add_argument(
        "--kernel", type=int_list(1, 3), default=(3,), metavar="K", help="kernel size (3)"
    )
    p.add_argument("--stride", type=int_list(1, 3), default=(1,), metavar="S", help="stride (1)")
    p.add_argument(
        "--padding",
        type=padding_list(3),
        default=(0,),
        metavar="P",
        help="padding: P, or BEFORE,AFTER, per dimension joined by x (0)",
    )
    p.add_argument(
        "--padding-mode",
        choices=functional.PADDING_MODES,
        default="zeros",
        help="what the padding holds (zeros)",
    )
    p.add_argument(
        "--output-padding",
        type=int_list(0, 3),
        default=(0,),
        metavar="P",
        help="output_padding, transposed convolutions only (0)",
    )
    p.add_argument(
        "--dilation", type=int_list(1, 3), default=(1,), metavar="D", help="dilation (1)"
    )
    p.add_argument("--groups", type=positive_int, default=1, metavar="G", help="groups (1)")
    p.add_argument(
        "--size", type=int_list(1, 3), default=(5,), metavar="N", help="input spatial size (5)"
    )
    p.add_argument("--batch", type=positive_int, default=2, metavar="N", help="batch size (2)")
    p.add_argument(
        "--bias", action=argparse.BooleanOptionalAction, default=True, help="with a bias (yes)"
    )
    p.add_argument(
        "--dtype",
        choices=sorted(TOLERANCES),
        default="float64",
        help="dtype the layer computes in (float64)",
    )
    p.add_argument(
        "--seed",
        type=nonnegative_int,
        default=0,
        metavar="N",
        help="random seed of the arrays and dy (0)",
    )
    p.add_argument("--eps", type=float, help="finite-difference step (by dtype)")
    p.add_argument("--atol", type=float, help="absolute tolerance (by dtype)")
    p.add_argument("--rtol", type=float, help="relative tolerance (by dtype)")
    p.set_defaults(run=run)


def _per_dim(name: str, values: tuple[Any, ...], dims: int) -> tuple[Any, ...]:
    if len(values) == 1:
        return values * dims
    if len(values) != dims:
        expected = "1 value" if dims == 1 else f"1 or {dims} values"
        raise CommandError(f"--{name}: expected {expected} for a {dims}-D layer, got {len(values)}")
    return values


def run(args: argparse.Namespace) -> int:
    op, dims = args.op, int(args.op[-2])
    transposed = op.startswith("conv_transpose")
    spatial = {
        name: _per_dim(name, getattr(args, name.replace("-", "_")), dims)
        for name in ("kernel", "stride", "padding", "output-padding", "dilation", "size")
    }
    if not transposed and any(spatial["output-padding"]):
        raise CommandError(f"--output-padding: only transposed convolutions have it, not {op}")
    for name in ("in_channels", "out_channels"):
        if getattr(args, name) % args.groups:
            raise CommandError(
                f"--{name.replace('_', '-')} ({getattr(args, name)}) must be divisible by "
                f"--groups ({args.groups})"
            )
    c_in, c_out, groups = args.in_channels, args.out_channels, args.groups
    weight_shape = (
        (c_in, c_out // groups, *spatial["kernel"])
        if transposed
        else (c_out, c_in // groups, *spatial["kernel"])
    )
    padding = spatial["padding"]
    if any(isinstance(p, tuple) for p in padding):
        padding = tuple(p if isinstance(p, tuple) else (p, p) for p in padding)
    # In the order of the function's arguments (PyTorch's).
    kwargs: dict[str, Any] = {"stride": spatial["stride"], "padding": padding}
    if transposed:
        kwargs["output_padding"] = spatial["output-padding"]
        kwargs["groups"] = groups
        kwargs["dilation"] = spatial["dilation"]
    else:
        kwargs["dilation"] = spatial["dilation"]
        kwargs["groups"] = groups
    if args.padding_mode != "zeros":
        kwargs["padding_mode"] = args.padding_mode

    rng = np.random.default_rng(args.seed)
    dtype = np.dtype(args.dtype)
    x = rng.standard_normal((args.batch, c_in, *spatial["size"])).astype(dtype)
    w = rng.standard_normal(weight_shape).astype(dtype)
    b = rng.standard_normal(c_out).astype(dtype) if args.bias else None
    forward = getattr(functional, op)
    backward = getattr(functional, op + "_backward")
    try:  # convt validates the geometry; its message names the argument
        y = forward(x, w, b, **kwargs)
    except ValueError as error:
        raise CommandError(str(error)) from None

    def layer(
        input: np.ndarray, weight: np.ndarray, bias: np.ndarray | None = None, **kw: Any
    ) -> np.ndarray:
        """The layer computed in ``dtype``, as float64 for the finite differences."""
        bias = None if bias is None else bias.astype(dtype)
        output: np.ndarray = forward(input.astype(dtype), weight.astype(dtype), bias, **kw)
        return output.astype(np.float64)

    def layer_backward(
        dy: np.ndarray,
        input: np.ndarray,
        weight: np.ndarray,
        bias: np.ndarray | None = None,
        **kw: Any,
    ) -> tuple[np.ndarray | None, ...]:
        mask = (True, True, bias is not None)
        grads: tuple[np.ndarray | None, ...] = backward(
            dy.astype(dtype), input.astype(dtype), weight.astype(dtype), **kw, output_mask=mask
        )
        return grads if bias is not None else grads[:2]

    eps, atol, rtol = TOLERANCES[args.dtype]
    eps = args.eps if args.eps is not None else eps
    atol = args.atol if args.atol is not None else atol
    rtol = args.rtol if args.rtol is not None else rtol
    settings = ", ".join(f"{k}={_show(v)}" for k, v in kwargs.items())
    print(f"gradcheck {op}({settings}), {args.dtype}")
    print(
        f"  input {x.shape}, weight {w.shape}"
        + (f", bias {b.shape}" if b is not None else ", no bias")
        + f" -> output {y.shape}"
    )
    print(f"  eps {eps:g}; pass when |analytic - numeric| <= {atol:g} + {rtol:g} * |numeric|")
    inputs = (x, w) if b is None else (x, w, b)
    report = gradcheck(
        layer,
        inputs,
        eps=eps,
        atol=atol,
        rtol=rtol,
        raise_exception=False,
        backward=layer_backward,
        generator=args.seed,
        **kwargs,
    )
    labels = {"input": "dx (input) ", "weight": "dw (weight)", "bias": "db (bias)  "}
    for result in report.results:
        verdict = "PASS" if result.passed else "FAIL"
        line = (
            f"  {labels[result.name]}  max abs error {result.max_abs_error:.2e}  "
            f"max rel error {result.max_rel_error:.2e}  {verdict}"
        )
        if not result.passed and result.worst_index is not None:
            line += (
                f"  (worst at {result.worst_index}: analytic {result.analytic:.6g}, "
                f"numeric {result.numeric:.6g})"
            )
        print(line)
    print("PASS" if report.passed else "FAIL")
    return 0 if report.passed else 1


def _show(value: Any) -> str:
    # (before, after) pairs stay pairs: one pair alone would read as one amount per dimension.
    if isinstance(value, tuple) and len(set(value)) == 1 and not isinstance(value[0], tuple):
        return str(value[0])
    return repr(value) if isinstance(value, str) else str(value)
