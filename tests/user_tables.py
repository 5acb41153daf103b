"""Tables a new user might bring, written as CSV files on demand (nothing big is shipped).

Each writer takes a folder and returns the path of the CSV it wrote there; the target is always the
last column. Everything is seeded, so a table is the same bytes on every run.

    iris, wine, breast_cancer, diabetes   scikit-learn's bundled datasets (no network)
    churn                                 a messy export: string categoricals spelt inconsistently,
                                          missing values, a signup date, a customer ID, labels spelt
                                          Yes/yes/YES/no/No/NO, and some rows with no label
    noise_regression, noise_binary        targets that are pure noise: no model may pass the gate

``TABLES`` maps each name to its writer, target column and expected problem type, for tests (and the
emulator's end-to-end runs) that go through all of them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd


def _sklearn_table(folder: Path, name: str, loader: Callable, target: str, label_names: bool = False) -> Path:
    bunch = loader(as_frame=True)
    frame = bunch.frame.rename(columns={"target": target})
    if label_names:  # the class names the dataset documents, not its integer codes
        frame[target] = [str(bunch.target_names[t]) for t in bunch.target]
    frame = frame[[c for c in frame.columns if c != target] + [target]]
    path = Path(folder) / f"{name}.csv"
    frame.to_csv(path, index=False)
    return path


def iris(folder: Path) -> Path:
    """150 rows, 4 measurements, target 0/1/2 (integers: multiclass by the few-integers rule)."""
    from sklearn.datasets import load_iris

    return _sklearn_table(folder, "iris", load_iris, "target")


def wine(folder: Path) -> Path:
    """178 rows, 13 measurements, target 0/1/2."""
    from sklearn.datasets import load_wine

    return _sklearn_table(folder, "wine", load_wine, "target")


def breast_cancer(folder: Path) -> Path:
    """569 rows, 30 measurements, target 'malignant'/'benign' (text: binary)."""
    from sklearn.datasets import load_breast_cancer

    return _sklearn_table(folder, "breast_cancer", load_breast_cancer, "diagnosis", label_names=True)


def diabetes(folder: Path) -> Path:
    """442 rows, 10 scaled measurements, target disease progression 25-346 (many integers: regression)."""
    from sklearn.datasets import load_diabetes

    return _sklearn_table(folder, "diabetes", load_diabetes, "progression")


CHURN_SPELLINGS = {"yes": ("Yes", "yes", "YES"), "no": ("no", "No", "NO")}


def churn_frame(rows: int = 1500, seed: int = 7, unlabelled: int = 60) -> pd.DataFrame:
    """A customer table whose churn depends on tenure, charges, support calls, plan and contract."""
    rng = np.random.default_rng(seed)
    tenure = rng.integers(1, 72, rows)
    charges = np.round(rng.normal(70, 25, rows).clip(15, 150), 2)
    calls = rng.poisson(1.5, rows)
    plan = rng.choice(["Basic", "Pro", "Premium"], rows, p=[0.5, 0.3, 0.2])
    contract = rng.choice(["monthly", "yearly", "two-year"], rows, p=[0.55, 0.3, 0.15])
    region = rng.choice(["north", "south", "east", "west"], rows)
    signup = pd.Timestamp("2019-01-01") + pd.to_timedelta(rng.integers(0, 5 * 365, rows), unit="D")
    score = (-0.05 * tenure + 0.03 * (charges - 70) + 0.6 * calls + 1.2 * (contract == "monthly")
             - 0.8 * (plan == "Premium") + 0.002 * (signup - pd.Timestamp("2019-01-01")).days - 0.6)
    churned = rng.random(rows) < 1 / (1 + np.exp(-score))
    frame = pd.DataFrame({
        "customer_id": [f"C{100000 + i}" for i in rng.permutation(rows)],
        "signup_date": signup.strftime("%Y-%m-%d"),
        # the same plan written three ways by different export tools
        "plan": [rng.choice([p, p.lower() + " ", p.upper()], p=[0.8, 0.15, 0.05]) for p in plan],
        "contract": contract,
        "region": region,
        "tenure_months": tenure,
        "monthly_charges": charges,
        "support_calls": calls,
        "churn": [rng.choice(CHURN_SPELLINGS["yes" if c else "no"], p=[0.6, 0.3, 0.1]) for c in churned],
    })
    frame.loc[rng.random(rows) < 0.05, "monthly_charges"] = np.nan
    frame.loc[rng.random(rows) < 0.05, "region"] = np.nan
    frame.loc[rng.random(rows) < 0.03, "signup_date"] = np.nan
    frame.loc[rng.choice(rows, unlabelled, replace=False), "churn"] = np.nan
    return frame


def churn(folder: Path, rows: int = 1500, seed: int = 7, unlabelled: int = 60) -> Path:
    path = Path(folder) / "churn.csv"
    churn_frame(rows, seed, unlabelled).to_csv(path, index=False)
    return path


def _noise_features(rng: np.random.Generator, rows: int) -> pd.DataFrame:
    return pd.DataFrame({
        "x1": rng.normal(size=rows).round(4),
        "x2": rng.uniform(0, 100, rows).round(2),
        "x3": rng.integers(0, 5, rows),
        "colour": rng.choice(["red", "green", "blue"], rows),
    })


def noise_regression(folder: Path, rows: int = 2000, seed: int = 11) -> Path:
    """Features and a normal target drawn independently: nothing to learn."""
    rng = np.random.default_rng(seed)
    frame = _noise_features(rng, rows)
    frame["target"] = rng.normal(50, 10, rows).round(3)
    path = Path(folder) / "noise_regression.csv"
    frame.to_csv(path, index=False)
    return path


def noise_binary(folder: Path, rows: int = 2000, seed: int = 12) -> Path:
    """Features and a yes/no target drawn independently."""
    rng = np.random.default_rng(seed)
    frame = _noise_features(rng, rows)
    frame["label"] = rng.choice(["yes", "no"], rows)
    path = Path(folder) / "noise_binary.csv"
    frame.to_csv(path, index=False)
    return path


@dataclass(frozen=True)
class Table:
    write: Callable[[Path], Path]
    target: str
    problem_type: str
    learnable: bool = True  # False: the quality gate must refuse any model of it


TABLES: dict[str, Table] = {
    "iris": Table(iris, "target", "multiclass"),
    "wine": Table(wine, "target", "multiclass"),
    "breast_cancer": Table(breast_cancer, "diagnosis", "binary"),
    "diabetes": Table(diabetes, "progression", "regression"),
    "churn": Table(churn, "churn", "binary"),
    "noise_regression": Table(noise_regression, "target", "regression", learnable=False),
    "noise_binary": Table(noise_binary, "label", "binary", learnable=False),
}
