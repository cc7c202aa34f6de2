"""convt's GEMM against OpenBLAS's, side by side in one process, on the benchmark suite's GEMMs.

    pip install . scipy-openblas32
    python benchmarks/gemm.py                   # every x86 ISA this CPU has, one process each
    python benchmarks/gemm.py --isa avx2 --quick
    python benchmarks/gemm.py --output benchmarks/gemm-new.md

Each layer of `convt.bench.CASES` that is one GEMM per group (no groups, at least 10^8
multiply-adds) gives three: its forward, input-gradient and weight-gradient GEMMs over a block of
whole samples of at least 4096 columns, with operands laid out as convt's kernels lay them (the
input gradient reads the weights transposed, the weight gradient the lowered input). Three shapes
from earlier measurements join them. Every shape is timed in float32 and float64 (OpenBLAS's sgemm
and dgemm, from the scipy-openblas32 wheel, through ctypes), the two libraries alternating, best
of the rounds.

Each ISA runs in a process of its own, with OpenBLAS on the matching kernels: for avx512 its own
choice (OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset), for avx2 OPENBLAS_CORETYPE=Haswell. Both
libraries' idle threads sleep at once (OMP_WAIT_POLICY=passive, OPENBLAS_THREAD_TIMEOUT=4, unless
set already), so that neither's spinning threads slow the other's calls. The percentages are of
the FMA probe's peak for that ISA on all threads (float64: half of float32's).
"""

from __future__ import annotations

import argparse
import ctypes
import functools
import json
import math
import os
import subprocess
import sys
import time

import numpy as np

# (m, n, k) of earlier measurements: a large GEMM, and ResNet 3x3's forward and weight gradient
# over one sample.
EXTRA_SHAPES = [
    ("512 x 3136 x 576", (512, 3136, 576), False, False),
    ("64 x 3136 x 576", (64, 3136, 576), False, False),
    ("64 x 576 x 3136", (64, 576, 3136), False, False),
]
OPENBLAS_ENVIRONMENT = {"avx512": {}, "avx2": {"OPENBLAS_CORETYPE": "Haswell"}}
ROW_MAJOR, NO_TRANSPOSE, TRANSPOSE = 101, 111, 112
BLOCK_COLUMNS = 4096


def suite_shapes():
    """(label, (m, n, k), transpose_a, transpose_b) of the suite's GEMM-bound layers."""
    from convt import bench

    shapes = []
    for case in bench.CASES:
        g = case.geometry()
        if g.groups != 1 or case.forward_flops() < 2e8:
            continue
        positions = math.prod(g.y_size)
        samples = min(g.batch, -(-BLOCK_COLUMNS // positions))
        columns = samples * positions
        lowered = g.x_channels * math.prod(g.kernel)  # rows of the im2col matrix
        out = g.y_channels
        shapes += [
            (f"{case.name}: forward", (out, columns, lowered), False, False),
            (f"{case.name}: input gradient", (lowered, columns, out), True, False),
            (f"{case.name}: weight gradient", (out, lowered, columns), False, True),
        ]
    return shapes + EXTRA_SHAPES


class OpenBlas:
    def __init__(self, threads: int):
        import scipy_openblas32

        path = os.path.join(scipy_openblas32.get_lib_dir(), "libscipy_openblas.so")
        self.lib = ctypes.CDLL(path)
        self.lib.scipy_openblas_get_corename.restype = ctypes.c_char_p
        self.lib.scipy_openblas_set_num_threads(threads)
        self.core = self.lib.scipy_openblas_get_corename().decode()

    def call(self, a, b, c):
        """c = a @ b for a, b C-contiguous or transposed views of C-contiguous arrays."""
        m, k = a.shape
        n = b.shape[1]

        def layout(x):
            if x.flags.c_contiguous:
                return NO_TRANSPOSE, x.shape[1]
            return TRANSPOSE, x.shape[0]

        trans_a, lda = layout(a)
        trans_b, ldb = layout(b)
        scalar = ctypes.c_float if a.dtype == np.float32 else ctypes.c_double
        function = (
            self.lib.scipy_cblas_sgemm if a.dtype == np.float32 else self.lib.scipy_cblas_dgemm
        )
        args = (ROW_MAJOR, trans_a, trans_b, m, n, k, scalar(1.0), ctypes.c_void_p(a.ctypes.data))
        args += (lda, ctypes.c_void_p(b.ctypes.data), ldb, scalar(0.0))
        args += (ctypes.c_void_p(c.ctypes.data), n)
        return lambda: function(*args)


def operand(rng, rows, cols, transposed, dtype):
    if transposed:
        return rng.standard_normal((cols, rows)).astype(dtype).T
    return rng.standard_normal((rows, cols)).astype(dtype)


def best_times(functions, rounds: int, budget: float):
    """Best time of each function, calling them in turn, a few calls each per round."""
    best = [math.inf] * len(functions)
    start = time.perf_counter()
    for round_ in range(rounds):
        for i, fn in enumerate(functions):
            for _ in range(2):
                t0 = time.perf_counter()
                fn()
                best[i] = min(best[i], time.perf_counter() - t0)
        if round_ >= 2 and time.perf_counter() - start > budget:
            break
    return best


def run_one_isa(args) -> None:
    """In the child: times every shape on the ISA CONVT_ISA names; prints JSON lines."""
    from convt import _core

    threads = _core.get_num_threads()
    blas = OpenBlas(threads)
    # The best of three: with idle threads asleep, the first probe can start before the second
    # thread wakes (one read 247 GFLOP/s where the next three read 504-509).
    peak = max(_core.fma_peak_gflops(0.2) for _ in range(3))
    print(
        json.dumps(
            {
                "isa": _core.get_isa(),
                "openblas": blas.core,
                "peak": peak,
                "threads": threads,
                "config": _core.gemm_config(),
            }
        ),
        flush=True,
    )
    rng = np.random.default_rng(0)
    shapes = suite_shapes()
    if args.quick:
        shapes = [s for s in shapes if "ResNet" in s[0] or s in EXTRA_SHAPES]
    for label, (m, n, k), transpose_a, transpose_b in shapes:
        for dtype in (np.float32, np.float64):
            a = operand(rng, m, k, transpose_a, dtype)
            b = operand(rng, k, n, transpose_b, dtype)
            c_convt = np.empty((m, n), dtype)
            c_blas = np.empty((m, n), dtype)
            blas_call = blas.call(a, b, c_blas)
            blas_call()
            _core.gemm(a, b, out=c_convt)
            scale = np.sqrt(k) * (1e-4 if dtype == np.float32 else 1e-12)
            assert np.abs(c_convt - c_blas).max() <= scale, label
            convt_call = functools.partial(_core.gemm, a, b, out=c_convt)
            times = best_times([convt_call, blas_call], args.rounds, args.budget)
            flops = 2.0 * m * n * k
            print(
                json.dumps(
                    {
                        "label": label,
                        "m": m,
                        "n": n,
                        "k": k,
                        "dtype": np.dtype(dtype).name,
                        "convt": times[0],
                        "openblas": times[1],
                        "flops": flops,
                    }
                ),
                flush=True,
            )


def table(isa_runs) -> str:
    lines = []
    for header, rows in isa_runs:
        peak = header["peak"]
        caches = header["config"]["caches"]
        f32, f64 = header["config"]["float32"], header["config"]["float64"]
        lines.append(
            f"ISA {header['isa']} against OpenBLAS {header['openblas']}, {header['threads']} "
            f"threads; FMA probe {peak:.0f} GFLOP/s float32; caches L1d {caches['l1d'] >> 10} "
            f"KiB, L2 {caches['l2'] >> 10} KiB, L3 {caches['l3'] >> 20} MiB ({caches['source']}); "
            f"float32 tile {f32['tile'][0]} x {f32['tile'][1]}, blocks depth {f32['depth']}, "
            f"rows {f32['rows']}, cols {f32['cols']}; float64 tile {f64['tile'][0]} x "
            f"{f64['tile'][1]}, blocks depth {f64['depth']}, rows {f64['rows']}, "
            f"cols {f64['cols']}.\n"
        )
        lines.append(
            "| GEMM | m x n x k | dtype | convt | OpenBLAS | convt / OpenBLAS "
            "| convt GFLOP/s (% peak) | OpenBLAS GFLOP/s (% peak) |"
        )
        lines.append("|---|---|---|---|---|---|---|---|")
        ratios = []
        for r in rows:
            dtype_peak = peak if r["dtype"] == "float32" else peak / 2
            rates = [r["flops"] / r[lib] / 1e9 for lib in ("convt", "openblas")]
            ratio = r["convt"] / r["openblas"]
            ratios.append(ratio)
            lines.append(
                f"| {r['label']} | {r['m']} x {r['n']} x {r['k']} | {r['dtype']} "
                f"| {r['convt'] * 1e3:.3f} ms | {r['openblas'] * 1e3:.3f} ms | {ratio:.2f} "
                f"| {rates[0]:.0f} ({100 * rates[0] / dtype_peak:.0f}%) "
                f"| {rates[1]:.0f} ({100 * rates[1] / dtype_peak:.0f}%) |"
            )
        if ratios:
            geo = math.exp(sum(map(math.log, ratios)) / len(ratios))
            lines.append(
                f"\nconvt / OpenBLAS: geometric mean {geo:.2f}, worst {max(ratios):.2f}, "
                f"{sum(r <= 1.0 for r in ratios)} of {len(ratios)} at most 1.\n"
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--isa", action="append", help="ISA to time (default: avx512, avx2)")
    parser.add_argument("--quick", action="store_true", help="ResNet's and the extra shapes only")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--budget", type=float, default=1.0, help="seconds per shape and dtype")
    parser.add_argument("--output", help="also write the table to this Markdown file")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run_one_isa(args)
        return
    from convt import _core

    isas = args.isa or [i for i in ("avx512", "avx2") if i in _core.supported_isas()]
    runs = []
    for isa in isas:
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
        }
        env.update(OPENBLAS_ENVIRONMENT.get(isa, {}), CONVT_ISA=isa)
        # Each library's idle threads put to sleep at once: OpenMP's (convt's) spin for a while
        # after a parallel region and OpenBLAS's for up to 2^28 cycles, and on a machine with as
        # many cores as threads the spinning ones take the cores of the other library's call.
        # Alternating, with both spinning, 256 x 4096 x 2048 took 22-27 ms in convt and 19-28 in
        # OpenBLAS, where each alone took 12 (Zen 5, 2 threads).
        env.setdefault("OMP_WAIT_POLICY", "passive")
        env.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")
        command = [
            sys.executable,
            __file__,
            "--child",
            "--rounds",
            str(args.rounds),
            "--budget",
            str(args.budget),
        ] + (["--quick"] if args.quick else [])
        child = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)
        header, rows = None, []
        for line in child.stdout:
            record = json.loads(line)
            if header is None:
                header = record
                print(
                    f"{isa}: OpenBLAS {record['openblas']}, peak {record['peak']:.0f} GFLOP/s",
                    flush=True,
                )
                continue
            rows.append(record)
            print(
                f"  {record['label']:45s} {record['dtype']:8s} convt {record['convt'] * 1e3:8.3f}"
                f" ms  OpenBLAS {record['openblas'] * 1e3:8.3f} ms  "
                f"ratio {record['convt'] / record['openblas']:.2f}",
                flush=True,
            )
        if child.wait() != 0:
            sys.exit(f"the {isa} run failed")
        runs.append((header, rows))
    report = table(runs)
    print(report)
    if args.output:
        with open(args.output, "w") as f:
            f.write(report)


if __name__ == "__main__":
    main()
