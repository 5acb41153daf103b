"""Start an execution whenever a file lands under a prefix: CSVs under raw/ start the training pipeline,
.csv and .jsonl record files under inference/ the inference pipeline."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct


class S3UploadTrigger(Construct):
    """An EventBridge rule on S3 "Object Created" under ``raw_prefix`` (keys ending in one of
    ``suffixes``) whose target starts ``state_machine`` with {"input_s3_uri": "s3://<bucket>/<key>"};
    undeliverable events go to ``dead_letter_queue`` after the retry policy gives up. Exposes ``rule``
    and ``dead_letter_queue``. ``rule_id`` and ``started`` name the rule and what it starts.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        bucket: s3.IBucket,
        raw_prefix: str,
        state_machine: sfn.IStateMachine,
        key: kms.IKey,
        suffixes: tuple[str, ...] = (".csv",),
        rule_id: str = "RawCsvUploaded",
        started: str = "the training pipeline",
    ) -> None:
        super().__init__(scope, construct_id)
        if not suffixes or not all(s.startswith(".") for s in suffixes):
            raise ValueError(f"suffixes must be file extensions like '.csv', got {suffixes!r}")
        if not raw_prefix.endswith("/"):
            raise ValueError(f"raw_prefix must end with '/', got {raw_prefix!r}")
        self.dead_letter_queue = sqs.Queue(
            self,
            "DeadLetters",
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=key,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        self.rule = events.Rule(
            self,
            rule_id,
            description=f"Starts {started} when a {' or '.join(suffixes)} object is created under {raw_prefix}",
            event_pattern=events.EventPattern(
                source=["aws.s3"],
                detail_type=["Object Created"],
                detail={
                    "bucket": {"name": [bucket.bucket_name]},
                    "object": {"key": [{"wildcard": f"{raw_prefix}*{suffix}"} for suffix in suffixes]},
                },
            ),
        )
        uri = f"s3://{events.EventField.from_path('$.detail.bucket.name')}/{events.EventField.from_path('$.detail.object.key')}"
        self.rule.add_target(
            targets.SfnStateMachine(
                state_machine,
                input=events.RuleTargetInput.from_object({"input_s3_uri": uri}),
                retry_attempts=4,
                max_event_age=Duration.hours(2),
                dead_letter_queue=self.dead_letter_queue,
            )
        )
