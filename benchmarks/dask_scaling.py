"""convt.dask on embedded clusters: one worker against two, and both against the single call.

    python benchmarks/dask_scaling.py              # the two large cases and the per-task overhead
    python benchmarks/dask_scaling.py --rounds 3   # fewer rounds

Cases:
  batch    conv2d forward and backward (grad_input, grad_weight, grad_bias) of a batch of 128
           64x32x32 images, 64 filters 3x3, in 8 batch chunks;
  spatial  conv3d forward of one 8-channel 128^3 volume, 16 filters 3x3x3, padding 1, in 8
           spatial chunks of 64^3 (each with its halo);
  tiny     conv2d of 256 4x4 images in 256 batch chunks: almost nothing to compute, so its
           time per task is the scheduler's and convt.dask's cost of one task;
  no-op    the same 256 chunks through dask's own map_blocks(np.copy), no convt: what a task
           costs dask.distributed on this machine, the floor for the tiny case's.

Each worker is a process (LocalCluster(processes=True)) with one thread, and convt runs one
thread in it; the single call runs convt on the whole array in this process, with 1 thread and
with every core. The inputs live on the workers before timing starts (generated there and
persisted), and each timing persists the results on the workers, so no array travels to or from
this process while timed. Every round times every configuration one after the other; the table
shows medians over rounds, and the load average (uptime) before and after, since the machine may
be shared; its last column compares the fastest round of each, the time nearest to an unshared
machine's when other work comes and goes.

After the timed rounds, three more on one worker record distributed's task stream (medians), which
splits "overhead per task" (what one worker takes beyond the single call on one thread, per
task) in two: the time the worker spent outside tasks (waiting for the scheduler, taking a
result in, starting the next task), per task, which the kernels' time does not enter, and the
time it spent in tasks, to set beside the single call's. The no-op case gives the first for
dask's own tasks on the same cluster. Those runs also take the CPU time of the worker's task
thread and of its event loop, and the single call's CPU time is taken on one thread: CPU times,
unlike the others, hold when other processes share the cores, so the kernels' cost in a worker
reads against the single call's at any load.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import statistics
import threading
import time
from collections.abc import Callable

import convt
import dask
import dask.array as da
import numpy as np
from convt import dask as cd
from convt import functional
from dask._task_spec import DataNode
from dask.base import collections_to_expr
from distributed import Client, LocalCluster, futures_of, get_task_stream, wait


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            fields = dict(
                line.split(":", 1) for line in f.read().split("\n\n")[0].splitlines() if ":" in line
            )
        fields = {k.strip(): v.strip() for k, v in fields.items()}
        return (
            f"{fields.get('model name', '?')} (family {fields.get('cpu family', '?')}, "
            f"model {fields.get('model', '?')})"
        )
    except OSError:
        return platform.processor() or "unknown CPU"


def load() -> str:
    return "/".join(f"{value:.2f}" for value in os.getloadavg())


class Case:
    """One workload: how to build it lazily from inputs on a cluster, and the single call."""

    def __init__(
        self,
        name: str,
        inputs: Callable[[], dict[str, da.Array]],
        lazy: Callable[[dict[str, da.Array]], list[da.Array]],
        single: Callable[[dict[str, np.ndarray]], object],
    ) -> None:
        self.name, self.inputs, self.lazy, self.single = name, inputs, lazy, single


def batch_case() -> Case:
    w = np.random.default_rng(1).standard_normal((64, 64, 3, 3)).astype(np.float32) * 0.05
    b = np.zeros(64, np.float32)

    def inputs() -> dict[str, da.Array]:
        # x and dy drawn as one array, so that each batch chunk of both lives on one worker, as
        # a training step's would (its dy comes from its own forward): drawn separately, half
        # the chunks' dy would sit on the other worker and travel to the tasks that read both.
        both = da.random.default_rng(2).standard_normal(
            (128, 128, 32, 32), chunks=(16, 128, 32, 32), dtype=np.float32
        )
        return {
            "x": both[:, :64].map_blocks(np.ascontiguousarray),
            "dy": both[:, 64:].map_blocks(np.ascontiguousarray),
        }

    def lazy(a: dict[str, da.Array]) -> list[da.Array]:
        y = cd.conv2d(a["x"], w, b, padding=1)
        return [y, *cd.conv2d_backward(a["dy"], a["x"], w, padding=1)]

    def single(a: dict[str, np.ndarray]) -> object:
        y = functional.conv2d(a["x"], w, b, padding=1)
        return y, functional.conv2d_backward(a["dy"], a["x"], w, padding=1)

    return Case("batch: conv2d fwd+bwd, 128x64x32x32, 8 batch chunks", inputs, lazy, single)


def spatial_case() -> Case:
    w = np.random.default_rng(3).standard_normal((16, 8, 3, 3, 3)).astype(np.float32) * 0.05

    def inputs() -> dict[str, da.Array]:
        rng = da.random.default_rng(4)
        shape, chunks = (1, 8, 128, 128, 128), (1, 8, 64, 64, 64)
        return {"x": rng.standard_normal(shape, chunks=chunks, dtype=np.float32)}

    def lazy(a: dict[str, da.Array]) -> list[da.Array]:
        return [cd.conv3d(a["x"], w, padding=1)]

    def single(a: dict[str, np.ndarray]) -> object:
        return functional.conv3d(a["x"], w, padding=1)

    return Case("spatial: conv3d fwd, 1x8x128^3, 8 chunks of 64^3", inputs, lazy, single)


def tiny_case() -> Case:
    w = np.ones((1, 1, 3, 3), np.float32)

    def inputs() -> dict[str, da.Array]:
        rng = da.random.default_rng(5)
        return {"x": rng.standard_normal((256, 1, 4, 4), chunks=(1, 1, 4, 4), dtype=np.float32)}

    def lazy(a: dict[str, da.Array]) -> list[da.Array]:
        return [cd.conv2d(a["x"], w, padding=1)]

    def single(a: dict[str, np.ndarray]) -> object:
        return functional.conv2d(a["x"], w, padding=1)

    return Case("tiny: conv2d 256x1x4x4, 256 batch chunks", inputs, lazy, single)


def noop_case() -> Case:
    def inputs() -> dict[str, da.Array]:
        rng = da.random.default_rng(5)
        return {"x": rng.standard_normal((256, 1, 4, 4), chunks=(1, 1, 4, 4), dtype=np.float32)}

    def lazy(a: dict[str, da.Array]) -> list[da.Array]:
        return [a["x"].map_blocks(np.copy)]

    def single(a: dict[str, np.ndarray]) -> object:
        return np.copy(a["x"])

    return Case("no-op: dask's map_blocks(np.copy), 256 chunks", inputs, lazy, single)


def tasks_of(arrays: list[da.Array], inputs: dict[str, da.Array]) -> int:
    """The tasks a computation runs beyond its (persisted) inputs, counted in the graph as
    dask optimises it for distributed (low-level fusion, culling): kernel calls, halo cuts,
    sums and aliases; the weight and bias nodes are data, not tasks."""
    graph = collections_to_expr(arrays, optimize_graph=True).optimize().__dask_graph__()
    given = {key for a in inputs.values() for key in a.__dask_graph__()}
    return sum(
        1 for key, node in graph.items() if key not in given and not isinstance(node, DataNode)
    )


def settle(client: Client, arrays: list[da.Array]) -> None:
    """Wait until the persisted arrays are computed on the cluster, without fetching them."""
    with client.as_current():
        wait(futures_of(arrays))


def time_on(client: Client, case: Case, data: dict[str, da.Array]) -> float:
    arrays = case.lazy(data)
    start = time.perf_counter()
    persisted = client.persist(arrays)
    settle(client, persisted)
    elapsed = time.perf_counter() - start
    del persisted
    return elapsed


def thread_clocks() -> dict[str, float]:
    """CPU time of each thread of this process, by name: run on a worker, its task threads
    ("Dask-Default-Threads-...") and its event loop ("MainThread")."""
    clocks = {}
    for thread in threading.enumerate():
        if thread.ident is not None:
            clocks[thread.name] = time.clock_gettime(time.pthread_getcpuclockid(thread.ident))
    return clocks


def cpu_between(before: dict[str, dict[str, float]], after: dict[str, dict[str, float]]):
    """The CPU time the workers' task threads and event loops took between two thread_clocks."""
    tasks = loops = 0.0
    for worker, clocks in after.items():
        for name, clock in clocks.items():
            spent = clock - before[worker].get(name, 0.0)
            if "Dask-Default-Threads" in name:
                tasks += spent
            elif name == "MainThread":
                loops += spent
    return tasks, loops


def task_stream(
    client: Client, case: Case, data: dict[str, da.Array]
) -> tuple[float, float, float, float]:
    """One run with distributed's task stream recorded: the time from submitting the graph to
    the end of its last task that the workers spent outside tasks, per task run (the weight
    and bias nodes included, since the scheduler runs them as tasks), and the time they spent
    in tasks, all added up; then the CPU time the workers' task threads took (which a loaded
    machine's other processes do not enter, as they do the times before) and their event
    loops'."""
    arrays = case.lazy(data)
    before = client.run(thread_clocks)
    start = time.time()  # the task stream's clock
    with get_task_stream(client=client) as stream:
        persisted = client.persist(arrays)
        settle(client, persisted)
    after = client.run(thread_clocks)
    del persisted
    computes = [
        (part["start"], part["stop"])
        for task in stream.data
        for part in task["startstops"]
        if part["action"] == "compute"
    ]
    workers = len(client.scheduler_info(n_workers=-1)["workers"])
    end = max(stop for _, stop in computes)
    busy = sum(stop - begin for begin, stop in computes)
    return (workers * (end - start) - busy) / len(computes), busy, *cpu_between(before, after)


def time_single(
    case: Case,
    data: dict[str, np.ndarray],
    threads: int,
    clock: Callable[[], float] = time.perf_counter,
) -> float:
    previous = convt.get_num_threads()
    convt.set_num_threads(threads)
    try:
        start = clock()
        case.single(data)
        return clock() - start
    finally:
        convt.set_num_threads(previous)


def cluster(workers: int) -> tuple[LocalCluster, Client]:
    c = LocalCluster(
        n_workers=workers,
        threads_per_worker=1,
        processes=True,
        dashboard_address=":0",
        memory_limit="3GiB",
        silence_logs=logging.ERROR,
    )
    client = Client(c, set_as_default=False)
    client.run(convt.set_num_threads, 1)  # one core per worker
    return c, client


def main() -> None:
    logging.getLogger("distributed").setLevel(logging.ERROR)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    print(f"Machine: {cpu_model()}, {cores} CPUs; dask {dask.__version__}")
    print(f"load average before: {load()}")

    clusters = {1: cluster(1), 2: cluster(2)}
    try:
        rows = []
        for case in (batch_case(), spatial_case(), tiny_case(), noop_case()):
            lazy_inputs = case.inputs()
            with dask.config.set(scheduler="sync"):
                local = dict(zip(lazy_inputs, dask.compute(*lazy_inputs.values()), strict=True))
            on = {}
            for workers, (_, client) in clusters.items():
                on[workers] = dict(
                    zip(lazy_inputs, client.persist(list(lazy_inputs.values())), strict=True)
                )
                settle(client, list(on[workers].values()))
            tasks = tasks_of(case.lazy(on[1]), on[1])
            load_before = load()
            times: dict[str, list[float]] = {
                "single 1t": [],
                "single": [],
                "1w": [],
                "2w": [],
                "single 1t cpu": [],
            }
            for workers in clusters:  # warm up: imports and first calls on each worker
                time_on(clusters[workers][1], case, on[workers])
            time_single(case, local, cores)
            for _ in range(args.rounds):
                times["single 1t"].append(time_single(case, local, 1))
                times["single 1t cpu"].append(time_single(case, local, 1, time.thread_time))
                times["single"].append(time_single(case, local, cores))
                for workers, (_, client) in clusters.items():
                    times[f"{workers}w"].append(time_on(client, case, on[workers]))
            streams = [task_stream(clusters[1][1], case, on[1]) for _ in range(3)]
            idle, busy, task_cpu, loop_cpu = (
                statistics.median(values) for values in zip(*streams, strict=True)
            )
            median = {key: statistics.median(values) for key, values in times.items()}
            best = {key: min(values) for key, values in times.items()}
            rows.append(
                (
                    case.name,
                    tasks,
                    median,
                    best,
                    idle,
                    busy,
                    task_cpu,
                    loop_cpu,
                    load_before,
                    load(),
                )
            )
            print(
                f"{case.name}: "
                + ", ".join(f"{k} {v * 1e3:.1f} ms" for k, v in median.items())
                + f"; 1 worker outside tasks {idle * 1e3:.2f} ms per task"
                + f", in tasks {busy * 1e3:.0f} ms"
                + f", task thread CPU {task_cpu * 1e3:.0f} ms"
                + f", event loop CPU {loop_cpu * 1e3:.0f} ms"
                + f"; load {load_before} -> {load()}",
                flush=True,
            )
    finally:
        for c, client in clusters.values():
            client.close()
            c.close()

    print()
    print(f"Medians of {args.rounds} rounds; each worker a process with one thread.")
    print()
    print(
        "| case | tasks | single call, 1 thread | single call, "
        f"{cores} threads | 1 worker | 2 workers | 2 workers / 1 worker | "
        "2 workers / single call | overhead per task | 1 worker: outside tasks, per task | "
        "1 worker: in tasks | single call, 1 thread, CPU | 1 worker: task thread CPU | "
        "1 worker: event loop CPU | load (1/5/15 min) | 2 workers / 1 worker, best rounds |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name, tasks, m, b, idle, busy, task_cpu, loop_cpu, before, after in rows:
        # What one worker spends beyond the same work done by one call on one thread.
        overhead = (m["1w"] - m["single 1t"]) / tasks
        # Against a single call that takes no time, the ratio says nothing.
        against_single = f"{m['2w'] / m['single']:.2f}" if 10 * m["single"] > m["2w"] else "-"
        print(
            f"| {name} | {tasks} | {m['single 1t'] * 1e3:.0f} ms | {m['single'] * 1e3:.0f} ms | "
            f"{m['1w'] * 1e3:.0f} ms | {m['2w'] * 1e3:.0f} ms | {m['1w'] / m['2w']:.2f}x | "
            f"{against_single} | {overhead * 1e3:.2f} ms | {idle * 1e3:.2f} ms | "
            f"{busy * 1e3:.0f} ms | {m['single 1t cpu'] * 1e3:.0f} ms | {task_cpu * 1e3:.0f} ms | "
            f"{loop_cpu * 1e3:.0f} ms | {before} -> {after} | "
            f"{b['1w'] / b['2w']:.2f}x |"
        )
    print(f"\nload average after: {load()}")


if __name__ == "__main__":
    main()
