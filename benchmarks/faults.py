"""Minor page faults per forward+backward call of each benchmark case, convt and PyTorch
alternating in one process as in `python -m convt bench` (Linux; a fault costs about a
microsecond on the development machine).

    python benchmarks/faults.py
"""

import resource
import statistics

import numpy as np
from convt import bench


def faults_per_call(fn, calls=5):
    counts = []
    for _ in range(calls):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        fn()
        counts.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    return statistics.median(counts)


def main():
    print("| case | convt | PyTorch |\n|---|---|---|")
    for case in bench.CASES:
        if case.dtype != "float32":
            continue
        rng = np.random.default_rng(0)
        x = rng.standard_normal(case.input_shape).astype(case.dtype)
        w = (rng.standard_normal(case.weight_shape) * 0.1).astype(case.dtype)
        out_channels = (
            case.weight_shape[1] * case.groups if case.transposed else case.weight_shape[0]
        )
        b = rng.standard_normal(out_channels).astype(case.dtype)
        _, convt_both = bench._convt_calls(case, x, w, b)
        _, torch_both = bench._torch_calls(case, x, w, b)
        counts = [0.0, 0.0]
        for _ in range(2):  # warm up both, then count alternately
            convt_both()
            torch_both()
        for _ in range(5):
            counts[0] += faults_per_call(convt_both, 1) / 5
            counts[1] += faults_per_call(torch_both, 1) / 5
        print(f"| {case.name} | {counts[0]:.0f} | {counts[1]:.0f} |")


if __name__ == "__main__":
    main()
