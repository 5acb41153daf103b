"""Retry and Catch policies shared by every Task state of the pipeline.

Transient failures are retried with exponential backoff and full jitter; deterministic ones
(a job that ran and failed, a rejected input) are not, and go straight to the Catch. Every Catch
routes to the failure handler with the error under ``$.error``.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

ERROR_PATH = "$.error"

# Optimized SageMaker integrations report throttling and other service-side API errors as
# SageMaker.AmazonSageMakerException (validation errors share that name: AWS gives no way to tell
# them apart, so they use up three quick attempts before the Catch).
SAGEMAKER_TRANSIENT = ["ThrottlingException", "SageMaker.AmazonSageMakerException"]
# Lambda's service-side errors (not the function's own exceptions, which are deterministic).
LAMBDA_TRANSIENT = [
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
]
# AWS SDK integrations keep modelled errors by name and report the rest (throttling, validation,
# service faults) as <Service>.<Service>Exception; client-side faults are <Service>.SdkClientException.
SAGEMAKER_SDK_TRANSIENT = ["SageMaker.SageMakerException", "SageMaker.SdkClientException"]
# DescribeEndpoint answers "not found" as SageMaker.SageMakerException too, so the lookup that
# decides create-or-update retries client-side faults only and treats the rest as "no endpoint".
SAGEMAKER_SDK_CLIENT = ["SageMaker.SdkClientException"]
S3_SDK_TRANSIENT = ["S3.S3Exception", "S3.SdkClientException"]
SNS_TRANSIENT = ["SNS.AmazonSNSException", "SNS.SdkClientException", "SNS.ThrottledException"]


def guard(state, transient: list[str], on_error: sfn.IChainable, attempts: int = 3, interval_s: int = 5):
    """Add the transient Retry and the catch-all Catch to a Task state; returns the state."""
    state.add_retry(
        errors=transient,
        interval=Duration.seconds(interval_s),
        max_attempts=attempts,
        backoff_rate=2.0,
        max_delay=Duration.seconds(120),
        jitter_strategy=sfn.JitterType.FULL,
    )
    state.add_catch(on_error, errors=[sfn.Errors.ALL], result_path=ERROR_PATH)
    return state


def notify_then_fail(scope: Construct, topic: sns.ITopic, subject: str, fail_name: str) -> tasks.SnsPublish:
    """Every Catch's target: "Notify failure" publishes the execution, error and cause, then the Fail
    state ``fail_name`` ends the execution with that error. A notification that cannot be sent must
    not hide the original error: it is retried, then caught straight into the Fail (DISCARD keeps
    $.error). Returns the notify state, already chained to the Fail."""
    notify = tasks.SnsPublish(
        scope, "Notify failure", topic=topic, subject=subject,
        message=sfn.TaskInput.from_object(
            {"execution.$": "$$.Execution.Id", "status": "FAILED", "error.$": "$.error.Error", "cause.$": "$.error.Cause"}),
        result_path=sfn.JsonPath.DISCARD,
    )
    fail = sfn.Fail(scope, fail_name, error_path="$.error.Error", cause_path="$.error.Cause")
    notify.add_retry(errors=SNS_TRANSIENT, interval=Duration.seconds(2), max_attempts=3, backoff_rate=2.0,
                     max_delay=Duration.seconds(30), jitter_strategy=sfn.JitterType.FULL)
    notify.add_catch(fail, errors=[sfn.Errors.ALL], result_path=sfn.JsonPath.DISCARD)
    notify.next(fail)
    return notify
