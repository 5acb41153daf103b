"""Training metrics scraped from a job's log, as SageMaker does with MetricDefinitions regexes."""

from __future__ import annotations

import datetime as dt
import logging
import re

from containers.xgboost.metrics import METRIC_DEFINITIONS as XGBOOST_METRIC_DEFINITIONS

log = logging.getLogger("emulator.services.sagemaker.metrics")

_LEADING = re.compile(r"\s*([-+]?(?:[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?|inf|nan))", re.IGNORECASE)


def builtin_metric_definitions(image_kind: str) -> list[dict]:
    """The built-in algorithm's metric definitions (the XGBoost twin declares them)."""
    return [dict(d) for d in XGBOOST_METRIC_DEFINITIONS] if image_kind == "xgboost" else []


def metric_series(log_text: str, definitions: list[dict]) -> dict[str, list[float]]:
    """Every value each metric regex finds, line by line, with tabs shown as #011 (CloudWatch)."""
    compiled = []
    for definition in definitions:
        try:
            compiled.append((definition["Name"], re.compile(definition["Regex"])))
        except re.error:
            log.warning("metric %s: regex %r does not compile; skipped", definition.get("Name"), definition.get("Regex"))
    series: dict[str, list[float]] = {}
    for line in log_text.replace("\t", "#011").splitlines():
        for name, regex in compiled:
            match = regex.search(line)
            if match:
                value = _leading_number(match.group(1) if match.groups() else "")
                if value is not None:
                    series.setdefault(name, []).append(value)
    return series


def _leading_number(text: str) -> float | None:
    """The number a capture starts with: a greedy ``(\\S+)`` also takes the ``#011`` that follows."""
    match = _LEADING.match(text or "")
    return float(match.group(1)) if match else None


def final_metrics(log_text: str, definitions: list[dict], when: dt.datetime) -> list[dict]:
    """FinalMetricDataList: each metric's last value in the log."""
    series = metric_series(log_text, definitions)
    return [{"MetricName": name, "Value": values[-1], "Timestamp": when} for name, values in series.items()]
