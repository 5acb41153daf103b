"""Alarms: failed or timed-out executions, and the endpoint alarms blue/green rollouts roll back on."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct


def endpoint_alarm_names(prefix: str) -> list[str]:
    """Names of the endpoint alarms; known before the alarms exist, so the Lambda that plans the
    rollout can list them in the DeploymentConfig without a dependency cycle."""
    return [f"{prefix}-endpoint-5xx", f"{prefix}-endpoint-latency"]


class EndpointAlarms(Construct):
    """Alarms on the endpoint's AllTraffic variant, named by ``endpoint_alarm_names``."""

    def __init__(self, scope: Construct, construct_id: str, *, endpoint_name: str, name_prefix: str) -> None:
        super().__init__(scope, construct_id)
        dims = {"EndpointName": endpoint_name, "VariantName": "AllTraffic"}
        five_xx, latency = endpoint_alarm_names(name_prefix)
        self.errors = cloudwatch.Alarm(
            self,
            "Errors",
            alarm_name=five_xx,
            alarm_description="Model returned 5XX errors: a blue/green rollout rolls back",
            metric=cloudwatch.Metric(namespace="AWS/SageMaker", metric_name="Invocation5XXErrors",
                                     dimensions_map=dims, statistic="Sum", period=Duration.minutes(1)),
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        self.latency = cloudwatch.Alarm(
            self,
            "Latency",
            alarm_name=latency,
            alarm_description="Model latency p99 above 1 s: a blue/green rollout rolls back",
            metric=cloudwatch.Metric(namespace="AWS/SageMaker", metric_name="ModelLatency",
                                     dimensions_map=dims, statistic="p99", period=Duration.minutes(1)),
            threshold=1_000_000,  # microseconds
            evaluation_periods=3,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )


class ExecutionAlarm(Construct):
    """Failed or timed-out executions notify the topic."""

    def __init__(self, scope: Construct, construct_id: str, *, state_machine: sfn.StateMachine, topic: sns.ITopic,
                 description: str = "A training pipeline execution failed or timed out") -> None:
        super().__init__(scope, construct_id)
        period = Duration.minutes(5)
        expression = cloudwatch.MathExpression(
            expression="failed + timedout",
            using_metrics={
                "failed": state_machine.metric_failed(period=period, statistic="Sum"),
                "timedout": state_machine.metric_timed_out(period=period, statistic="Sum"),
            },
            period=period,
            label="Failed or timed-out executions",
        )
        self.alarm = cloudwatch.Alarm(
            self,
            "FailedExecutions",
            alarm_description=description,
            metric=expression,
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        self.alarm.add_alarm_action(actions.SnsAction(topic))
