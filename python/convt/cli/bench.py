"""``convt bench``: runs the benchmark suite (convt.bench): for each case, convt's and PyTorch's
time (when PyTorch is installed) for forward and forward+backward, their ratio, the rate against
the machine's measured peak, and the extra memory. Progress goes to stderr, the Markdown table to
stdout (and to --output)."""

from __future__ import annotations

import argparse
import sys

from ._common import CommandError, positive_int

EPILOG = """\
examples:
  python -m convt bench --quick
  python -m convt bench --output results.md
  python -m convt bench --case DCGAN --case seed --repeats 5
  python -m convt bench --list"""


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = commands.add_parser(
        "bench",
        help="time convt against PyTorch on the benchmark suite",
        description=(__doc__ or "").replace("``", ""),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--quick", action="store_true", help="only the cases marked quick")
    p.add_argument("--output", metavar="FILE.md", help="also write the table to FILE.md")
    p.add_argument(
        "--case",
        action="append",
        metavar="TEXT",
        help="only the cases whose name contains TEXT (case-insensitive; repeatable)",
    )
    p.add_argument(
        "--repeats", type=positive_int, default=15, metavar="N", help="timed calls per case (15)"
    )
    p.add_argument(
        "--budget",
        type=float,
        default=3.0,
        metavar="SECONDS",
        help="seconds per case before stopping early (3)",
    )
    p.add_argument("--list", action="store_true", help="list the cases and exit")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from .. import bench

    cases = [c for c in bench.CASES if c.quick or not args.quick]
    if args.case:
        wanted = [text.lower() for text in args.case]
        cases = [c for c in cases if any(text in c.name.lower() for text in wanted)]
        if not cases:
            raise CommandError(
                f"--case: no {'quick ' if args.quick else ''}case matches "
                f"{' or '.join(map(repr, args.case))}; see --list"
            )
    if args.list:
        for case in cases:
            print(f"{case.name}{'  (quick)' if case.quick else ''}")
        return 0
    if args.budget <= 0:
        raise CommandError(f"--budget: expected a positive number of seconds, got {args.budget}")
    if args.output:
        try:
            open(args.output, "a").close()
        except OSError as error:
            raise CommandError(f"--output: cannot write {args.output}: {error.strerror}") from None

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    table = bench.run(
        quick=args.quick, repeats=args.repeats, budget=args.budget, cases=cases, log=log
    )
    print(table, end="" if table.endswith("\n") else "\n")
    if args.output:
        with open(args.output, "w") as f:
            f.write(table)
        log(f"wrote {args.output}")
    return 0
