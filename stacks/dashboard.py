"""The operations dashboard: the endpoint, the monitoring loop's findings and every state machine's
executions on one CloudWatch page."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from stacks.model_monitoring import METRICS_NAMESPACE

ENDPOINT_METRICS = (("Invocations", "Sum"), ("ModelLatency", "p99"), ("Invocation4XXErrors", "Sum"),
                    ("Invocation5XXErrors", "Sum"))


class PipelineDashboard(Construct):
    """Exposes ``dashboard``. ``state_machines``: (label, machine) whose executions are graphed;
    ``variants``: the endpoint's production variants (blue/green keeps the one name, AllTraffic)."""

    def __init__(self, scope: Construct, construct_id: str, *, dashboard_name: str, endpoint_name: str,
                 state_machines: list[tuple[str, sfn.IStateMachine]], variants: tuple[str, ...] = ("AllTraffic",),
                 period: Duration | None = None) -> None:
        super().__init__(scope, construct_id)
        if not state_machines:
            raise ValueError("PipelineDashboard needs at least one state machine to graph")
        period = period or Duration.minutes(5)
        endpoint = lambda name, statistic, variant: cloudwatch.Metric(
            namespace="AWS/SageMaker", metric_name=name, statistic=statistic, period=period,
            dimensions_map={"EndpointName": endpoint_name, "VariantName": variant}, label=f"{name} ({variant})")
        ours = lambda name, statistic="Maximum", label=None: cloudwatch.Metric(
            namespace=METRICS_NAMESPACE, metric_name=name, statistic=statistic, period=Duration.hours(1),
            dimensions_map={"EndpointName": endpoint_name}, label=label or name)
        endpoint_row = [
            cloudwatch.GraphWidget(title=f"{name} per variant", width=6,
                                   left=[endpoint(name, statistic, v) for v in variants])
            for name, statistic in ENDPOINT_METRICS
        ]
        monitoring_row = [
            cloudwatch.GraphWidget(title="Drift: share of drifted features and max PSI", width=8,
                                   left=[ours("DriftedFeatureShare")], right=[ours("MaxPSI")]),
            cloudwatch.GraphWidget(title="Live quality (labelled traffic) and degradation flag", width=8,
                                   left=[cloudwatch.MathExpression(
                                       expression=f"SEARCH('{{{METRICS_NAMESPACE},EndpointName,Metric}} MetricName=\"LiveQuality\" "
                                                  f"EndpointName=\"{endpoint_name}\"', 'Maximum', 3600)",
                                       label="LiveQuality", period=Duration.hours(1))],
                                   right=[ours("QualityDegraded")]),
            cloudwatch.GraphWidget(title="Low-confidence rate and captured records", width=8,
                                   left=[ours("LowConfidenceRate", "Average")], right=[ours("CapturedRecords", "Sum")]),
        ]
        executions_row = [
            cloudwatch.GraphWidget(title=f"{label} executions", width=max(6, 24 // len(state_machines)), left=[
                machine.metric_succeeded(period=period, statistic="Sum", label="succeeded"),
                machine.metric_failed(period=period, statistic="Sum", label="failed"),
                machine.metric_timed_out(period=period, statistic="Sum", label="timed out"),
            ])
            for label, machine in state_machines
        ]
        self.dashboard = cloudwatch.Dashboard(self, "Dashboard", dashboard_name=dashboard_name,
                                              widgets=[endpoint_row, monitoring_row, executions_row])
