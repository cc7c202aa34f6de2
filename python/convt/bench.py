"""The benchmark suite: convt against PyTorch on the same machine, in the same run.

For every case it times convt and PyTorch alternately (forward, and forward + backward for input,
weight and bias), reports medians, their ratio, GFLOP/s, and the extra memory each used at its
peak, beside the machine's measured FMA peak. ``python -m convt bench`` runs it.
"""

from __future__ import annotations

import dataclasses
import datetime
import gc
import math
import os
import platform
import statistics
import subprocess
import time
from collections.abc import Callable

import numpy as np

from . import _core, functional

__all__ = ["CASES", "Case", "main_table", "run"]


@dataclasses.dataclass(frozen=True)
class Case:
    """One layer: input (N, C, *spatial), weight shape in PyTorch's layout, and its arguments."""

    name: str
    transposed: bool
    input_shape: tuple[int, ...]
    weight_shape: tuple[int, ...]
    stride: int = 1
    padding: int = 0
    dilation: int = 1
    groups: int = 1
    output_padding: int = 0
    dtype: str = "float32"
    quick: bool = False
    # A problem the size of the seeds' examples, where the time is the call's overhead: its
    # ratios are summarised apart from the layers'.
    seed_sized: bool = False

    @property
    def dims(self) -> int:
        return len(self.input_shape) - 2

    def kwargs(self) -> dict:
        args = dict(stride=self.stride, padding=self.padding, dilation=self.dilation)
        args["groups"] = self.groups
        if self.transposed:
            args["output_padding"] = self.output_padding
        return args

    def op_name(self) -> str:
        return f"conv_transpose{self.dims}d" if self.transposed else f"conv{self.dims}d"

    def geometry(self):
        return functional.geometry(
            self.op_name(), self.input_shape, self.weight_shape, **self.kwargs()
        )

    def forward_flops(self) -> float:
        """Multiply-adds of the underlying convolution, counted as two operations each."""
        return 2.0 * self.geometry().multiply_adds


CASES: list[Case] = [
    Case(
        "seed 000 10x10 3x3 transposed",
        True,
        (1, 1, 10, 10),
        (1, 1, 3, 3),
        quick=True,
        seed_sized=True,
    ),
    Case("seed 000 float64", True, (1, 1, 10, 10), (1, 1, 3, 3), dtype="float64", seed_sized=True),
    Case(
        "seed 004 2x3x4x4 -> 2 3x3",
        False,
        (2, 3, 4, 4),
        (2, 3, 3, 3),
        quick=True,
        seed_sized=True,
    ),
    Case("seed 004 float64", False, (2, 3, 4, 4), (2, 3, 3, 3), dtype="float64", seed_sized=True),
    Case("LeNet 16x1x28x28 -> 8 5x5", False, (16, 1, 28, 28), (8, 1, 5, 5), quick=True),
    Case("DCGAN G 512x8x8 -> 256", True, (64, 512, 8, 8), (512, 256, 4, 4), 2, 1),
    Case("DCGAN G 256x16x16 -> 128", True, (64, 256, 16, 16), (256, 128, 4, 4), 2, 1, quick=True),
    Case("DCGAN G 128x32x32 -> 3", True, (64, 128, 32, 32), (128, 3, 4, 4), 2, 1),
    Case(
        "DCGAN G 256x16x16 float64",
        True,
        (64, 256, 16, 16),
        (256, 128, 4, 4),
        2,
        1,
        dtype="float64",
    ),
    Case("U-Net up 128x64x64 -> 64 2x2 s2", True, (8, 128, 64, 64), (128, 64, 2, 2), 2),
    Case("ResNet 64x56x56 3x3", False, (32, 64, 56, 56), (64, 64, 3, 3), 1, 1, quick=True),
    Case("DCGAN D 128x16x16 -> 256 4x4 s2", False, (64, 128, 16, 16), (256, 128, 4, 4), 2, 1),
    Case("pointwise 256x28x28 -> 64 1x1", False, (32, 256, 28, 28), (64, 256, 1, 1)),
    Case("dilated 64x64x64 3x3 d2", False, (8, 64, 64, 64), (64, 64, 3, 3), 1, 2, 2),
    Case("depthwise 128x56x56 3x3", False, (32, 128, 56, 56), (128, 1, 3, 3), 1, 1, groups=128),
    Case("1-D 64x1024 -> 64 k5", False, (32, 64, 1024), (64, 64, 5), 1, 2),
    Case("3-D 32x16x32x32 3x3x3", False, (4, 32, 16, 32, 32), (32, 32, 3, 3, 3), 1, 1),
    # Transposed layers users report as slow on CPUs, in their own shapes. A vocoder's
    # up-sampling (pytorch/pytorch#120982):
    Case("vocoder up 512x100 -> 256 k1024 s256", True, (1, 512, 100), (512, 256, 1024), 256, 384),
    # 3-D U-Net decoder layers (the second is oneDNN's unet_3d:deconv8):
    Case("3-D U-Net up 256x16^3 -> 128 2^3 s2", True, (1, 256, 16, 16, 16), (256, 128, 2, 2, 2), 2),
    Case("3-D U-Net 512x8x9x9 -> 256 3^3", True, (1, 512, 8, 9, 9), (512, 256, 3, 3, 3)),
    # A strided 3-D up-sampling (tensorflow/tensorflow#19611):
    Case(
        "3-D up 64x16x32x32 -> 32 3^3 s2",
        True,
        (2, 64, 16, 32, 32),
        (64, 32, 3, 3, 3),
        2,
        1,
        output_padding=1,
    ),
    # A 2x up-sampling of a 6x6 image with DCGAN's kernel, stride and padding: all call overhead.
    Case("1x2x6x6 -> 2 k4 s2 p1", True, (1, 2, 6, 6), (2, 2, 4, 4), 2, 1, seed_sized=True),
]


def _rss_peak_reset() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def extra_memory_mib(fn: Callable[[], object]) -> float:
    """Peak resident memory above the level before the call, in MiB (Linux only; else NaN)."""
    gc.collect()
    if not _rss_peak_reset():
        return float("nan")
    before = _status_kib("VmRSS")
    result = fn()
    peak = _status_kib("VmHWM")
    del result
    return max(0.0, (peak - before) / 1024.0)


def _median_times(functions: list[Callable[[], object]], repeats: int, budget: float):
    """Times the functions alternately, one call each per round, and returns their medians."""
    for fn in functions:
        fn()
    times: list[list[float]] = [[] for _ in functions]
    start = time.perf_counter()
    for round_ in range(repeats):
        for i, fn in enumerate(functions):
            t0 = time.perf_counter()
            fn()
            times[i].append(time.perf_counter() - t0)
        if round_ >= 2 and time.perf_counter() - start > budget:
            break
    return [statistics.median(t) for t in times]


def _convt_calls(case: Case, x, w, b):
    forward = getattr(functional, case.op_name())
    backward = getattr(functional, case.op_name() + "_backward")
    kwargs = case.kwargs()

    def run_forward():
        return forward(x, w, b, **kwargs)

    def run_both():
        y = forward(x, w, b, **kwargs)
        return backward(y, x, w, **kwargs)

    return run_forward, run_both


def _torch_calls(case: Case, x, w, b):
    import torch

    tf = getattr(torch.nn.functional, case.op_name())
    tx = torch.from_numpy(x).requires_grad_(True)
    tw = torch.from_numpy(w).requires_grad_(True)
    tb = torch.from_numpy(b).requires_grad_(True)
    kwargs = case.kwargs()
    args: tuple[object, ...]
    if case.transposed:
        args = (
            kwargs["stride"],
            kwargs["padding"],
            kwargs["output_padding"],
            kwargs["groups"],
            kwargs["dilation"],
        )
    else:
        args = (kwargs["stride"], kwargs["padding"], kwargs["dilation"], kwargs["groups"])

    def run_forward():
        with torch.no_grad():
            return tf(tx, tw, tb, *args)

    def run_both():
        y = tf(tx, tw, tb, *args)
        tx.grad = tw.grad = tb.grad = None
        y.backward(y.detach())
        return tx.grad, tw.grad, tb.grad

    return run_forward, run_both


def measure_fma_peak() -> float:
    """The machine's float32 FMA throughput over all threads, in GFLOP/s."""
    return _core.fma_peak_gflops(0.2)


@dataclasses.dataclass
class Result:
    case: Case
    forward: tuple[float, float]
    both: tuple[float, float]
    memory: tuple[float, float]


def run_case(case: Case, repeats: int, budget: float, torch_available: bool) -> Result:
    rng = np.random.default_rng(0)
    x = rng.standard_normal(case.input_shape).astype(case.dtype)
    w = (rng.standard_normal(case.weight_shape) * 0.1).astype(case.dtype)
    out_channels = case.weight_shape[1] * case.groups if case.transposed else case.weight_shape[0]
    b = rng.standard_normal(out_channels).astype(case.dtype)
    convt_forward, convt_both = _convt_calls(case, x, w, b)
    if torch_available:
        torch_forward, torch_both = _torch_calls(case, x, w, b)
        forward = _median_times([convt_forward, torch_forward], repeats, budget)
        both = _median_times([convt_both, torch_both], repeats, budget)
        memory = (extra_memory_mib(convt_both), extra_memory_mib(torch_both))
    else:
        forward = [*_median_times([convt_forward], repeats, budget), float("nan")]
        both = [*_median_times([convt_both], repeats, budget), float("nan")]
        memory = (extra_memory_mib(convt_both), float("nan"))
    return Result(case, tuple(forward), tuple(both), memory)


def floor_report(repeats: int = 2001) -> str:
    """The cost of the smallest bound call that takes two arrays and returns a new one, beside
    seed-sized forwards, which are nothing but call overhead: each as a multiple of it."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((10, 10))
    w = rng.standard_normal((3, 3))
    x4 = x.reshape(1, 1, 10, 10)
    w4 = w.reshape(1, 1, 3, 3)
    probes = {
        "floor (_core.floor_probe)": lambda: _core.floor_probe(x, w),
        "_core.convolute 10x10 3x3": lambda: _core.convolute(x, w),
        "functional.conv_transpose2d seed 000": lambda: functional.conv_transpose2d(x4, w4),
    }
    times = _median_times(list(probes.values()), repeats, 1.0)
    floor = times[0]
    cells = [
        f"{name} {_fmt_time(t)}" + ("" if i == 0 else f" ({t / floor:.1f}x)")
        for i, (name, t) in enumerate(zip(probes, times, strict=True))
    ]
    return "Call overhead, float64: " + "; ".join(cells) + "."


def _fmt_time(seconds: float) -> str:
    if math.isnan(seconds):
        return "-"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} us"
    return f"{seconds * 1e3:.2f} ms"


def _fmt_number(value: float, digits: int) -> str:
    """A ratio or a size; '-' where there is nothing to report (no PyTorch)."""
    return "-" if math.isnan(value) else f"{value:.{digits}f}"


def _geometric_mean(values: list[float]) -> float:
    return math.exp(statistics.mean(math.log(v) for v in values))


def _summary(results: list[Result]) -> str:
    """Geometric means and worst ratios, for the seed-sized cases (all call overhead) and the
    layers apart, then for every case."""
    timed = [r for r in results if not math.isnan(r.forward[1])]
    if not timed:
        return ""
    groups = [
        ("seed-sized cases", [r for r in timed if r.case.seed_sized]),
        ("layers", [r for r in timed if not r.case.seed_sized]),
    ]
    if all(members for _, members in groups):
        groups.append(("all cases", timed))
    lines = []
    for label, members in groups:
        if not members:
            continue
        forward = [r.forward[0] / r.forward[1] for r in members]
        both = [r.both[0] / r.both[1] for r in members]
        lines.append(
            f"{label} ({len(members)}): geometric mean forward {_geometric_mean(forward):.2f}, "
            f"forward+backward {_geometric_mean(both):.2f}; worst forward {max(forward):.2f}, "
            f"forward+backward {max(both):.2f}."
        )
    return (
        "\nRatios are convt time / PyTorch time (below 1: convt is faster).\n\n"
        + "\n".join(f"- {line}" for line in lines)
        + "\n"
    )


def main_table(results: list[Result], peak: float) -> str:
    header = (
        "| case | dtype | fwd convt | fwd torch | fwd ratio | fwd GFLOP/s (% peak) "
        "| fwd+bwd convt | fwd+bwd torch | fwd+bwd ratio | fwd+bwd GFLOP/s (% peak) "
        "| extra MiB convt / torch |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|\n"
    )
    rows = []
    for r in results:
        flops = r.case.forward_flops()
        f_rate = flops / r.forward[0] / 1e9
        b_rate = 3 * flops / r.both[0] / 1e9
        rows.append(
            f"| {r.case.name} | {r.case.dtype} | {_fmt_time(r.forward[0])} | "
            f"{_fmt_time(r.forward[1])} | {_fmt_number(r.forward[0] / r.forward[1], 2)} | "
            f"{f_rate:.1f} ({100 * f_rate / peak:.0f}%) | "
            f"{_fmt_time(r.both[0])} | {_fmt_time(r.both[1])} | "
            f"{_fmt_number(r.both[0] / r.both[1], 2)} | "
            f"{b_rate:.1f} ({100 * b_rate / peak:.0f}%) | "
            f"{_fmt_number(r.memory[0], 1)} / {_fmt_number(r.memory[1], 1)} |"
        )
    return header + "\n".join(rows) + "\n" + _summary(results)


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            cwd=os.path.dirname(os.path.abspath(__file__)),
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def run(quick: bool = False, repeats: int = 15, budget: float = 3.0, cases=None, log=print) -> str:
    """Runs the suite and returns its report as Markdown."""
    try:
        import torch

        torch.set_num_threads(_core.get_num_threads())
        torch_version = str(torch.__version__)
        torch_available = True
    except ImportError:
        torch_version = "not installed"
        torch_available = False
    selected = cases if cases is not None else [c for c in CASES if c.quick or not quick]
    peak = measure_fma_peak()
    log(f"FMA peak (float32, {_core.get_num_threads()} threads): {peak:.0f} GFLOP/s")
    overhead = floor_report()
    log(overhead)
    results = []
    for case in selected:
        result = run_case(case, repeats, budget, torch_available)
        log(
            f"{case.name:36s} fwd {_fmt_time(result.forward[0]):>10s} vs "
            f"{_fmt_time(result.forward[1]):>10s}   fwd+bwd {_fmt_time(result.both[0]):>10s} vs "
            f"{_fmt_time(result.both[1]):>10s}"
        )
        results.append(result)
    header = (
        f"Machine: {_cpu_model()}, {os.cpu_count()} CPUs, {_core.get_num_threads()} threads; "
        f"convt {_core.__version__} (commit {_commit()}, ISA {_core.get_isa()}); "
        f"PyTorch {torch_version}; date {datetime.date.today().isoformat()}; measured FMA peak "
        f"{peak:.0f} GFLOP/s float32.\n\n{overhead}\n\n"
    )
    return header + main_table(results, peak)
