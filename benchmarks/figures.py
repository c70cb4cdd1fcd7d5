"""The five figures of issue 7, each measured on both designs in one embedded environment.

Times that depend on the loop's clock are measured on a scaled clock (visibility timeouts,
poll settings and job durations all multiplied by ``scale``) and reported in AWS seconds
(measured / scale). Submission and start-up times are API and process latencies: they are
not scaled, and are reported as measured.
"""

from __future__ import annotations

import contextlib
import json
import math
import random
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from benchmarks import costmatch, loop
from benchmarks.baseline import TUTORIAL_VISIBILITY_SECONDS, deploy_baseline
from benchmarks.report import PeakMemory, median, percentile, ratio, table
from benchmarks.tap import Tap, install
from services.environment import LocalEnvironment

DEFAULT_FLOOR_AWS, DEFAULT_CEILING_AWS = 30, 900  # batchbridge's shipped defaults
MONITOR_VISIBILITY_AWS = 360  # the template's queue visibility (6 x the monitor's 60 s)
MAX_WAIT_AWS = 6 * 3600


@dataclass
class Bench:
    env: LocalEnvironment
    scale: float
    tap: Tap
    control: loop.Control
    sm: Any
    batch: Any
    baseline: loop.Side
    ours: loop.Side  # batchbridge with its default poll settings
    matched: loop.Side | None = None  # batchbridge with cost-matched settings (figure 1)

    def real(self, aws_seconds: float) -> int:
        """A whole number of real seconds for a setting given in AWS seconds."""
        return max(1, round(aws_seconds * self.scale))


def set_up(scale: float) -> Bench:
    env = loop.start_environment("simulate")
    real = lambda aws: max(1, round(aws * scale))  # noqa: E731
    ours = loop.deploy_batchbridge(
        env,
        "bb",
        poll_floor=real(DEFAULT_FLOOR_AWS),
        poll_ceiling=real(DEFAULT_CEILING_AWS),
        max_wait=real(MAX_WAIT_AWS),
        queue_visibility=real(MONITOR_VISIBILITY_AWS),
    )
    baseline = deploy_baseline(
        env,
        "tutorial",
        visibility=real(TUTORIAL_VISIBILITY_SECONDS),
        like=ours,
        source_pipeline="bb",
    )
    tap = install(env)
    return Bench(
        env,
        scale,
        tap,
        loop.Control(env.endpoint),
        loop.client(env, "sagemaker"),
        loop.client(env, "batch"),
        baseline,
        ours,
    )


def _script(bench: Bench, prefix: str, durations_aws: list[float]) -> None:
    for index, seconds in enumerate(durations_aws, start=1):
        bench.control.script(
            {
                "jobNamePrefix": loop.job_name(prefix, index),
                "durationSeconds": seconds * bench.scale,
            }
        )


def _finish_times(bench: Bench, arn: str) -> tuple[float, float, list[str]]:
    """(last job's stop, WaitForJobs's end) in epoch seconds, and the job ids."""
    ids = loop.job_ids_of(bench.sm, arn)
    jobs = loop.describe_jobs(bench.batch, ids)
    last = max(job["stoppedAt"] for job in jobs) / 1000
    wait = loop.steps(bench.sm, arn)["WaitForJobs"]
    return last, wait["EndTime"].timestamp(), ids


# --- figure 1 ---------------------------------------------------------------------------------


def figure_latency(bench: Bench, runs: int, jobs_per_run: int = 3, seed: int = 1) -> str:
    """Callback latency (last job finished → step resolved), median and p95, with the
    DescribeJobs calls per job-hour each design spent."""
    rng = random.Random(seed)
    lo, hi = math.log(60), math.log(1800)
    plans = [[math.exp(rng.uniform(lo, hi)) for _ in range(jobs_per_run)] for _ in range(runs)]
    visibility = round(bench.real(TUTORIAL_VISIBILITY_SECONDS) / bench.scale)
    choice = costmatch.choose([max(p) for p in plans], visibility, bench.scale)
    if bench.matched is None:
        bench.matched = loop.deploy_batchbridge(
            bench.env,
            "bbm",
            poll_floor=bench.real(choice.floor_aws),
            poll_ceiling=bench.real(choice.ceiling_aws),
            max_wait=bench.real(MAX_WAIT_AWS),
            queue_visibility=bench.real(MONITOR_VISIBILITY_AWS),
        )
    sides = [bench.baseline, bench.matched, bench.ours]
    started: dict[str, list[str]] = {s.pipeline: [] for s in sides}
    for n, durations in enumerate(plans):
        for side in sides:
            prefix = f"f1{side.pipeline.replace('-', '')}r{n}"
            _script(bench, prefix, durations)
            started[side.pipeline].append(
                loop.start_run(bench.sm, side.pipeline, prefix, jobs=len(durations))
            )
    job_hours = sum(sum(p) for p in plans) / 3600
    limit = (max(max(p) for p in plans) + 3 * TUTORIAL_VISIBILITY_SECONDS) * bench.scale + 60
    results = {}
    for side in sides:
        arns = started[side.pipeline]
        statuses = loop.wait_terminal(bench.sm, arns, limit)
        latencies, ids = [], set()
        for arn in arns:
            if statuses[arn] != "Succeeded":
                continue
            last, resolved, job_ids = _finish_times(bench, arn)
            latencies.append((resolved - last) / bench.scale)
            ids.update(job_ids)
        calls = bench.tap.describe_calls(ids)
        results[side.pipeline] = (latencies, calls / job_hours, len(latencies))
    base = results[bench.baseline.pipeline]
    rows = []
    for side, label in (
        (
            bench.matched,
            f"batchbridge, cost-matched (floor {choice.floor_aws} s, "
            f"ceiling {choice.ceiling_aws} s)",
        ),
        (
            bench.ours,
            f"batchbridge, defaults (floor {DEFAULT_FLOOR_AWS} s, ceiling {DEFAULT_CEILING_AWS} s)",
        ),
    ):
        lat, cost, done = results[side.pipeline]
        rows.append(
            [
                label,
                f"{median(base[0]):.0f} / {percentile(base[0], 0.95):.0f}",
                f"{median(lat):.0f} / {percentile(lat, 0.95):.0f}",
                f"{ratio(median(base[0]), median(lat))} / "
                f"{ratio(percentile(base[0], 0.95), percentile(lat, 0.95))}",
                f"{base[1]:.1f}",
                f"{cost:.1f}",
                f"{base[2]}+{done} of {runs}+{runs}",
            ]
        )
    return (
        f"**1. Callback latency** (AWS seconds: last job finished → WaitForJobs resolved; "
        f"{runs} executions per design of {jobs_per_run} jobs, durations log-uniform in "
        f"1-30 min, the same for every design; scale {bench.scale:.4f})\n\n"
        + table(
            [
                "batchbridge setting",
                "baseline median / p95",
                "batchbridge median / p95",
                "ratio (baseline ÷ batchbridge)",
                "baseline DescribeJobs per job-hour",
                "batchbridge DescribeJobs per job-hour",
                "succeeded",
            ],
            rows,
        )
        + f"\n\nCost matching (simulated on these durations before the run, with the monitor's "
        f"own backoff): the baseline needs {choice.baseline_calls:.2f} DescribeJobs per "
        f"execution; the poll floor/ceiling with the lowest simulated median latency at no more "
        f"calls is {choice.floor_aws}/{choice.ceiling_aws} s ({choice.calls:.2f} calls)."
    )


# --- figure 2 ---------------------------------------------------------------------------------


def _monitor_records(bench: Bench, side: loop.Side, arn: str) -> int:
    """Callback records the side's monitor handled for ``arn``, from its CloudWatch logs."""
    logs = loop.client(bench.env, "logs")
    count, token = 0, None
    while True:
        kwargs: dict[str, Any] = {"logGroupName": f"/aws/lambda/{side.monitor}"}
        if token:
            kwargs["nextToken"] = token
        try:
            page = logs.filter_log_events(**kwargs)
        except logs.exceptions.ResourceNotFoundException:
            return 0
        count += sum(arn in e["message"] for e in page["events"])
        token = page.get("nextToken")
        if not token:
            return count


def figure_calls(
    bench: Bench, sizes: tuple[int, ...] = (10, 100, 1000), array: int = 10_000
) -> str:
    """DescribeJobs calls and monitor invocations per pipeline, by size."""
    duration_aws = 300.0
    rows = []
    notes = []
    cases: list[tuple[str, int, int]] = [(f"{n:,} jobs", n, 0) for n in sizes]
    cases.append((f"{array:,}-child array job", 0, array))
    for label, jobs, children in cases:
        tag = f"f2n{jobs}a{children}"
        runs: dict[str, tuple[loop.Side, str]] = {}
        for side in (bench.baseline, bench.ours):
            if children and side.array_pipeline is None:
                continue
            prefix = f"{tag}{side.label[:4]}"
            if children:
                bench.control.script(
                    {"jobNamePrefix": prefix, "durationSeconds": duration_aws * bench.scale}
                )
                arn = loop.start_run(
                    bench.sm, side.array_pipeline or "", prefix, array_size=children
                )
            else:
                _script(bench, prefix, [duration_aws] * jobs)
                arn = loop.start_run(bench.sm, side.pipeline, prefix, jobs=jobs)
            runs[side.label] = (side, arn)
        # The baseline resolves one visibility timeout after its first receive, or never.
        limit = (duration_aws + 1.2 * TUTORIAL_VISIBILITY_SECONDS) * bench.scale + 10 + jobs * 0.01
        statuses = loop.wait_terminal(bench.sm, [a for _, a in runs.values()], limit)
        cells: dict[str, tuple[str, str, str]] = {}
        for name, (side, arn) in runs.items():
            ids = set(loop.job_ids_of(bench.sm, arn))
            calls = bench.tap.describe_calls(ids)
            records = _monitor_records(bench, side, arn)
            state = statuses[arn]
            if state not in loop.TERMINAL:
                bench.sm.stop_pipeline_execution(PipelineExecutionArn=arn)
                state = f"never resolved ({state} after {limit / bench.scale:.0f} s)"
            cells[name] = (str(calls), str(records), state)
            if name == "baseline" and len(ids) > 100:
                try:
                    bench.batch.describe_jobs(jobs=sorted(ids))
                except bench.batch.exceptions.ClientError as exc:
                    notes.append(
                        f"baseline with {len(ids):,} ids: DescribeJobs answers `{exc}`; the "
                        "tutorial's monitor raises on every receive, so the message comes back "
                        "every 900 s and the step is never resolved (it had no DLQ)"
                    )
        if "baseline" in runs and statuses[runs["baseline"][1]] not in loop.TERMINAL:
            # The stuck message would come back forever: drop it (SQS allows a purge a minute).
            sqs = loop.client(bench.env, "sqs")
            with contextlib.suppress(sqs.exceptions.ClientError):
                sqs.purge_queue(QueueUrl=bench.baseline.queue_url)
        base = cells.get("baseline", ("n/a", "n/a", "the tutorial's submitter has no array jobs"))
        ours = cells["batchbridge"]
        resolved = base[2] == "Succeeded"
        rows.append(
            [
                label,
                base[0],
                ours[0],
                ratio(float(base[0]), float(ours[0])) if resolved else "n/a",
                base[1],
                ours[1],
                ratio(float(base[1]), float(ours[1])) if resolved else "n/a",
                base[2],
                ours[2],
            ]
        )
    return (
        "**2. DescribeJobs calls and monitor invocations per pipeline** (jobs of 5 min; "
        "invocations = callback records the monitor handled, from its logs)\n\n"
        + table(
            [
                "size",
                "baseline DescribeJobs",
                "batchbridge DescribeJobs",
                "ratio",
                "baseline monitor invocations",
                "batchbridge monitor invocations",
                "ratio",
                "baseline outcome",
                "batchbridge outcome",
            ],
            rows,
        )
        + "".join(f"\n\n{note}" for note in notes)
    )


# --- figure 3 ---------------------------------------------------------------------------------


def figure_submission(bench: Bench, jobs: int = 1000, api_latency: float = 0.05) -> str:
    """Wall time of the submit step for ``jobs`` jobs (Invoke, measured, not scaled): as the
    emulator answers (~1 ms a SubmitJob), and with ``api_latency`` added to every SubmitJob."""
    lam = loop.client(bench.env, "lambda")
    rows = []
    for latency in (0.0, api_latency):
        bench.tap.latency = {"/v1/submitjob": latency} if latency else {}
        times = {}
        for side in (bench.baseline, bench.ours):
            event = {
                "input_uri": "s3://bench-data/in",
                "output_uri": "s3://bench-data/out",
                "max_jobs": jobs,
                "job_name_prefix": f"f3{side.label[:4]}{int(latency * 1000)}",
            }
            lam.invoke(FunctionName=side.submitter, Payload=b'{"warm": 1}')  # warm a worker
            started = time.perf_counter()
            answer = lam.invoke(FunctionName=side.submitter, Payload=json.dumps(event))
            error = answer.get("FunctionError")
            times[side.label] = f"{time.perf_counter() - started:.2f}" + (
                f" ({error})" if error else ""
            )
        bench.tap.latency = {}
        base, ours = times["baseline"], times["batchbridge"]
        rows.append(
            [
                "as the emulator answers" if not latency else f"+{latency * 1000:.0f} ms a call",
                base,
                ours,
                ratio(float(base.split()[0]), float(ours.split()[0])),
            ]
        )
    return (
        f"**3. Submission wall time for {jobs:,} jobs** (seconds, measured: one Invoke of the "
        "submitter, warm worker; not scaled. The emulator answers a SubmitJob in about a "
        "millisecond; AWS takes tens, which the second row adds to every call)\n\n"
        + table(
            [
                "SubmitJob latency",
                "baseline (one SubmitJob at a time)",
                "batchbridge (16 at a time)",
                "ratio",
            ],
            rows,
        )
    )


# --- figure 4 ---------------------------------------------------------------------------------


def figure_scale(bench: Bench, executions: int = 100, jobs: int = 100) -> str:
    """``executions`` pipeline executions of ``jobs`` jobs at once, per design in turn."""
    duration_aws = 300.0
    rows = {}
    for side in (bench.baseline, bench.ours):
        tag = f"f4{side.label[:4]}"
        bench.control.script({"jobNamePrefix": tag, "durationSeconds": duration_aws * bench.scale})
        with PeakMemory() as memory:
            started = time.perf_counter()
            with ThreadPoolExecutor(max_workers=16) as pool:
                arns = list(
                    pool.map(
                        lambda n, side=side, tag=tag: loop.start_run(
                            bench.sm, side.pipeline, f"{tag}e{n}", jobs=jobs
                        ),
                        range(executions),
                    )
                )
            limit = (duration_aws + 3 * TUTORIAL_VISIBILITY_SECONDS) * bench.scale + 240
            statuses = loop.wait_terminal(bench.sm, arns, limit, poll=1.0)
            wall = time.perf_counter() - started
        done = sum(s == "Succeeded" for s in statuses.values())
        rows[side.label] = (done, wall, memory.peak_mib, memory.growth_mib)
    base, ours = rows["baseline"], rows["batchbridge"]
    return (
        f"**4. Scale: {executions} executions of {jobs} jobs each, started at once** (jobs of "
        "5 min; the baseline first, then batchbridge; wall time from the first start to the "
        "last end, in AWS seconds; memory: resident set of the whole process tree, the "
        "environment and its Lambda workers included, so batchbridge's peak also holds the "
        "baseline's idle warm workers — compare the growth)\n\n"
        + table(
            ["measure", "baseline", "batchbridge", "ratio (baseline ÷ batchbridge)"],
            [
                ["executions succeeded", f"{base[0]}/{executions}", f"{ours[0]}/{executions}", ""],
                [
                    "wall time (AWS s)",
                    f"{base[1] / bench.scale:.0f}",
                    f"{ours[1] / bench.scale:.0f}",
                    ratio(base[1], ours[1]),
                ],
                ["wall time (real s)", f"{base[1]:.1f}", f"{ours[1]:.1f}", ""],
                ["peak memory (MiB)", f"{base[2]:.0f}", f"{ours[2]:.0f}", ""],
                [
                    "memory growth during the run (MiB)",
                    f"{base[3]:.0f}",
                    f"{ours[3]:.0f}",
                    ratio(base[3], ours[3]),
                ],
            ],
        )
    )


# --- figure 5 ---------------------------------------------------------------------------------


def figure_startup(starts: int = 3) -> str:
    from benchmarks.bench_local_env import measure_start

    seconds = measure_start(starts)
    return (
        "**5. The embedded environment's start-to-ready time** (seconds; the first start in a "
        "process pays for importing moto)\n\n"
        + table(
            ["baseline", "batchbridge first", "median", "p95", "n"],
            [
                [
                    "none: the tutorial has no local environment (deploy to AWS to try it)",
                    f"{seconds[0]:.2f}",
                    f"{median(seconds):.2f}",
                    f"{percentile(seconds, 0.95):.2f}",
                    len(seconds),
                ]
            ],
        )
    )
