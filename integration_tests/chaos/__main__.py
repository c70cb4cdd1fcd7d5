"""``python -m integration_tests.chaos [--runs 500] [--concurrency 24] [--seed 1] [--seeds …]``

Exits 1 on any violation, printing each with the seed that replays its run.
"""

from __future__ import annotations

import argparse
import sys

from integration_tests.chaos.campaign import run_campaign


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m integration_tests.chaos")
    parser.add_argument("--runs", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=24)
    parser.add_argument("--seed", type=int, default=1, help="the first run's seed")
    parser.add_argument("--seeds", help="comma-separated seeds to replay (overrides --runs)")
    args = parser.parse_args(argv)
    if args.seeds:
        seeds = [int(s) for s in args.seeds.split(",") if s]
    else:
        seeds = list(range(args.seed, args.seed + args.runs))
    report = run_campaign(seeds, args.concurrency)
    for line in report.lines():
        print(line, flush=True)
    return 1 if report.violations else 0


if __name__ == "__main__":
    sys.exit(main())
