"""The competing candidates: which model families exist, their defaults, and what a candidate list may hold.

Standard library only: the CDK app checks cdk.json's ``candidates`` at synth with it, and the
validation Lambda (a copy CDK stages beside its handler) checks an execution's list with the same
rules before any job, so both refuse the same lists with the same named errors.

A candidate is ``{"name", "family", "hyperparameters"?, "tuning_enabled"?, "tuning_ranges"?}``:
  xgboost         the built-in XGBoost algorithm; hyperparameters and tuning ranges default to the
                  pipeline's ``hyperparameters`` and ``tuning_ranges`` settings (tuned as before)
  random_forest   scikit-learn's RandomForestRegressor/Classifier in the SageMaker scikit-learn
                  image, script mode (training_scripts/random_forest); its own defaults below
A candidate's ``hyperparameters`` are merged over its family's defaults key by key; ``tuning_enabled``
defaults to the pipeline's ``tuning_enabled``.
"""

from __future__ import annotations

import re
from typing import Any

FAMILIES = ("xgboost", "random_forest")
CANDIDATE_KEYS = ("name", "family", "hyperparameters", "tuning_enabled", "tuning_ranges")
MAX_CANDIDATES = 10  # job names carry the candidate's index in one or two digits
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,39}")


def default_candidates() -> list[dict[str, Any]]:
    return [{"name": "xgboost", "family": "xgboost"}, {"name": "random_forest", "family": "random_forest"}]


def random_forest_hyperparameters() -> dict[str, str]:
    """What `make run` trains when a random_forest candidate names none (strings: SageMaker's contract)."""
    return {"n_estimators": "200", "max_depth": "16", "min_samples_leaf": "2", "max_features": "0.6", "random_state": "42"}


def random_forest_ranges() -> dict[str, Any]:
    """The Random Forest's own search space (SageMaker's ParameterRanges shape)."""
    return {
        "IntegerParameterRanges": [
            {"Name": "max_depth", "MinValue": "4", "MaxValue": "24", "ScalingType": "Auto"},
            {"Name": "min_samples_leaf", "MinValue": "1", "MaxValue": "10", "ScalingType": "Auto"},
        ],
        "ContinuousParameterRanges": [
            {"Name": "max_features", "MinValue": "0.2", "MaxValue": "1.0", "ScalingType": "Linear"},
        ],
        "CategoricalParameterRanges": [],
    }


# The Random Forest script's hyperparameters a candidate may set (training_scripts/random_forest/contract.py
# names them all; problem_type, num_class and n_jobs are the pipeline's to set): name -> (kind, lowest,
# highest, words also accepted). Kinds: int, number, count_or_fraction (a whole number, or a fraction in (0, 1]).
RANDOM_FOREST_SPECS: dict[str, tuple[str, float | None, float | None, tuple[str, ...]]] = {
    "n_estimators": ("int", 1, 5000, ()),
    "max_depth": ("int", 1, None, ("none",)),
    "min_samples_split": ("int", 2, None, ()),
    "min_samples_leaf": ("int", 1, None, ()),
    "max_features": ("count_or_fraction", 0, None, ("sqrt", "log2", "none")),
    "max_samples": ("count_or_fraction", 0, None, ("none",)),
    "bootstrap": ("word", None, None, ("true", "false")),
    "criterion": ("word", None, None, ("auto", "squared_error", "absolute_error", "friedman_mse", "poisson",
                                        "gini", "entropy", "log_loss")),
    "class_weight": ("word", None, None, ("none", "balanced", "balanced_subsample")),
    "min_impurity_decrease": ("number", 0, None, ()),
    "ccp_alpha": ("number", 0, None, ()),
    "random_state": ("int", 0, 2**32 - 1, ()),
}
PIPELINE_SET = ("problem_type", "num_class")  # from the plan's problem type, whatever a candidate says


class CandidateError(ValueError):
    """Base of the candidate list's refusals (each a named error: the Lambda's error name)."""


class NoCandidates(CandidateError):
    pass


class UnknownCandidateFamily(CandidateError):
    pass


class DuplicateCandidateName(CandidateError):
    pass


class InvalidCandidate(CandidateError):
    pass


def check_candidates(candidates: Any) -> list[dict[str, Any]]:
    """The list as given, checked: non-empty, known families, unique names, known keys."""
    if not isinstance(candidates, list) or not candidates:
        raise NoCandidates(
            f"candidates must be a non-empty list of models to train, got {candidates!r}. Give at least one, like "
            '[{"name": "xgboost", "family": "xgboost"}], or leave the setting out for the defaults '
            f"{[c['name'] for c in default_candidates()]}.")
    if len(candidates) > MAX_CANDIDATES:
        raise InvalidCandidate(f"candidates holds {len(candidates)} models; at most {MAX_CANDIDATES} compete in one run.")
    seen: dict[str, int] = {}
    for index, candidate in enumerate(candidates):
        where = f"candidates[{index}]"
        if not isinstance(candidate, dict):
            raise InvalidCandidate(f"{where} must be an object like {{\"name\": \"rf\", \"family\": \"random_forest\"}}, "
                                   f"got {candidate!r}.")
        unknown = sorted(set(candidate) - set(CANDIDATE_KEYS))
        if unknown:
            raise InvalidCandidate(f"{where} has unknown key(s) {unknown}; a candidate takes {list(CANDIDATE_KEYS)}.")
        name = candidate.get("name")
        if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
            raise InvalidCandidate(f"{where}.name must be 1-40 letters, digits, '_' or '-' starting with a letter or "
                                   f"digit (it goes into job names), got {name!r}.")
        family = candidate.get("family")
        if family not in FAMILIES:
            raise UnknownCandidateFamily(f"{where} ({name!r}) has family {family!r}; the pipeline trains {list(FAMILIES)}. "
                                         "Fix the family or drop the candidate.")
        if name.lower() in seen:
            raise DuplicateCandidateName(f"candidates[{seen[name.lower()]}] and {where} are both named {name!r}; give "
                                         "each candidate its own name (names are compared case-insensitively).")
        seen[name.lower()] = index
        hyperparameters = candidate.get("hyperparameters", {})
        if not isinstance(hyperparameters, dict) or not all(isinstance(v, str) for v in hyperparameters.values()):
            raise InvalidCandidate(f"{where} ({name!r}).hyperparameters must be an object of string values "
                                   f"(SageMaker's contract), got {hyperparameters!r}; quote the numbers.")
        if "tuning_enabled" in candidate and not isinstance(candidate["tuning_enabled"], bool):
            raise InvalidCandidate(f"{where} ({name!r}).tuning_enabled must be true or false, got {candidate['tuning_enabled']!r}.")
        if "tuning_ranges" in candidate and not isinstance(candidate["tuning_ranges"], dict):
            raise InvalidCandidate(f"{where} ({name!r}).tuning_ranges must be an object in SageMaker's ParameterRanges shape.")
    return candidates


def _random_forest_value(key: str, raw: Any, where: str, name: str) -> None:
    spec = RANDOM_FOREST_SPECS.get(key)
    if spec is None:
        settable = sorted(RANDOM_FOREST_SPECS)
        why = "the pipeline sets it from the problem type" if key in PIPELINE_SET else f"it takes {settable}"
        raise InvalidCandidate(f"Candidate {name!r}: the Random Forest has no settable hyperparameter {key!r} ({where}); {why}.")
    kind, low, high, words = spec
    text = str(raw).strip().lower()
    if text in words:
        return
    wanted = {"int": "a whole number", "number": "a number", "word": "one of", "count_or_fraction":
              "a fraction in (0, 1] or a whole number"}[kind]
    if words:
        wanted += f" or one of {list(words)}" if kind != "word" else f" {list(words)}"
    try:
        value = float(text) if kind != "int" else int(text)
    except ValueError:
        value = None
    if kind == "word" or value is None:
        raise InvalidCandidate(f"Candidate {name!r}: {key}={raw!r} ({where}) must be {wanted}.")
    if kind == "count_or_fraction":
        fine = (0 < value <= 1) or (value > 1 and float(value).is_integer())
    else:
        fine = (low is None or value >= low) and (high is None or value <= high)
    if not fine:
        bounds = f"from {low} to {high}" if high is not None else f"at least {low}"
        raise InvalidCandidate(f"Candidate {name!r}: {key}={raw!r} ({where}) must be {wanted}"
                               + ("" if kind == "count_or_fraction" else f", {bounds}") + ".")


def check_random_forest(hyperparameters: dict[str, str], ranges: dict[str, Any], name: str) -> None:
    """The Random Forest script's names and value ranges, on the values and on every tuning range's ends."""
    for key, value in hyperparameters.items():
        _random_forest_value(key, value, "hyperparameters", name)
    for kind, entries in ranges.items():
        for entry in entries or []:
            for end in ("MinValue", "MaxValue"):
                if end in entry:
                    _random_forest_value(entry.get("Name"), entry[end], f"tuning_ranges.{kind}", name)
            for value in entry.get("Values", []):
                _random_forest_value(entry.get("Name"), value, f"tuning_ranges.{kind}", name)


def slug(name: str) -> str:
    """A candidate name as it may appear in a SageMaker name (letters, digits, hyphens)."""
    return re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-").lower() or "c"
