"""``batchbridge deploy|destroy``: the same template to the local environment or to AWS.

deploy: check the settings and the account (read-only) → build and upload the Lambda zip →
create a change set and show it → execute it, following the stack's events → upsert the
SageMaker pipeline with the SDK → print the outputs. A second deploy with nothing changed
reports "no changes" and changes nothing. destroy: delete the pipeline, the stack and the
uploaded zip.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    ProfileNotFound,
)

from scripts import batch_api, package, stack
from scripts.deploy_config import ConfigError, DeployConfig, add_arguments, from_args
from scripts.pipeline_sync import delete_pipeline, upsert_pipeline

TEMPLATE = Path(__file__).resolve().parent.parent / "infra" / "batchbridge.yaml"


class DeployError(RuntimeError):
    """Something about the account or environment stops the deploy; says what to fix."""


def say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


class Aws:
    """Clients for the target: the local endpoint, or AWS itself (never an endpoint)."""

    def __init__(self, config: DeployConfig) -> None:
        self.config = config
        if config.local and not config.profile:
            # Local endpoints take any key. "test" is the convention (LocalStack reads a
            # 12-digit key as an account id), and real keys never leave for a local endpoint.
            session = boto3.Session(aws_access_key_id="test", aws_secret_access_key="test")
        else:
            try:
                session = boto3.Session(profile_name=config.profile)
            except ProfileNotFound as exc:
                raise DeployError(
                    f"{exc}: check --profile against `aws configure list-profiles`"
                ) from None
        region = config.region or session.region_name or ("us-east-1" if config.local else None)
        if region is None:
            raise DeployError(
                "no AWS region: pass --region, or set AWS_DEFAULT_REGION or the profile's region"
            )
        if session.region_name != region:
            # The sagemaker SDK reads the region from the session, not from its clients.
            if config.local and not config.profile:
                session = boto3.Session(
                    aws_access_key_id="test", aws_secret_access_key="test", region_name=region
                )
            else:
                session = boto3.Session(profile_name=config.profile, region_name=region)
        self.session = session
        self.region = region
        self.endpoint = config.endpoint_url if config.local else None
        self._config = Config(retries={"max_attempts": 5, "mode": "standard"})
        self.identity_arn = ""

    def client(self, name: str) -> Any:
        return self.session.client(
            name, region_name=self.region, endpoint_url=self.endpoint, config=self._config
        )

    def account_id(self) -> str:
        where = f"the local environment at {self.endpoint}" if self.endpoint else "AWS"
        try:
            identity = self.client("sts").get_caller_identity()
            self.identity_arn = str(identity.get("Arn", ""))
            return str(identity["Account"])
        except NoCredentialsError:
            raise DeployError(
                "no AWS credentials found: run `aws configure` (or `aws sso login`), pass "
                "--profile, or set AWS_PROFILE / AWS_ACCESS_KEY_ID"
            ) from None
        except EndpointConnectionError:
            raise DeployError(
                f"nothing answers at {self.endpoint}: start the local environment "
                f"(`batchbridge local up`, or `docker compose up`) or pass --endpoint-url"
            ) from None
        except ClientError as exc:
            raise DeployError(f"{where} rejected the credentials: {exc}") from None


# --- deploy -----------------------------------------------------------------------------------


#: What the Lambdas (in LocalStack's containers) call for Batch and SageMaker under compose.
COMPOSE_GATEWAY_URL = os.environ.get("BATCHBRIDGE_COMPOSE_GATEWAY_URL", "http://batchbridge:4566")


def local_mode(endpoint: str) -> dict[str, Any]:
    """The local environment's health report ({} when it has none: not batchbridge's)."""
    try:
        with urllib.request.urlopen(f"{endpoint}/_batchbridge/health", timeout=5) as answer:
            report: dict[str, Any] = json.loads(answer.read())
    except urllib.error.HTTPError as exc:  # 503 while a part is not ready still says which
        report = json.loads(exc.read() or b"{}")
    except (OSError, ValueError):
        return {}
    return report


def adapt_to_compose(config: DeployConfig, health: dict[str, Any]) -> None:
    """Under docker compose (the gateway proxies to LocalStack) two things differ: LocalStack's
    CloudFormation silently ignores AWS::Batch::*, and the Lambdas run in LocalStack's
    containers, where AWS_ENDPOINT_URL is LocalStack itself, which has no Batch or SageMaker.
    So Batch resources are made through the Batch API, and the Lambdas are pointed at the
    batchbridge gateway for those two services."""
    if "upstream" not in health:
        return
    if config.batch_resources == "cfn":
        config.batch_resources = "api"
        say(
            "compose: LocalStack's CloudFormation ignores AWS::Batch::*, so the Batch "
            "resources are made through the Batch API (--batch-resources api)"
        )
    if not config.lambda_endpoint_url:
        config.lambda_endpoint_url = COMPOSE_GATEWAY_URL
        say(
            f"compose: the Lambdas reach Batch and SageMaker at {COMPOSE_GATEWAY_URL} "
            "(--lambda-endpoint-url)"
        )


def deploy(config: DeployConfig, aws: Aws) -> dict[str, Any]:
    account = aws.account_id()
    if config.local and aws.endpoint:
        adapt_to_compose(config, local_mode(aws.endpoint))
    where = f"{aws.endpoint}" if aws.endpoint else f"account {account}"
    say(f"batchbridge: deploying stack {config.stack_name!r} to {where} ({aws.region})")
    subnets, groups = _batch_network(config, aws)
    code = package.build()
    bucket = _artifact_bucket(account, aws.region)
    key = f"batchbridge/{config.stack_name}/{Path(code.s3_key).name}"
    _upload(aws, bucket, key, code.data)

    cfn = aws.client("cloudformation")
    template = TEMPLATE.read_text()
    batch_names = None
    if config.batch_resources == "api":
        made = batch_api.ensure(
            aws.client("batch"),
            aws.client("iam"),
            config.stack_name,
            subnets=subnets,
            security_groups=groups,
            max_vcpus=config.max_vcpus,
            say=say,
        )
        batch_names = (made.job_queue, made.job_definition)
    parameters = config.template_parameters(bucket, key, subnets, groups, batch_names)
    change_set = stack.create_change_set(
        cfn, config.stack_name, template, parameters, say=say, timeout=config.timeout
    )
    if change_set.empty:
        say("stack: no changes")
        current = stack.describe(cfn, config.stack_name)
        assert current is not None
        stack_status = "unchanged"
    else:
        say(f"stack: change set ({change_set.kind.lower()}):")
        for line in stack.format_changes(change_set):
            say(line)
        current = stack.execute(cfn, config.stack_name, change_set, say=say, timeout=config.timeout)
        if config.local or not current.get("Outputs"):
            current = _resync_moto_stack(cfn, config.stack_name, template, parameters) or current
        stack_status = "created" if change_set.kind == "CREATE" else "updated"
    outputs = stack.outputs_of(current)
    missing = {"SubmitterFunctionArn", "CallbackQueueUrl", "PipelineRoleArn"} - set(outputs)
    if missing:
        raise DeployError(
            f"stack {config.stack_name!r} has no outputs {sorted(missing)}; is it batchbridge's? "
            f"Pick another --stack-name or destroy that stack"
        )
    pipeline = upsert_pipeline(
        aws.session,
        aws.client("sagemaker"),
        name=config.pipeline,
        outputs=outputs,
        # No SDK telemetry: a deploy makes no calls beyond the ones it prints.
        telemetry=False,
    )
    say(f"pipeline {config.pipeline!r}: {pipeline['status']}")
    return {
        "target": config.target,
        "region": aws.region,
        "endpoint": aws.endpoint,
        "stack": {"name": config.stack_name, "status": stack_status, "outputs": outputs},
        "pipeline": pipeline,
    }


def deploy_local(
    endpoint: str,
    region: str,
    stack_name: str,
    *,
    poll_floor: int = 1,
    poll_ceiling: int = 2,
    max_wait: int = 120,
    monitor_timeout: str = "30",
) -> dict[str, str]:
    """Deploy to a local endpoint with a clock sized for demos, tests and benchmarks (look at
    running jobs every 1-2 s, give up after 2 minutes), and return the stack's outputs."""
    config = DeployConfig(
        command="deploy",
        target="local",
        region=region,
        endpoint_url=endpoint,
        stack_name=stack_name,
        poll_floor=poll_floor,
        poll_ceiling=poll_ceiling,
        max_wait=max_wait,
        monitor_timeout=monitor_timeout,
    )
    config.validate()
    outputs: dict[str, str] = deploy(config, Aws(config))["stack"]["outputs"]
    return outputs


def _batch_network(config: DeployConfig, aws: Aws) -> tuple[list[str], list[str]]:
    """Subnets and security groups for the Fargate compute environment (cfn), or a check
    that the existing job queue and job definition are there (existing)."""
    if config.batch_resources == "existing":
        _check_existing_batch(config, aws)
        return [], []
    subnets, groups = list(config.subnets), list(config.security_groups)
    ec2 = aws.client("ec2")
    _check_network_ids(ec2, subnets, groups, aws.region)
    if subnets and groups:
        return subnets, groups
    vpcs = ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"]
    if not vpcs:
        raise DeployError(
            f"region {aws.region} has no default VPC to put the Fargate compute environment "
            "in: pass --subnets and --security-groups"
        )
    vpc = vpcs[0]["VpcId"]
    if not subnets:
        found = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"]
        subnets = sorted(s["SubnetId"] for s in found if s.get("DefaultForAz", True))
    if not groups:
        found = ec2.describe_security_groups(
            Filters=[
                {"Name": "vpc-id", "Values": [vpc]},
                {"Name": "group-name", "Values": ["default"]},
            ]
        )["SecurityGroups"]
        groups = [g["GroupId"] for g in found]
    if not subnets or not groups:
        raise DeployError(
            f"the default VPC {vpc} has no subnets or no default security group: pass "
            "--subnets and --security-groups"
        )
    return subnets, groups


def _check_network_ids(ec2: Any, subnets: list[str], groups: list[str], region: str) -> None:
    """Given subnets and security groups must exist: a typo found now costs nothing, found
    by CloudFormation it costs a failed stack."""
    for ids, describe, key, flag in (
        (subnets, ec2.describe_subnets, "SubnetIds", "--subnets"),
        (groups, ec2.describe_security_groups, "GroupIds", "--security-groups"),
    ):
        if not ids:
            continue
        try:
            describe(**{key: ids})
        except ClientError as exc:
            raise DeployError(
                f"{flag} {','.join(ids)}: {exc.response['Error'].get('Message', exc)} "
                f"(region {region}); list yours with `aws ec2 describe-subnets` / "
                "`aws ec2 describe-security-groups`"
            ) from None


def _check_existing_batch(config: DeployConfig, aws: Aws) -> None:
    batch = aws.client("batch")
    queues = batch.describe_job_queues(jobQueues=[str(config.job_queue)])["jobQueues"]
    if not queues:
        raise DeployError(
            f"job queue {config.job_queue!r} does not exist in {aws.region}: create it, fix "
            "--job-queue, or use --batch-resources cfn"
        )
    definitions = batch.describe_job_definitions(
        jobDefinitionName=str(config.job_definition), status="ACTIVE"
    )["jobDefinitions"]
    if not definitions:
        raise DeployError(
            f"job definition {config.job_definition!r} has no ACTIVE revision in {aws.region}: "
            "register it, fix --job-definition, or use --batch-resources cfn"
        )


def _artifact_bucket(account: str, region: str) -> str:
    # One per account and region, like SAM's: Lambda reads code from a bucket in its region.
    return f"batchbridge-artifacts-{account}-{region}"


def _upload(aws: Aws, bucket: str, key: str, data: bytes) -> None:
    s3 = aws.client("s3")
    try:
        s3.head_bucket(Bucket=bucket)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code")
        if code not in ("404", "NoSuchBucket", "NotFound"):
            raise DeployError(
                f"cannot use the artifact bucket {bucket}: {exc} (it may belong to another "
                "account, or the credentials lack s3:ListBucket on it)"
            ) from None
        kwargs: dict[str, Any] = {"Bucket": bucket}
        if aws.region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": aws.region}
        s3.create_bucket(**kwargs)
        say(f"artifacts: created bucket {bucket}")
    try:
        s3.head_object(Bucket=bucket, Key=key)
        say(f"artifacts: s3://{bucket}/{key} is up to date")
    except ClientError:
        s3.put_object(Bucket=bucket, Key=key, Body=data)
        say(f"artifacts: uploaded s3://{bucket}/{key} ({len(data)} bytes)")


def _resync_moto_stack(
    cfn: Any, stack_name: str, template: str, parameters: dict[str, str]
) -> dict[str, Any] | None:
    """moto (5.x) executes a change set without refreshing the stack's outputs or stored
    parameters, so the stack shows no outputs and the next deploy sees changes that are not
    there. An UpdateStack with the same template re-syncs both without touching resources.
    Endpoints that do it right (LocalStack) answer "No updates are to be performed"; AWS
    always has the outputs, so it never gets here."""
    try:
        cfn.update_stack(
            StackName=stack_name,
            TemplateBody=template,
            Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
            Capabilities=["CAPABILITY_IAM"],
        )
    except ClientError as exc:
        if any(phrase in str(exc) for phrase in stack.NO_CHANGES):
            return None
        raise
    return stack.describe(cfn, stack_name)


# --- destroy ----------------------------------------------------------------------------------


def destroy(config: DeployConfig, aws: Aws) -> dict[str, Any]:
    account = aws.account_id()
    cfn = aws.client("cloudformation")
    current = stack.describe(cfn, config.stack_name)
    outputs = stack.outputs_of(current) if current else {}
    pipeline_name = outputs.get("PipelineName") or config.pipeline
    pipeline_deleted = delete_pipeline(aws.client("sagemaker"), pipeline_name)
    say(f"pipeline {pipeline_name!r}: {'deleted' if pipeline_deleted else 'not found'}")
    stack_deleted = stack.delete(cfn, config.stack_name, say=say, timeout=config.timeout)
    say(f"stack {config.stack_name!r}: {'deleted' if stack_deleted else 'not found'}")
    if config.local:
        # What --batch-resources api made (tagged with the stack's name), if anything.
        batch_api.remove(aws.client("batch"), aws.client("iam"), config.stack_name, say=say)
    removed = _remove_artifacts(aws, _artifact_bucket(account, aws.region), config.stack_name)
    return {
        "target": config.target,
        "region": aws.region,
        "endpoint": aws.endpoint,
        "stack": {"name": config.stack_name, "deleted": stack_deleted},
        "pipeline": {"name": pipeline_name, "deleted": pipeline_deleted},
        "artifacts_deleted": removed,
    }


def _remove_artifacts(aws: Aws, bucket: str, stack_name: str) -> int:
    """Delete this stack's zips, and the bucket once no stack uses it."""
    s3 = aws.client("s3")
    try:
        listing = s3.list_objects_v2(Bucket=bucket, Prefix=f"batchbridge/{stack_name}/")
    except ClientError:
        return 0  # no bucket: nothing was uploaded
    keys = [{"Key": o["Key"]} for o in listing.get("Contents", [])]
    if keys:
        s3.delete_objects(Bucket=bucket, Delete={"Objects": keys})
    if not s3.list_objects_v2(Bucket=bucket, MaxKeys=1).get("Contents"):
        s3.delete_bucket(Bucket=bucket)
    return len(keys)


# --- the command ------------------------------------------------------------------------------


def render_text(result: dict[str, Any]) -> str:
    lines = []
    st = result["stack"]
    if "outputs" in st:
        lines.append(f"stack {st['name']}: {st['status']}")
        width = max((len(k) for k in st["outputs"]), default=0)
        lines += [f"  {k:<{width}}  {v}" for k, v in sorted(st["outputs"].items())]
        p = result["pipeline"]
        lines.append(f"pipeline {p['name']}: {p['status']}  {p.get('arn', '')}".rstrip())
    else:
        lines.append(f"stack {st['name']}: {'deleted' if st['deleted'] else 'not found'}")
        p = result["pipeline"]
        lines.append(f"pipeline {p['name']}: {'deleted' if p['deleted'] else 'not found'}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    # Before the sagemaker SDK is imported: some of its modules call logging.basicConfig(INFO)
    # at import, which would print botocore's endpoint chatter; a root handler set first wins.
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    parser = argparse.ArgumentParser(prog="batchbridge", description=__doc__)
    add_arguments(parser)
    args = parser.parse_args(argv)
    config = from_args(args)
    aws: Aws | None = None
    try:
        config.validate()
        aws = Aws(config)
        result = deploy(config, aws) if config.command == "deploy" else destroy(config, aws)
    except (ConfigError, DeployError, stack.StackError, batch_api.BatchSetupError) as exc:
        print(f"batchbridge {config.command}: {exc}", file=sys.stderr)
        return 1
    except NoRegionError:
        print(f"batchbridge {config.command}: no region: pass --region", file=sys.stderr)
        return 1
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        who = (aws.identity_arn if aws else "") or "these credentials"
        if code.startswith(("AccessDenied", "UnauthorizedOperation", "AuthorizationError")):
            advice = (
                f"{who} may not call {exc.operation_name}: grant it (see docs/deploy.md for "
                "what deploy calls), or deploy with a profile that may"
            )
        else:
            advice = "fix what the message names, then run the command again"
        print(f"batchbridge {config.command}: {exc}\n{advice}.", file=sys.stderr)
        return 1
    except BotoCoreError as exc:
        print(f"batchbridge {config.command}: {exc}", file=sys.stderr)
        return 1
    if config.output == "json":
        print(json.dumps(result, indent=2, sort_keys=True))
    else:
        print(render_text(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
