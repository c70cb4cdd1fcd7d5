"""The tutorial's submitter, written anew: one SubmitJob call per job, one after the other.

Inputs as the tutorial's (``input_uri``, ``output_uri``, ``max_jobs``), plus
``job_name_prefix`` so that the benchmarks can script each job's duration beforehand. No
validation, no retries, no bound on ``max_jobs``: the tutorial has none.
"""

import os
from typing import Any

import boto3

batch = boto3.client("batch")


def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    prefix = event.get("job_name_prefix") or "sample-aws-batch"
    ids = []
    for index in range(1, int(event["max_jobs"]) + 1):
        response = batch.submit_job(
            jobName=f"{prefix}-{index:04d}",
            jobQueue=os.environ["JOB_QUEUE"],
            jobDefinition=os.environ["JOB_DEFINITION"],
            parameters={
                "s3Input": f"{event['input_uri']}/file_{index:02d}.json",
                "s3Output": f"{event['output_uri']}/output_{index:02d}.json",
            },
        )
        ids.append(response["jobId"])
    return {"statusCode": 200, "jobIds": " ".join(ids)}
