"""The chaos suite, short: 30 randomised runs of the whole loop with faults injected.

Each run checks the invariants of ``integration_tests/chaos/invariants.py``; ``make chaos``
runs at least 500. Starts its own embedded environment (the runs need the control path and
a simulated Batch), so it ignores BATCHBRIDGE_TEST_TARGET.
"""

from __future__ import annotations

import pytest

from integration_tests.chaos.campaign import run_campaign

pytestmark = pytest.mark.timeout(150)


def test_thirty_runs_with_faults_keep_every_invariant() -> None:
    report = run_campaign(list(range(1, 31)), concurrency=15, stack="chaosci")
    summary = "\n".join(report.lines())
    print(summary)
    assert len(report.records) == 30
    # The faults really happened: API errors reached the Lambdas, and some runs were stopped.
    assert sum(report.injected.values()) > 0, summary
    assert report.outcomes["Stopped"] > 0 and report.outcomes["Failed"] > 0, summary
    assert report.outcomes["Succeeded"] > 0, summary
    assert not report.violations, summary
