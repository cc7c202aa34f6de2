"""The crash-safe fuzz runner: ``python -m tests.fuzz`` from the repository root.

Worker processes run cases (cases.py) against the installed convt, each announcing a case's
index before it runs; this process watches them. A worker that dies (a crash, a sanitizer
report) or stops making progress (a hang: ``--timeout`` seconds on one case) is replaced, and
its case is saved as a reproducer; so is every case that gives a wrong result or an error that
is not convt's own. Reproducers land in ``--findings`` (one JSON file per kind of finding, the
first case of each) and replay in-process with ``--replay FILE``.

    python -m tests.fuzz --minutes 30                  # the long local run
    python -m tests.fuzz --calls 100000 --minutes 8    # CI: at least 1e5 calls, 8 minutes at most
    python -m tests.fuzz --replay fuzz-findings/crash-7-123.json

Exit status 1 when something was found (or, with --require-calls, when the time ran out before
--calls), 0 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

from .cases import make_case

# AddressSanitizer's reports of a size its allocator will not serve.
REFUSED_ALLOCATION = (
    "allocator is trying to allocate",
    "allocator is out of memory",
    "exceeds maximum supported size",
)


def worker(seed: int, start: int, valid_share: float) -> None:
    """Runs cases ``start, start + 1, ...`` of ``seed``, announcing each on stdout."""
    if "asan" not in os.environ.get("LD_PRELOAD", ""):
        # A hostile size that NumPy can allocate would take the shared machine's memory; under
        # AddressSanitizer, whose shadow memory needs a huge address space, it reports instead.
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (4 << 30, resource.RLIM_INFINITY))
    from .execute import Finding, run_case

    # The runner's own test: CONVT_FUZZ_FAULTS="crash@5,hang@9" crashes or hangs at those cases.
    faults = dict(
        reversed(fault.split("@"))
        for fault in os.environ.get("CONVT_FUZZ_FAULTS", "").split(",")
        if fault
    )
    out = sys.stdout
    calls = 0
    index = start
    while True:
        out.write(f"S {index}\n")
        out.flush()
        fault = faults.get(str(index))
        if fault == "crash":
            os.abort()
        if fault == "hang":
            time.sleep(3600)
        case = make_case(seed, index, valid_share)
        try:
            calls += run_case(case)
        except Finding as finding:
            out.write(
                "F "
                + json.dumps({"index": index, "kind": finding.kind, "detail": finding.detail})
                + "\n"
            )
        out.write(f"D {index} {calls}\n")
        index += 1


def report(stderr: str) -> str:
    """The part of a dead worker's stderr that says why: from a sanitizer's first line on, or
    its end."""
    match = re.search(r"^.*(ERROR: |runtime error|CHECK failed|Fatal Python error)", stderr, re.M)
    return stderr[match.start() : match.start() + 4000] if match else stderr[-4000:]


class Worker:
    def __init__(self, seed: int, start: int, log: Path, share: str) -> None:
        self.seed, self.start, self.log = seed, start, log
        self.current: int | None = None
        self.since = time.monotonic()
        self.calls = 0
        self.cases = 0
        self.buffer = b""
        self.stderr = open(log, "wb")  # noqa: SIM115 (closed in stop)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.fuzz", "--worker", str(seed), str(start), share],
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            start_new_session=True,
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self.stderr.close()


class Runner:
    def __init__(self, options: argparse.Namespace) -> None:
        self.options = options
        self.findings_dir = Path(options.findings)
        self.findings_dir.mkdir(parents=True, exist_ok=True)
        self.selector = selectors.DefaultSelector()
        self.kinds: dict[str, int] = {}
        self.calls = 0
        self.cases = 0
        self.refused = 0
        self.next_seed = options.seed

    def spawn(self, slot: int, seed: int | None = None, start: int = 0) -> Worker:
        if seed is None:
            seed, self.next_seed = self.next_seed, self.next_seed + 1
        log = self.findings_dir / f"worker-{slot}.stderr"
        worker = Worker(seed, start, log, str(self.options.valid_share))
        self.selector.register(worker.process.stdout, selectors.EVENT_READ, (slot, worker))
        return worker

    def record(self, kind: str, worker: Worker, index: int, detail: str) -> None:
        key = re.sub(r"\d+", "N", f"{kind}|{detail.splitlines()[0] if detail else ''}")[:200]
        count = self.kinds.get(key, 0)
        self.kinds[key] = count + 1
        if count:
            return
        name = re.sub(r"[^a-z0-9]+", "-", kind.lower()).strip("-")
        path = self.findings_dir / f"{name}-{worker.seed}-{index}.json"
        case = make_case(worker.seed, index, self.options.valid_share)
        path.write_text(json.dumps({"kind": kind, "detail": detail, "case": case}, indent=1))
        print(f"finding: {kind}: {detail.splitlines()[0] if detail else ''} -> {path}", flush=True)

    def replace(self, slot: int, worker: Worker, kind: str) -> Worker:
        """Saves the case a dead or stuck worker was running and starts one after it."""
        self.selector.unregister(worker.process.stdout)
        worker.stop()
        index = worker.current
        if index is not None:
            tail = report(worker.log.read_text(errors="replace"))
            if any(words in tail for words in REFUSED_ALLOCATION):
                # The sanitizer's operator new aborts where the plain one throws bad_alloc.
                kind = "allocation the sanitizer refused (not counted)"
                self.refused += 1
            self.record(kind, worker, index, f"exit {worker.process.returncode}\n{tail}")
            start = index + 1
        else:
            start = worker.start
        self.absorb(worker)
        return self.spawn(slot, worker.seed, start)

    def absorb(self, worker: Worker) -> None:
        self.calls += worker.calls
        self.cases += worker.cases
        worker.calls = worker.cases = 0

    def read(self, worker: Worker, data: bytes) -> None:
        worker.buffer += data
        *lines, worker.buffer = worker.buffer.split(b"\n")
        for line in lines:
            tag, _, rest = line.decode().partition(" ")
            if tag == "S":
                worker.current, worker.since = int(rest), time.monotonic()
            elif tag == "D":
                index, calls = map(int, rest.split())
                worker.current = None
                worker.cases = index - worker.start + 1
                worker.calls = calls
            elif tag == "F":
                finding = json.loads(rest)
                self.record(finding["kind"], worker, finding["index"], finding["detail"])

    def total_calls(self, workers) -> int:
        return self.calls + sum(w.calls for w in workers.values())

    def run(self) -> int:
        options = self.options
        deadline = time.monotonic() + 60 * options.minutes
        workers = {slot: self.spawn(slot) for slot in range(options.workers)}
        reported = time.monotonic()
        try:
            while time.monotonic() < deadline:
                if options.calls and self.total_calls(workers) >= options.calls:
                    break
                for key, _ in self.selector.select(timeout=0.5):
                    slot, worker = key.data
                    data = os.read(key.fileobj.fileno(), 1 << 16)
                    if data:
                        self.read(worker, data)
                for slot, worker in list(workers.items()):
                    if worker.process.poll() is not None:
                        workers[slot] = self.replace(slot, worker, "crash")
                    elif (
                        worker.current is not None
                        and time.monotonic() - worker.since > options.timeout
                    ):
                        workers[slot] = self.replace(slot, worker, "hang")
                if time.monotonic() - reported > 30:
                    reported = time.monotonic()
                    print(f"... {self.total_calls(workers)} calls", flush=True)
        finally:
            for worker in workers.values():
                self.selector.unregister(worker.process.stdout)
                worker.stop()
                self.absorb(worker)
        allowed = sum(
            count
            for key, count in self.kinds.items()
            if any(key.startswith(kind) for kind in options.allow)
        )
        found = sum(self.kinds.values()) - self.refused - allowed
        if allowed:
            print(f"{allowed} findings of the kinds allowed by --allow are not counted")
        print(
            f"{self.calls} calls in {self.cases} cases, {options.workers} workers, seeds from "
            f"{options.seed}: {found} findings of {len(self.kinds)} kinds"
        )
        for key, count in sorted(self.kinds.items(), key=lambda item: -item[1]):
            print(f"  {count:6d}  {key}")
        short = options.calls and self.calls < options.calls
        if short:
            print(f"{self.calls} calls, fewer than the {options.calls} asked for in the time")
        return 1 if found or (short and options.require_calls) else 0


def replay(path: str) -> int:
    from .execute import Finding, run_case

    case = json.loads(Path(path).read_text())["case"]
    print(json.dumps(case, indent=1))
    try:
        print(f"{run_case(case)} calls, nothing found")
        return 0
    except Finding as finding:
        print(f"finding: {finding}")
        return 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.fuzz", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--minutes", type=float, default=1.0, help="run for at most this long")
    parser.add_argument("--calls", type=int, default=0, help="stop after this many calls")
    parser.add_argument(
        "--require-calls", action="store_true", help="fail when --minutes ends before --calls"
    )
    parser.add_argument("--workers", type=int, default=2, help="worker processes")
    parser.add_argument("--seed", type=int, default=int(time.time()) % 100000, help="first seed")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds one case may take")
    parser.add_argument("--findings", default="fuzz-findings", help="where reproducers go")
    parser.add_argument(
        "--allow",
        action="append",
        default=[],
        metavar="KIND",
        help="report findings whose kind starts with KIND without failing (repeatable)",
    )
    parser.add_argument("--replay", metavar="FILE", help="run one saved case in this process")
    parser.add_argument(
        "--valid-share",
        type=float,
        default=0.15,
        help="share of valid cases, checked against the plain-loop reference (slower)",
    )
    parser.add_argument(
        "--worker", nargs=3, metavar=("SEED", "START", "SHARE"), help=argparse.SUPPRESS
    )
    options = parser.parse_args(argv)
    if options.worker:
        seed, start, share = options.worker
        worker(int(seed), int(start), float(share))
        return 0
    if options.replay:
        return replay(options.replay)
    return Runner(options).run()


if __name__ == "__main__":
    sys.exit(main())
