"""``python -m pipeline --submitter-arn ARN --queue-url URL``: print the definition JSON.

Needs neither credentials nor network: the SDK only builds JSON here.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline", description=__doc__)
    parser.add_argument("--name", default="batchbridge", help="pipeline name")
    parser.add_argument("--submitter-arn", required=True, help="the submitter Lambda's ARN")
    parser.add_argument("--queue-url", required=True, help="the callback SQS queue URL")
    parser.add_argument("--job-queue", help="make JobQueue a pipeline parameter (its default)")
    parser.add_argument("--job-definition", help="make JobDefinition a pipeline parameter")
    parser.add_argument("--region", default=None, help="region for the SDK (default us-east-1)")
    args = parser.parse_args(argv)
    # The SDK wants a region even to build JSON; any will do offline.
    os.environ.setdefault("AWS_DEFAULT_REGION", args.region or "us-east-1")

    from pipeline.definition import build_pipeline

    pipeline = build_pipeline(
        args.name,
        submitter_function_arn=args.submitter_arn,
        callback_queue_url=args.queue_url,
        job_queue=args.job_queue,
        job_definition=args.job_definition,
    )
    with warnings.catch_warnings():
        # "Lambda function won't be updated": right, the stack owns it.
        warnings.filterwarnings("ignore", message="Lambda function won't be updated")
        definition = pipeline.definition()
    print(json.dumps(json.loads(definition), indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
