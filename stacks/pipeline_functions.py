"""The Lambda functions the state machine calls: input validation, the winner's selection and the quality gate."""

from __future__ import annotations

from pathlib import Path

from aws_cdk import Duration, SymlinkFollowMode
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from constructs import Construct

LAMBDAS_DIR = Path(__file__).resolve().parent.parent / "lambdas"
RUNTIME = lambda_.Runtime.PYTHON_3_12


class PipelineFunctions(Construct):
    """Exposes ``validate_input``, ``select_winner`` and ``quality_gate``. Each is a plain asset folder (boto3 only, no
    bundling) so the app synthesizes without Docker. Both folders hold ``problem_rules.py`` as a
    symlink to processing_scripts/problem_rules.py, which the asset copies as a file: the Lambdas and
    the processing jobs run one rule from one source file."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        bucket: s3.IBucket,
        rollback_alarm_names: list[str],
        endpoint_instance_count: int,
        endpoint_name: str,
        job_timeout_seconds: int,
    ) -> None:
        super().__init__(scope, construct_id)
        self.validate_input = self._function(
            "ValidateInput",
            "validate_input",
            "Checks an execution's input CSV and settings and plans the run",
            memory_mb=1024,
            environment={
                "DATA_BUCKET": bucket.bucket_name,
                "ROLLBACK_ALARMS": ",".join(rollback_alarm_names),
                "ENDPOINT_INSTANCE_COUNT": str(endpoint_instance_count),
                "ENDPOINT_NAME": endpoint_name,
                "JOB_TIMEOUT_SECONDS": str(job_timeout_seconds),
            },
        )
        bucket.grant_read(self.validate_input)
        self.quality_gate = self._function(
            "QualityGate",
            "quality_gate",
            "Gates a model on its evaluation metrics and the deployed champion's",
            memory_mb=256,
            environment={"DATA_BUCKET": bucket.bucket_name},
        )
        bucket.grant_read(self.quality_gate)
        # pure python (no numpy in the Lambda runtime): percentiles over the bootstraps evaluate.py drew
        self.select_winner = self._function(
            "SelectWinner",
            "select_winner",
            "Ranks the candidates on paired-bootstrap intervals and picks the winner by the stated rule",
            memory_mb=512,
            environment={"DATA_BUCKET": bucket.bucket_name},
        )
        bucket.grant_read(self.select_winner)

    def _function(self, construct_id: str, folder: str, description: str, memory_mb: int, environment: dict) -> lambda_.Function:
        log_group = logs.LogGroup(self, f"{construct_id}Logs", retention=logs.RetentionDays.ONE_MONTH)
        return lambda_.Function(
            self,
            construct_id,
            runtime=RUNTIME,
            handler="handler.handler",
            code=lambda_.Code.from_asset(str(LAMBDAS_DIR / folder), exclude=["__pycache__", "*.pyc", "__init__.py"],
                                         follow_symlinks=SymlinkFollowMode.ALWAYS),
            description=description,
            memory_size=memory_mb,
            timeout=Duration.seconds(120),
            environment=environment,
            log_group=log_group,
            tracing=lambda_.Tracing.ACTIVE,
        )
