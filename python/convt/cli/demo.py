"""``convt demo``: trains two small networks built from transposed convolutions and shows their
losses falling: (a) the two 3x3 transposed convolutions, 10x10 -> 14x14, of seed 000 (the
question convt grew from, whose hand-written layer's weights diverged; docs/index.md); (b) a
multi-channel up-sampling network (ConvTranspose2d with stride 2, ReLU) that learns to turn 8x8
colour images of random blobs into their 16x16 originals."""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from tqdm import tqdm

from .. import nn, optim
from ._common import check_figure_path, nonnegative_int, positive_int

if TYPE_CHECKING:
    from matplotlib.figure import Figure

EPILOG = """\
examples:
  python -m convt demo
  python -m convt demo --steps 500 --seed 1
  python -m convt demo --save demo.png      (needs matplotlib: pip install 'convt[plot]')

Exit code 0 when both losses fell, 1 when one did not, 2 for a bad argument."""


@dataclass
class Run:
    """One trained network: its data, the model, and the loss at every step."""

    name: str
    x: np.ndarray
    target: np.ndarray
    model: nn.Sequential
    losses: list[float]

    @property
    def fell(self) -> bool:
        return bool(np.isfinite(self.losses[-1]) and self.losses[-1] < self.losses[0])


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = commands.add_parser(
        "demo",
        help="train two small transposed-convolution networks and show the loss falling",
        description=(__doc__ or "").replace("``", ""),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--steps", type=positive_int, default=200, metavar="N", help="training steps (200)"
    )
    p.add_argument(
        "--seed",
        type=nonnegative_int,
        default=0,
        metavar="N",
        help="random seed for data and weights (0)",
    )
    p.add_argument("--lr", type=float, default=0.01, help="SGD learning rate of (a) (0.01)")
    p.add_argument("--lr-upsample", type=float, default=0.2, help="SGD learning rate of (b) (0.2)")
    p.add_argument("--save", metavar="FILE.png", help="draw inputs, targets and outputs")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    check_figure_path(args.save)
    rng = np.random.default_rng(args.seed)
    runs = [
        seed_000(rng, args.steps, args.lr, args.seed),
        upsampling(rng, args.steps, args.lr_upsample, args.seed),
    ]
    fell = all(r.fell for r in runs)
    print("both losses fell" if fell else "a loss did NOT fall")
    if args.save:
        draw(runs).savefig(args.save, dpi=110)
        print(f"saved {args.save}")
    return 0 if fell else 1


def train(run: Run, steps: int, lr: float, label: str) -> None:
    """SGD with momentum 0.9 on the MSE loss, one full batch per step, with a progress bar."""
    optimizer = optim.SGD(run.model.parameters(), lr=lr, momentum=0.9)
    loss_fn = nn.MSELoss()
    with tqdm(range(steps), desc=label, unit="step", file=sys.stderr) as bar:
        for _ in bar:
            optimizer.zero_grad()
            loss = loss_fn(run.model(run.x), run.target)
            run.model.backward(loss_fn.backward())
            optimizer.step()
            run.losses.append(loss)
            bar.set_postfix(loss=f"{loss:.4g}", refresh=False)
    print(f"first loss: {run.losses[0]:.6g}")
    print(f"last loss:  {run.losses[-1]:.6g}")


def seed_000(rng: np.random.Generator, steps: int, lr: float, seed: int) -> Run:
    """Seed 000's network: two 3x3 transposed convolutions (no bias) taking a 10x10 input to a
    14x14 target, from the question's N(0, 1) weights."""
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
    print(f"demo (a): seed 000's network, 10x10 -> 14x14, seed {seed}")
    print(model)
    run = Run("(a) seed 000", x, target, model, [])
    train(run, steps, lr, "(a) training")
    print("the loss fell" if run.fell else "the loss did NOT fall")
    print()
    return run


def blobs(rng: np.random.Generator, count: int, size: int = 16) -> np.ndarray:
    """``count`` smooth RGB images (N, 3, size, size): each the sum of three Gaussian blobs of
    random place, width and colour, values in about [-1, 1]."""
    yy, xx = np.mgrid[0:size, 0:size] + 0.5
    images = np.zeros((count, 3, size, size))
    for image in images:
        for _ in range(3):
            cy, cx = rng.uniform(0, size, 2)
            radius = rng.uniform(1.5, 4.0)
            colour = rng.uniform(-1, 1, 3)
            image += colour[:, None, None] * np.exp(
                -((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * radius**2)
            )
    return images.astype(np.float32)


def upsampling(rng: np.random.Generator, steps: int, lr: float, seed: int) -> Run:
    """A multi-channel up-sampling network: 16 images of blobs, down-sampled to 8x8 by 2x2
    averages, and a ConvTranspose2d(3, 8, 4, stride 2) -> ReLU -> ConvTranspose2d(8, 3, 3) that
    learns to give back the 16x16 originals."""
    target = blobs(rng, 16)
    n, c, h, w = target.shape
    x = target.reshape(n, c, h // 2, 2, w // 2, 2).mean(axis=(3, 5))
    model = nn.Sequential(
        nn.ConvTranspose2d(3, 8, 4, stride=2, padding=1, generator=rng),
        nn.ReLU(),
        nn.ConvTranspose2d(8, 3, 3, padding=1, generator=rng),
    )
    print(
        f"demo (b): up-sampling 8x8 -> 16x16 colour images of random blobs, {n} images, seed {seed}"
    )
    print(model)
    run = Run("(b) up-sampling", x, target, model, [])
    train(run, steps, lr, "(b) training")
    nearest = x.repeat(2, axis=2).repeat(2, axis=3)
    print(
        f"(for comparison, nearest-neighbour up-sampling: {np.mean((nearest - target) ** 2):.6g})"
    )
    print("the loss fell" if run.fell else "the loss did NOT fall")
    print()
    return run


def draw(runs: list[Run]) -> Figure:
    """Inputs, targets and outputs: (a) in one row, (b) three images in the next rows."""
    from matplotlib.figure import Figure

    a, b = runs
    fig = Figure(figsize=(8.0, 11.0))
    panels = fig.subplots(4, 3)
    outputs = [r.model(r.x) for r in runs]
    limit = float(np.abs(a.target).max())
    for panel, image, title in zip(
        panels[0],
        (a.x[0, 0], a.target[0, 0], outputs[0][0, 0]),
        ("input 10x10", "target 14x14", "output 14x14"),
        strict=True,
    ):
        panel.imshow(image, cmap="RdBu_r", vmin=-limit, vmax=limit)
        panel.set_title(f"(a) {title}", fontsize=10)
    for row in range(3):
        for panel, image, title in zip(
            panels[row + 1],
            (b.x[row], b.target[row], outputs[1][row]),
            ("input 8x8", "target 16x16", "output 16x16"),
            strict=True,
        ):
            panel.imshow(np.clip(0.5 + 0.5 * np.transpose(image, (1, 2, 0)), 0, 1))
            if row == 0:
                panel.set_title(f"(b) {title}", fontsize=10)
    for panel in panels.flat:
        panel.set_xticks([])
        panel.set_yticks([])
    fig.suptitle(
        f"convt demo: (a) loss {a.losses[0]:.3g} -> {a.losses[-1]:.3g};  "
        f"(b) loss {b.losses[0]:.3g} -> {b.losses[-1]:.3g}",
        fontsize=11,
    )
    fig.tight_layout()
    return fig
