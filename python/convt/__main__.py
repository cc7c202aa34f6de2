"""The command line: ``python -m convt <command>`` (also the ``convt`` console script).

Commands: ``demo`` trains seed 000's network of two transposed convolutions and shows its loss
falling. Each command is a function ``(args) -> exit code`` registered in :func:`build_parser`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import numpy as np


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def demo(args: argparse.Namespace) -> int:
    """Trains seed 000's network: two 3x3 transposed convolutions (no bias) taking a 10x10 input
    to a 14x14 target, from the question's N(0, 1) weights, with MSE loss and SGD."""
    from tqdm import tqdm

    from . import nn, optim

    rng = np.random.default_rng(args.seed)
    x = rng.standard_normal((1, 1, 10, 10)).astype(np.float32)
    target = rng.standard_normal((1, 1, 14, 14)).astype(np.float32)
    model = nn.Sequential(
        nn.ConvTranspose2d(1, 1, 3, bias=False, generator=rng),
        nn.ConvTranspose2d(1, 1, 3, bias=False, generator=rng),
    )
    # The question's weights were np.random.randn(3, 3): large, which is what made its wrong
    # gradients diverge so fast. With the exact gradients they train.
    model.load_state_dict(
        {key: rng.standard_normal(w.shape) for key, w in model.state_dict().items()}
    )
    optimizer = optim.SGD(model.parameters(), lr=args.lr, momentum=0.9)
    loss_fn = nn.MSELoss()

    print(f"demo: seed 000's network, 10x10 -> 14x14, seed {args.seed}")
    print(model)
    losses = []
    with tqdm(range(args.steps), desc="training", unit="step", file=sys.stderr) as bar:
        for _ in bar:
            optimizer.zero_grad()
            loss = loss_fn(model(x), target)
            model.backward(loss_fn.backward())
            optimizer.step()
            losses.append(loss)
            bar.set_postfix(loss=f"{loss:.4g}", refresh=False)
    fell = bool(np.isfinite(losses[-1]) and losses[-1] < losses[0])
    print(f"first loss: {losses[0]:.6g}")
    print(f"last loss:  {losses[-1]:.6g}")
    print("the loss fell" if fell else "the loss did NOT fall")
    return 0 if fell else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="convt",
        description="convt: convolution and transposed convolution, forward and backward.",
        epilog="example: python -m convt demo --steps 200 --seed 0",
    )
    commands = parser.add_subparsers(dest="command", metavar="command", required=True)

    p = commands.add_parser(
        "demo",
        help="train a small transposed-convolution network and show the loss falling",
        description=demo.__doc__,
        epilog="example: python -m convt demo --steps 500 --seed 1",
    )
    p.add_argument("--steps", type=_positive_int, default=200, help="training steps (200)")
    p.add_argument("--seed", type=int, default=0, help="random seed for data and weights (0)")
    p.add_argument("--lr", type=float, default=0.01, help="SGD learning rate (0.01)")
    p.set_defaults(run=demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command line with ``argv`` (default ``sys.argv[1:]``); returns the exit code."""
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
