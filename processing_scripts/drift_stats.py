"""The distance and the tests behind each drift check: PSI on baseline bins, KS, chi-square, binomial."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

PSI_BINS = 10
PSI_FLOOR = 1e-4  # a bin empty on one side counts as this proportion (else PSI is infinite)
MIN_EXPECTED = 5  # chi-square: categories expecting fewer live rows are pooled


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    """Population stability index of two count vectors over the same bins."""
    e = np.maximum(expected / expected.sum(), PSI_FLOOR)
    a = np.maximum(actual / actual.sum(), PSI_FLOOR)
    return float(np.sum((a - e) * np.log(a / e)))


def decile_edges(sample: np.ndarray) -> np.ndarray:
    """Inner bin edges at the baseline sample's deciles; repeated edges (a value holding over a tenth of
    the rows, such as pdays=-1) collapse, so that value gets a bin of its own."""
    return np.unique(np.quantile(sample, np.linspace(0, 1, PSI_BINS + 1)[1:-1]))


def bin_counts(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts in (-inf, e1], (e1, e2], ..., (ek, inf)."""
    return np.bincount(np.searchsorted(edges, values, side="left"), minlength=edges.size + 1)


def numeric_drift(sample: np.ndarray, live: np.ndarray) -> dict[str, Any]:
    from scipy import stats

    edges = decile_edges(sample)
    expected, actual = bin_counts(sample, edges), bin_counts(live, edges)
    # the exact distribution costs O(n*m); past a million pairs the asymptotic one is as good at these levels
    method = "exact" if sample.size * live.size <= 1_000_000 else "asymp"
    try:
        ks = stats.ks_2samp(sample, live, method=method)
    except TypeError:  # scipy before 1.8 (an older scikit-learn image) calls it mode
        ks = stats.ks_2samp(sample, live, mode=method)
    return {"psi": psi(expected, actual), "ks_pvalue": float(ks[1]),
            "bins": {"edges": edges.tolist(), "baseline": (expected / expected.sum()).tolist(),
                     "live": (actual / actual.sum()).tolist()}}


def categorical_drift(baseline: dict[str, float], live: pd.Series) -> dict[str, Any]:
    from scipy import stats

    names = list(baseline)
    live_counts = live.value_counts()
    expected = np.asarray([baseline[n] for n in names] + [0.0])
    actual = np.asarray([float(live_counts.get(n, 0)) for n in names] + [float(len(live) - live_counts.reindex(
        names).fillna(0).sum())])
    # pool the bins expecting fewer than MIN_EXPECTED live rows, so the chi-square approximation holds
    share = expected / expected.sum()
    small = share * actual.sum() < MIN_EXPECTED
    table = np.vstack([np.append(expected[~small], expected[small].sum()),
                       np.append(actual[~small], actual[small].sum())])
    table = table[:, table.sum(axis=0) > 0]
    # [1]: the p-value, in the tuple older scipy returns and the result object newer scipy does
    pvalue = float(stats.chi2_contingency(table, correction=False)[1]) if table.shape[1] > 1 else 1.0
    return {"psi": psi(expected, actual), "chi2_pvalue": pvalue,
            "bins": {"categories": names + ["(unseen)"], "baseline": share.tolist(),
                     "live": (actual / max(actual.sum(), 1)).tolist()}}


def completeness_pvalue(absent: int, rows: int, expected: float) -> float:
    """One-sided binomial test that more than the baseline's share of cells is missing (0 when the
    baseline had every value: any gap is then significant)."""
    from scipy import stats

    return float(stats.binomtest(int(absent), rows, min(max(1 - expected, 0.0), 1.0),
                                 alternative="greater").pvalue) if expected < 1 else 0.0
