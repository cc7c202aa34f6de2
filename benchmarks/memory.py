"""Peak memory beyond a call's own arrays, at two batch sizes of one DCGAN layer.

    python benchmarks/memory.py 8 && python benchmarks/memory.py 256

Runs ConvTranspose2d(256, 128, 4, stride 2, padding 1) forward and backward once and prints how
far the peak resident memory rose above the input, output and gradient arrays (Linux only).
"""

import sys

import numpy as np
from convt import functional


def status_mib(field: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise KeyError(field)


def main() -> None:
    batch = int(sys.argv[1])
    x = np.ones((batch, 256, 16, 16), np.float32)
    w = np.ones((256, 128, 4, 4), np.float32)
    b = np.zeros(128, np.float32)
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # restart the peak (VmHWM) from the current resident size
    before = status_mib("VmRSS")
    y = functional.conv_transpose2d(x, w, b, 2, 1)
    grads = functional.conv_transpose2d_backward(y, x, w, 2, 1)
    arrays = (y.nbytes + sum(g.nbytes for g in grads)) / 2**20
    grown = status_mib("VmHWM") - before
    print(
        f"batch {batch}: outputs and gradients {arrays:.0f} MiB, peak grew {grown:.0f} MiB, "
        f"{grown - arrays:.1f} MiB beyond them"
    )


if __name__ == "__main__":
    main()
