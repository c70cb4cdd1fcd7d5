"""``batchbridge deploy`` settings: parsed, checked before anything is touched, turned into
the template's parameters.
"""

from __future__ import annotations

import argparse
import os
import re
from dataclasses import dataclass, field

from lambdas.settings import Settings, SettingsError, receives_needed

DEFAULT_LOCAL_ENDPOINT = "http://127.0.0.1:4566"
DEFAULT_STACK_NAME = "batchbridge"
MONITOR_TIMEOUTS = ("30", "60", "120", "300")  # the template's QueueVisibility rows
SQS_MAX_RECEIVE_COUNT = 1000
_STACK_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,39}$")  # 40: room for "-callbacks-dlq" etc.
_PIPELINE_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,255}$")
_ENDPOINT_VARIABLES = ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_CLOUDFORMATION")


class ConfigError(ValueError):
    """Settings that cannot work; the message lists each problem with what to do."""


@dataclass
class DeployConfig:
    command: str  # deploy | destroy
    target: str  # local | aws
    region: str | None = None
    profile: str | None = None
    stack_name: str = DEFAULT_STACK_NAME
    endpoint_url: str | None = None
    output: str = "text"
    pipeline_name: str | None = None
    batch_resources: str = "cfn"  # cfn | existing | api
    job_queue: str | None = None
    job_definition: str | None = None
    subnets: list[str] = field(default_factory=list)
    security_groups: list[str] = field(default_factory=list)
    data_bucket: str | None = None
    max_vcpus: int = 16
    poll_floor: int = 30
    poll_ceiling: int = 900
    max_wait: int = 3 * 24 * 3600
    terminate_on_failure: bool = True
    max_jobs: int = 10_000
    monitor_timeout: str = "60"
    lambda_endpoint_url: str | None = None
    timeout: float = 1800

    @property
    def local(self) -> bool:
        return self.target == "local"

    @property
    def pipeline(self) -> str:
        return self.pipeline_name or self.stack_name

    def max_receive_count(self) -> int:
        """The DLQ's maxReceiveCount: the receives a message may need before its deadline,
        plus a margin (10%, at least 5) so that only a broken monitor sends it to the DLQ."""
        needed = receives_needed(self.max_wait, self.poll_floor, self.poll_ceiling)
        return needed + max(5, needed // 10)

    def validate(self) -> None:
        problems: list[str] = []
        if not _STACK_NAME.match(self.stack_name):
            problems.append(
                f"--stack-name {self.stack_name!r}: use 1-40 letters, digits and hyphens, "
                "starting with a letter (the stack's resources are named after it)"
            )
        if not _PIPELINE_NAME.match(self.pipeline):
            problems.append(
                f"--pipeline-name {self.pipeline!r}: use letters, digits and single hyphens"
            )
        if self.target == "aws":
            if self.endpoint_url:
                problems.append(
                    "--endpoint-url is for --target local; --target aws always talks to AWS"
                )
            for name in _ENDPOINT_VARIABLES:
                if os.environ.get(name):
                    problems.append(
                        f"{name}={os.environ[name]} is set, so boto3 would send this deploy "
                        f"there instead of to AWS: unset it, or use --target local"
                    )
        if self.command == "deploy":
            problems += self._deploy_problems()
        if problems:
            raise ConfigError("cannot deploy with these settings:\n  - " + "\n  - ".join(problems))

    def _deploy_problems(self) -> list[str]:
        problems: list[str] = []
        try:
            Settings(
                poll_floor_seconds=self.poll_floor,
                poll_ceiling_seconds=self.poll_ceiling,
                max_wait_seconds=self.max_wait,
                max_jobs=self.max_jobs,
            )
        except SettingsError as exc:
            problems.append(str(exc))
        else:
            count = self.max_receive_count()
            if count > SQS_MAX_RECEIVE_COUNT:
                problems.append(
                    f"waiting up to {self.max_wait}s with polls every {self.poll_floor}-"
                    f"{self.poll_ceiling}s needs a DLQ maxReceiveCount of {count}, but SQS "
                    f"allows at most {SQS_MAX_RECEIVE_COUNT}: raise --poll-floor or "
                    "--poll-ceiling, or lower --max-wait"
                )
        if self.monitor_timeout not in MONITOR_TIMEOUTS:
            problems.append(f"--monitor-timeout must be one of {', '.join(MONITOR_TIMEOUTS)}")
        if self.batch_resources == "existing":
            if not self.job_queue or not self.job_definition:
                problems.append(
                    "--batch-resources existing needs --job-queue and --job-definition "
                    "(names of your existing Batch job queue and job definition)"
                )
        elif self.job_queue or self.job_definition:
            problems.append(
                "--job-queue/--job-definition name existing Batch resources: add "
                "--batch-resources existing, or drop them to let the stack create its own"
            )
        if self.batch_resources == "api" and not self.local:
            problems.append(
                "--batch-resources api is for local endpoints whose CloudFormation ignores "
                "AWS::Batch::* (docker compose); on AWS use cfn or existing"
            )
        if self.lambda_endpoint_url and not self.local:
            problems.append("--lambda-endpoint-url only makes sense with --target local")
        return problems

    def template_parameters(
        self,
        code_bucket: str,
        code_key: str,
        subnets: list[str],
        security_groups: list[str],
        batch_names: tuple[str, str] | None = None,
    ) -> dict[str, str]:
        """``batch_names`` (job queue, job definition) made outside the stack (api mode)."""
        create = self.batch_resources == "cfn"
        queue, definition = batch_names or (self.job_queue, self.job_definition)
        params = {
            "PipelineName": self.pipeline,
            "CodeBucket": code_bucket,
            "CodeKey": code_key,
            "MonitorTimeoutSeconds": self.monitor_timeout,
            "PollFloorSeconds": str(self.poll_floor),
            "PollCeilingSeconds": str(self.poll_ceiling),
            "MaxWaitSeconds": str(self.max_wait),
            "MaxReceiveCount": str(self.max_receive_count()),
            "TerminateOnFailure": "true" if self.terminate_on_failure else "false",
            "MaxJobs": str(self.max_jobs),
            "CreateBatchResources": "true" if create else "false",
            "SubnetIds": ",".join(subnets),
            "SecurityGroupIds": ",".join(security_groups),
            "MaxvCpus": str(self.max_vcpus),
            # moto's Batch insists on a ServiceRole; AWS prefers its service-linked role.
            "UseServiceLinkedBatchRole": "false" if self.local else "true",
            "JobQueueName": "" if create else str(queue),
            "JobDefinitionName": "" if create else str(definition),
            "DataBucketName": self.data_bucket or "",
            "BatchEndpointUrl": self.lambda_endpoint_url or "",
            "SageMakerEndpointUrl": self.lambda_endpoint_url or "",
        }
        return params


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("command", choices=("deploy", "destroy"))
    parser.add_argument("--target", choices=("local", "aws"), required=True)
    parser.add_argument(
        "--region", help="AWS region (default: the profile's, or us-east-1 locally)"
    )
    parser.add_argument("--profile", help="AWS named profile")
    parser.add_argument("--stack-name", default=DEFAULT_STACK_NAME)
    parser.add_argument(
        "--endpoint-url",
        help=f"--target local only: the environment (default $AWS_ENDPOINT_URL or "
        f"{DEFAULT_LOCAL_ENDPOINT})",
    )
    parser.add_argument("--output", choices=("text", "json"), default="text")
    parser.add_argument("--pipeline-name", help="SageMaker pipeline name (default: stack name)")
    parser.add_argument(
        "--batch-resources",
        choices=("cfn", "existing", "api"),
        default="cfn",
        help="cfn: the stack creates a Fargate compute environment, job queue and the copy job "
        "definition; existing: use --job-queue and --job-definition; api (local only): create "
        "them through the Batch API, for endpoints whose CloudFormation ignores AWS::Batch::*",
    )
    parser.add_argument("--job-queue", help="existing job queue name")
    parser.add_argument("--job-definition", help="existing job definition name")
    parser.add_argument(
        "--subnets", default="", help="comma-separated subnet ids (default: the default VPC's)"
    )
    parser.add_argument(
        "--security-groups",
        default="",
        help="comma-separated security group ids (default: the default VPC's default group)",
    )
    parser.add_argument("--data-bucket", help="bucket the copy job may read and write")
    parser.add_argument("--max-vcpus", type=int, default=16)
    parser.add_argument("--poll-floor", type=int, default=30, help="seconds (default 30)")
    parser.add_argument("--poll-ceiling", type=int, default=900, help="seconds (default 900)")
    parser.add_argument(
        "--max-wait", type=int, default=3 * 24 * 3600, help="seconds a step may wait (3 days)"
    )
    parser.add_argument(
        "--no-terminate-on-failure",
        dest="terminate_on_failure",
        action="store_false",
        help="leave the other jobs running when one fails",
    )
    parser.add_argument("--max-jobs", type=int, default=10_000)
    parser.add_argument("--monitor-timeout", default="60", choices=MONITOR_TIMEOUTS)
    parser.add_argument(
        "--lambda-endpoint-url",
        help="--target local: AWS_ENDPOINT_URL_BATCH/_SAGEMAKER for the Lambdas, when they run "
        "where the deploy endpoint is not reachable as is (docker compose)",
    )
    parser.add_argument("--timeout", type=float, default=1800, help="seconds to wait for the stack")


def from_args(args: argparse.Namespace) -> DeployConfig:
    endpoint = args.endpoint_url
    if args.target == "local" and not endpoint:
        endpoint = os.environ.get("AWS_ENDPOINT_URL") or DEFAULT_LOCAL_ENDPOINT
    return DeployConfig(
        command=args.command,
        target=args.target,
        region=args.region,
        profile=args.profile,
        stack_name=args.stack_name,
        endpoint_url=endpoint,
        output=args.output,
        pipeline_name=args.pipeline_name,
        batch_resources=args.batch_resources,
        job_queue=args.job_queue,
        job_definition=args.job_definition,
        subnets=[s for s in args.subnets.split(",") if s],
        security_groups=[s for s in args.security_groups.split(",") if s],
        data_bucket=args.data_bucket,
        max_vcpus=args.max_vcpus,
        poll_floor=args.poll_floor,
        poll_ceiling=args.poll_ceiling,
        max_wait=args.max_wait,
        terminate_on_failure=args.terminate_on_failure,
        max_jobs=args.max_jobs,
        monitor_timeout=args.monitor_timeout,
        lambda_endpoint_url=args.lambda_endpoint_url,
        timeout=args.timeout,
    )
