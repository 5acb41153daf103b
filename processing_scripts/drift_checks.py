"""Model Monitor's constraint checks on the live cells: one summary entry and the violations per feature."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

if __package__:  # imported from the source tree (tests, benchmarks)
    from . import capture_records, drift_stats
    from . import monitor_baseline as mb
    from . import problem_rules as rules
else:  # run as the job's script: its siblings sit beside it in the job's code folder
    import capture_records
    import drift_stats
    import monitor_baseline as mb
    import problem_rules as rules

BOOLEANS = {"True": "1", "TRUE": "1", "true": "1", "False": "0", "FALSE": "0", "false": "0"}


# ---------------------------------------------------------------------------------------------
# Live cells -> values, as the featurizer reads them


@dataclass
class LiveFeature:
    """One feature's live cells, decoded: numbers (numeric) or category keys (categorical)."""

    rows: int
    missing: int
    values: np.ndarray | pd.Series  # present values only
    type_errors: int = 0  # present cells that are not numbers (numeric features)
    not_whole: int = 0  # numbers that are not whole (an Integral feature)
    examples: list[str] = field(default_factory=list)


def _present(cells: pd.Series) -> tuple[pd.Series, pd.Series]:
    """(text with leading spaces removed, missing mask): NA tokens and absent cells are missing."""
    text = cells.astype(object)
    text = text.where(text.isna(), text.astype(str).str.lstrip(" "))
    missing = text.isna() | text.isin(rules.MISSING_MARKERS)
    return text, missing


def decode_numeric(cells: pd.Series, integral: bool) -> LiveFeature:
    text, missing = _present(cells)
    candidates = text[~missing].replace(BOOLEANS)
    numbers = pd.to_numeric(candidates, errors="coerce")
    bad = numbers.isna()
    infinite = np.isinf(numbers.to_numpy(dtype=np.float64, na_value=np.nan))
    values = numbers[~bad & ~infinite].to_numpy(dtype=np.float64)
    not_whole = int((np.mod(values, 1) != 0).sum()) if integral else 0
    examples = list(dict.fromkeys(candidates[bad].astype(str).str.slice(0, 40).head(50)))[:3]
    # an infinite number is missing, as preprocess read it in training (feature_rules.py)
    return LiveFeature(len(cells), int(missing.sum() + infinite.sum()), values, int(bad.sum()), not_whole, examples)


def decode_categorical(cells: pd.Series) -> LiveFeature:
    text, missing = _present(cells)
    keys = mb.category_keys(text.where(~missing))
    present = keys.dropna()
    return LiveFeature(len(cells), len(keys) - len(present), present)


# ---------------------------------------------------------------------------------------------
# The checks


@dataclass
class Thresholds:
    numeric_psi: float
    categorical_psi: float
    significance: float
    datatype: float
    domain: float
    completeness: float

    @classmethod
    def of(cls, constraints: dict[str, Any], drift_threshold: float | None = None,
           significance_level: float | None = None) -> Thresholds:
        """constraints.json's monitoring_config (Model Monitor's defaults where it is silent), the PSI
        threshold and the significance level overridden by the job's arguments when given."""
        config = constraints.get("monitoring_config") or {}
        distribution = config.get("distribution_constraints") or {}
        numeric = drift_threshold or distribution.get("comparison_threshold", mb.DEFAULT_DRIFT_THRESHOLD)
        categorical = drift_threshold or distribution.get("categorical_comparison_threshold", numeric)
        return cls(float(numeric), float(categorical),
                   float(significance_level or distribution.get("significance_level", mb.DEFAULT_SIGNIFICANCE)),
                   float(config.get("datatype_check_threshold", mb.DEFAULT_DATATYPE_THRESHOLD)),
                   float(config.get("domain_content_threshold", mb.DEFAULT_DOMAIN_THRESHOLD)),
                   float(config.get("completeness_tolerance", mb.DEFAULT_COMPLETENESS_TOLERANCE)))

    def to_json(self) -> dict[str, float]:
        return {"comparison_threshold": self.numeric_psi, "categorical_comparison_threshold": self.categorical_psi,
                "significance_level": self.significance, "datatype_check_threshold": self.datatype,
                "domain_content_threshold": self.domain, "completeness_tolerance": self.completeness}


def violation(feature: str, check: str, description: str) -> dict[str, str]:
    return {"feature_name": feature, "constraint_check_type": check, "description": description}


def _pct(part: float, whole: float) -> str:
    return f"{100.0 * part / whole:.2f}%" if whole else "0%"


def column_checks(window: capture_records.CaptureWindow, columns: list[str]) -> list[dict[str, str]]:
    """missing_column_check and extra_column_check: rows whose shape is not the baseline's."""
    found = []
    rows = len(window.cells) + window.malformed_rows
    missing = dict(window.absent_keys)
    for cells, count in window.short_rows.items():
        for name in columns[cells:]:
            missing[name] = missing.get(name, 0) + count
    for name in columns:
        if missing.get(name):
            found.append(violation(name, "missing_column_check",
                                   f"{missing[name]} of {rows} rows ({_pct(missing[name], rows)}) lack column {name!r}; "
                                   f"the baseline has {len(columns)} columns: {', '.join(columns)}."))
    extra = dict(window.extra_keys)
    for cells, count in window.long_rows.items():
        for position in range(len(columns), cells):
            extra[f"_c{position}"] = extra.get(f"_c{position}", 0) + count
    for name, count in sorted(extra.items()):
        found.append(violation(name, "extra_column_check",
                               f"{count} of {rows} rows ({_pct(count, rows)}) carry column {name!r}, which the "
                               f"baseline does not have (it has {len(columns)} columns)."))
    return found


def feature_checks(name: str, stats: dict[str, Any], constraint: dict[str, Any], cells: pd.Series,
                   limits: Thresholds) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """One feature's summary entry and violations."""
    numeric = stats["inferred_type"] != mb.STRING
    found = []
    if numeric:
        live = decode_numeric(cells, stats["inferred_type"] == mb.INTEGRAL)
        present = live.rows - live.missing - live.type_errors
        shown = f" (e.g. {', '.join(map(repr, live.examples))})" if live.examples else ""
        if live.rows and live.type_errors / max(live.rows - live.missing, 1) > limits.datatype:
            found.append(violation(name, "data_type_check",
                                   f"{live.type_errors} of {live.rows - live.missing} present values "
                                   f"({_pct(live.type_errors, live.rows - live.missing)}) are not numbers{shown}; the "
                                   f"baseline's type is {stats['inferred_type']} (threshold "
                                   f"{limits.datatype:g})."))
        elif present and live.not_whole / present > limits.datatype:
            found.append(violation(name, "data_type_check",
                                   f"{live.not_whole} of {present} values ({_pct(live.not_whole, present)}) are "
                                   f"Fractional; the baseline's type is Integral (threshold {limits.datatype:g})."))
    else:
        live = decode_categorical(cells)
        present = len(live.values)
    entry: dict[str, Any] = {"kind": mb.NUMERIC if numeric else mb.CATEGORICAL, "inferred_type": stats["inferred_type"],
                             "rows": live.rows, "present": int(present), "psi": None, "ks_pvalue": None,
                             "chi2_pvalue": None, "drifted": False}
    # completeness (the share of non-null cells, a non-number included: data_type_check judges those):
    # a significant fall of more than the tolerance
    expected = float(constraint.get("completeness", 1.0))
    absent = live.missing
    observed = 1 - absent / live.rows if live.rows else 1.0
    entry["completeness"] = {"baseline": expected, "live": observed}
    if live.rows and expected - observed > limits.completeness:
        pvalue = drift_stats.completeness_pvalue(absent, live.rows, expected)
        if pvalue < limits.significance:
            found.append(violation(name, "completeness_check",
                                   f"{observed:.2%} of {live.rows} rows have a value, against {expected:.2%} in the "
                                   f"baseline (tolerance {limits.completeness:g}, binomial p={pvalue:.2g})."))
    if not present:
        return entry, found
    if numeric:
        sample = np.asarray(stats["numerical_statistics"]["distribution"]["sample"]["values"], dtype=np.float64)
        result = drift_stats.numeric_drift(sample, live.values)
        threshold, pvalue, test = limits.numeric_psi, result["ks_pvalue"], "KS"
        entry.update(live_mean=float(np.mean(live.values)), baseline_mean=stats["numerical_statistics"]["mean"],
                     baseline_std=stats["numerical_statistics"]["std_dev"])
        moved = (f"; live mean {entry['live_mean']:.4g}, baseline mean {entry['baseline_mean']:.4g} "
                 f"(std {entry['baseline_std']:.4g})")
    else:
        buckets = stats["string_statistics"]["distribution"]["categorical"]["buckets"]
        result = drift_stats.categorical_drift({b["value"]: float(b["count"]) for b in buckets}, live.values)
        threshold, pvalue, test = limits.categorical_psi, result["chi2_pvalue"], "chi-square"
        domains = (constraint.get("string_constraints") or {}).get("domains")
        if domains is not None:
            unknown = live.values[~live.values.isin(domains)]
            if len(unknown) / present > limits.domain:
                top = ", ".join(repr(v) for v in unknown.value_counts().index[:5])
                found.append(violation(name, "categorical_values_check",
                                       f"{len(unknown)} of {present} values ({_pct(len(unknown), present)}) are not "
                                       f"among the baseline's {len(domains)} categories (e.g. {top}; threshold "
                                       f"{limits.domain:g})."))
        live_share = dict(zip(result["bins"]["categories"], result["bins"]["live"]))
        base_share = dict(zip(result["bins"]["categories"], result["bins"]["baseline"]))
        moved_most = sorted(live_share, key=lambda c: -abs(live_share[c] - base_share[c]))[:3]
        moved = "; " + ", ".join(f"{c!r} {base_share[c]:.1%} -> {live_share[c]:.1%}" for c in moved_most)
    entry.update(psi=result["psi"], bins=result["bins"])
    entry["ks_pvalue" if numeric else "chi2_pvalue"] = pvalue
    entry["drifted"] = bool(result["psi"] > threshold and pvalue < limits.significance)
    if entry["drifted"]:
        found.append(violation(name, "baseline_drift_check",
                               f"PSI {result['psi']:.3f} > {threshold:g} and {test} p={pvalue:.2g} < "
                               f"{limits.significance:g} over {present} values{moved}."))
    return entry, found
