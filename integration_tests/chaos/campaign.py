"""One chaos campaign: start the environment, deploy, run the plans, settle, check, report."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

from benchmarks import loop, tap
from integration_tests.chaos.invariants import Violation, check_campaign
from integration_tests.chaos.plan import Timing, make_plan
from integration_tests.chaos.runner import Campaign, RunRecord
from services.environment import LocalEnvironment


@dataclass
class Report:
    records: list[RunRecord]
    violations: list[Violation]
    notes: list[str]
    injected: dict[str, int]
    seconds: float
    outcomes: Counter[str] = field(default_factory=Counter)
    planned: Counter[str] = field(default_factory=Counter)

    def lines(self) -> list[str]:
        applied = Counter(
            fault.split("@")[0].rsplit("x", 1)[0] if ":" in fault else fault.split("@")[0]
            for record in self.records
            for fault in record.applied
        )
        skipped = sum(len(r.skipped) for r in self.records)
        out = [
            f"chaos: {len(self.records)} runs in {self.seconds:.0f}s; outcomes "
            + ", ".join(f"{k} {v}" for k, v in sorted(self.outcomes.items())),
            "faults applied: "
            + ", ".join(f"{k} {v}" for k, v in sorted(applied.items()))
            + f" ({skipped} planned faults skipped: the run had ended or too many were pending)",
            "faults that hit an API call: "
            + (", ".join(f"{k} {v}" for k, v in sorted(self.injected.items())) or "none"),
        ]
        out += [f"note: {n}" for n in self.notes[:20]]
        if len(self.notes) > 20:
            out.append(f"note: … and {len(self.notes) - 20} more")
        out.append(f"violations: {len(self.violations)}")
        out += [f"  VIOLATION {v}" for v in self.violations]
        if self.violations:
            seeds = sorted({v.seed for v in self.violations if v.seed is not None})
            if seeds:
                out.append(
                    "replay: .venv/bin/python -m integration_tests.chaos --seeds "
                    + ",".join(map(str, seeds))
                )
        return out


def run_campaign(
    seeds: list[int],
    concurrency: int,
    timing: Timing | None = None,
    stack: str = "chaos",
    env: LocalEnvironment | None = None,
) -> Report:
    """Run one plan per seed. Without ``env`` an embedded environment (simulated Batch) is
    started and stopped here; with one, it is used as it is and left running. Every job is
    scripted, so the environment's executor does not matter."""
    timing = timing or Timing()
    started = time.time()
    own = env is None
    environment = loop.start_environment("simulate") if env is None else env
    the_tap = tap.install(environment)
    try:
        side = loop.deploy_batchbridge(
            environment,
            stack,
            poll_floor=timing.poll_floor,
            poll_ceiling=timing.poll_ceiling,
            max_wait=timing.max_wait,
            queue_visibility=timing.visibility,
        )
        campaign = Campaign(environment, side, timing, the_tap)
        plans = [make_plan(seed, timing) for seed in seeds]
        records = campaign.run_all(plans, concurrency)
        injected = campaign.control.injected()
        settled = campaign.settle(records)
        violations, notes = check_campaign(records, settled, timing, the_tap.accepted())
    finally:
        if own:
            environment.stop()
        else:
            tap.uninstall(environment)
    report = Report(records, violations, notes, injected, time.time() - started)
    report.outcomes = Counter(r.final for r in records)
    return report
