"""What a tuning job asks optuna: parameter ranges as SageMaker writes them, the sampler each
strategy maps to, and the early-stopping rule."""

from __future__ import annotations

from dataclasses import dataclass

import optuna

from emulator.services.sagemaker import exceptions as exc


@dataclass(frozen=True)
class ParameterRange:
    name: str
    kind: str  # "Integer" | "Continuous" | "Categorical"
    low: float = 0.0
    high: float = 0.0
    scaling: str = "Auto"
    values: tuple[str, ...] = ()

    def grid(self) -> list[str]:
        if self.kind == "Categorical":
            return list(self.values)
        if self.kind == "Integer":
            return [str(v) for v in range(int(self.low), int(self.high) + 1)]
        raise exc.ValidationException(
            f"Grid search strategy does not support continuous parameter ranges ({self.name!r}); "
            "use IntegerParameterRanges or CategoricalParameterRanges, or another strategy"
        )

    def suggest(self, trial: optuna.Trial) -> str:
        """This range's value for ``trial``, as the string SageMaker passes to the container."""
        if self.kind == "Categorical":
            return str(trial.suggest_categorical(self.name, list(self.values)))
        if self.kind == "Integer":
            return str(trial.suggest_int(self.name, int(self.low), int(self.high), log=self.scaling == "Logarithmic"))
        if self.scaling == "ReverseLogarithmic":
            # dense near the upper bound: sample 1 - x on a log scale
            distance = trial.suggest_float(f"{self.name}__reverse_log", 1.0 - self.high, 1.0 - self.low, log=True)
            value = 1.0 - distance
            trial.set_user_attr(self.name, value)
            return repr(value)
        return repr(trial.suggest_float(self.name, self.low, self.high, log=self.scaling == "Logarithmic"))


def _number(value: str, kind: str, where: str) -> float:
    try:
        return int(value) if kind == "Integer" else float(value)
    except (TypeError, ValueError) as error:
        raise exc.ValidationException(f"{where}: {value!r} is not a valid {kind.lower()} value") from error


def parse_ranges(ranges: dict) -> list[ParameterRange]:
    """ParameterRanges -> ParameterRange list, with the checks SageMaker makes on the values."""
    if ranges.get("AutoParameters"):
        raise exc.ValidationException("AutoParameters (Autotune's inferred ranges) are not supported locally; give explicit ranges")
    out: list[ParameterRange] = []
    for kind, key in (("Integer", "IntegerParameterRanges"), ("Continuous", "ContinuousParameterRanges")):
        for item in ranges.get(key, []):
            where = f"{key} {item['Name']!r}"
            low, high = _number(item["MinValue"], kind, where), _number(item["MaxValue"], kind, where)
            scaling = item.get("ScalingType", "Auto")
            if low > high:
                raise exc.ValidationException(f"{where}: MinValue {low} is greater than MaxValue {high}")
            if scaling == "Logarithmic" and low <= 0:
                raise exc.ValidationException(f"{where}: Logarithmic scaling needs MinValue > 0, got {low}")
            if scaling == "ReverseLogarithmic" and (kind == "Integer" or not 0 <= low < high < 1):
                raise exc.ValidationException(f"{where}: ReverseLogarithmic scaling needs a continuous range with 0 <= MinValue < MaxValue < 1")
            out.append(ParameterRange(item["Name"], kind, low, high, scaling))
    for item in ranges.get("CategoricalParameterRanges", []):
        out.append(ParameterRange(item["Name"], "Categorical", values=tuple(item["Values"])))
    names = [r.name for r in out]
    if len(set(names)) != len(names):
        raise exc.ValidationException(f"Each hyperparameter may appear in one parameter range only: {sorted(names)}")
    if not out:
        raise exc.ValidationException("ParameterRanges must contain at least one range")
    return out


class _AskTellGridSampler(optuna.samplers.GridSampler):
    """GridSampler without its Study.stop() at the end of the grid: that call only works inside
    study.optimize(), and the tuner already stops at the grid's size."""

    def after_trial(self, study, trial, state, values) -> None:
        return None


def make_sampler(strategy: str, seed: int | None, ranges: list[ParameterRange]) -> optuna.samplers.BaseSampler:
    if strategy == "Bayesian":
        return optuna.samplers.TPESampler(seed=seed, constant_liar=True, n_startup_trials=min(10, max(2, len(ranges))))
    if strategy == "Grid":
        return _AskTellGridSampler({r.name: r.grid() for r in ranges}, seed=seed)
    return optuna.samplers.RandomSampler(seed=seed)  # Random, Hyperband


@dataclass(frozen=True)
class MedianRule:
    """Early stopping "Auto": optuna's MedianPruner rule, evaluated by the tuner itself against each
    trial's fixed reference (see Trial.reference) so that parallel trials stop reproducibly."""

    n_startup_trials: int = 3
    n_warmup_steps: int = 1


def make_pruner(config: dict, rounds: int | None = None) -> optuna.pruners.BasePruner | MedianRule | None:
    """Hyperband's own pruner, the median rule for early stopping Auto, else none.

    ``rounds`` (the static num_round) sets the median rule's warm-up to a tenth of training: a
    slow learning rate is always behind after a round or two, which says nothing of where it ends.
    """
    if config.get("Strategy") == "Hyperband":
        hb = config.get("StrategyConfig", {}).get("HyperbandStrategyConfig", {})
        return optuna.pruners.HyperbandPruner(min_resource=hb.get("MinResource", 1), max_resource=hb.get("MaxResource", "auto"), reduction_factor=3)
    if config.get("TrainingJobEarlyStoppingType") == "Auto":
        return MedianRule(n_startup_trials=3, n_warmup_steps=max(1, (rounds or 0) // 10))
    return None
