"""Retry and Catch: which retrier/catcher handles an error, and how long to back off."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import TypeVar

from emulator.asl.errors import ALL, TASK_FAILED, UNCATCHABLE
from emulator.asl.model import Catcher, Retrier

Handler = TypeVar("Handler", Retrier, Catcher)


def error_matches(error_equals: Sequence[str], name: str) -> bool:
    """Whether an ErrorEquals list covers an error name.

    States.ALL matches everything but the uncatchable errors (States.Runtime,
    States.DataLimitExceeded). States.TaskFailed also matches the errors tasks report under
    their own names (``Lambda.ServiceException``, ``SageMaker.AmazonSageMakerException``,
    ``ModelQualityBelowThreshold``...), but not the other ``States.*`` errors such as
    States.Timeout, as AWS does.
    """
    if name in UNCATCHABLE:
        return False
    if name in error_equals or ALL in error_equals:
        return True
    return TASK_FAILED in error_equals and not name.startswith("States.")


def find_handler(handlers: Sequence[Handler], name: str) -> int | None:
    """Index of the first retrier/catcher whose ErrorEquals matches, or None."""
    for index, handler in enumerate(handlers):
        if error_matches(handler.error_equals, name):
            return index
    return None


def backoff_seconds(retrier: Retrier, attempt: int, rng: random.Random) -> float:
    """Delay before retry number ``attempt + 1`` (attempt counts from 0).

    IntervalSeconds * BackoffRate ** attempt, capped by MaxDelaySeconds; with JitterStrategy FULL
    a uniformly random delay between 0 and that value.
    """
    delay = retrier.interval_seconds * retrier.backoff_rate**attempt
    if retrier.max_delay_seconds is not None:
        delay = min(delay, retrier.max_delay_seconds)
    if retrier.jitter_strategy == "FULL":
        delay = rng.uniform(0.0, delay)
    return delay
