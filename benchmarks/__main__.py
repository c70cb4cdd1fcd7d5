"""``python -m benchmarks [--scale 1/30] [--quick] [--only 1,2,3,4,5]``: run the figures of
issue 7, print each as a markdown table, and write them to benchmarks/RESULTS.md."""

from __future__ import annotations

import argparse
import sys
import time
from fractions import Fraction
from pathlib import Path

from benchmarks import figures
from benchmarks.report import machine

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument(
        "--scale",
        default="1/30",
        help="real seconds per AWS second (default 1/30: batchbridge's 30 s poll floor is 1 s)",
    )
    parser.add_argument("--runs", type=int, default=32, help="executions per design, figure 1")
    parser.add_argument("--quick", action="store_true", help="smaller figures 2 and 4")
    parser.add_argument("--only", default="1,2,3,4,5", help="which figures")
    parser.add_argument("--no-write", action="store_true", help="do not rewrite RESULTS.md")
    args = parser.parse_args(argv)
    scale = float(Fraction(args.scale))
    only = {int(x) for x in args.only.split(",") if x}
    started = time.time()
    sections: list[str] = []

    def emit(text: str) -> None:
        print(text + "\n", flush=True)
        sections.append(text)

    if 5 in only:  # first: it starts and stops environments of its own
        emit(figures.figure_startup())
    bench = figures.set_up(scale)
    try:
        if 1 in only:
            emit(figures.figure_latency(bench, args.runs))
        if 2 in only:
            sizes = (10, 100) if args.quick else (10, 100, 1000)
            emit(figures.figure_calls(bench, sizes, 1000 if args.quick else 10_000))
        if 3 in only:
            emit(figures.figure_submission(bench))
        if 4 in only:
            emit(figures.figure_scale(bench, *((20, 100) if args.quick else (100, 100))))
    finally:
        bench.env.stop()
    took = time.time() - started
    print(f"benchmarks: {took:.0f}s", flush=True)
    if not args.no_write:
        header = (
            "# Benchmark results: batchbridge vs the tutorial's design\n\n"
            "Written by `make bench` (`python -m benchmarks`); how to read them: "
            "docs/benchmarks.md.\n\n"
            f"Machine: {machine()}. Scale {args.scale} (real seconds per AWS second); "
            f"figures {','.join(map(str, sorted(only)))}"
            f"{' (--quick)' if args.quick else ''}; the run took {took:.0f} s.\n\n"
        )
        RESULTS.write_text(header + "\n\n".join(sections) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
