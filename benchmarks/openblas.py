"""OpenBLAS's sgemm (the scipy-openblas32 wheel) on the shapes benchmarks/gemm.cpp times.

    pip install scipy-openblas32
    python benchmarks/openblas.py                                        # as the machine is set
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/openblas.py   # its own choice

Prints the kernel OpenBLAS chose and the best of ten runs per shape, on 2 threads.
"""

import ctypes
import os
import time

import numpy as np
import scipy_openblas32

SHAPES = [(512, 3136, 576), (64, 3136, 576), (64, 576, 3136)]
ROW_MAJOR, NO_TRANSPOSE = 101, 111


def main() -> None:
    lib = ctypes.CDLL(os.path.join(scipy_openblas32.get_lib_dir(), "libscipy_openblas.so"))
    lib.scipy_openblas_get_corename.restype = ctypes.c_char_p
    lib.scipy_openblas_set_num_threads(2)
    print("OpenBLAS kernel:", lib.scipy_openblas_get_corename().decode())
    for m, n, k in SHAPES:
        a = np.random.rand(m, k).astype(np.float32)
        b = np.random.rand(k, n).astype(np.float32)
        c = np.empty((m, n), np.float32)
        args = (
            ROW_MAJOR,
            NO_TRANSPOSE,
            NO_TRANSPOSE,
            m,
            n,
            k,
            ctypes.c_float(1.0),
            ctypes.c_void_p(a.ctypes.data),
            k,
            ctypes.c_void_p(b.ctypes.data),
            n,
            ctypes.c_float(0.0),
            ctypes.c_void_p(c.ctypes.data),
            n,
        )
        lib.scipy_cblas_sgemm(*args)
        assert np.allclose(c, a @ b, rtol=1e-3)
        best = float("inf")
        for _ in range(10):
            start = time.perf_counter()
            lib.scipy_cblas_sgemm(*args)
            best = min(best, time.perf_counter() - start)
        rate = 2 * m * n * k / best / 1e9
        print(f"m {m:4d} n {n:4d} k {k:4d}: {best * 1e3:7.3f} ms {rate:6.1f} GFLOP/s")


if __name__ == "__main__":
    main()
