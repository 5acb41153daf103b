"""SageMakerBackend: the SageMaker API of one local account, as one entry point over its parts.

``call(operation, request)`` is what the Step Functions integrations and tests use: an injected
fault first, then validation against botocore's service model, then the method named after the
operation in snake case on whichever part implements it (jobs, tuning, hosting, registry,
transform). ``close`` stops every job, search and worker thread the parts started.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from emulator.services.sagemaker import exceptions as exc
from emulator.services.sagemaker.context import SageMakerContext
from emulator.services.sagemaker.hosting import HostingBackend
from emulator.services.sagemaker.jobs import JobsBackend
from emulator.services.sagemaker.registry import RegistryBackend
from emulator.services.sagemaker.transform import TransformBackend
from emulator.services.sagemaker.tuning import TuningBackend
from emulator.services.sagemaker.validation import method_name, operation_name, service_model, validate

log = logging.getLogger("emulator.services.sagemaker.facade")


class SageMakerBackend:
    """Jobs, tuning, hosting, the model registry and batch transform over one SageMakerContext."""

    def __init__(self, context: SageMakerContext):
        self.context = context
        self.jobs = JobsBackend(context)
        self.tuning = TuningBackend(context, self.jobs)
        self.hosting = HostingBackend(context)
        self.registry = RegistryBackend(context)
        self.transform = TransformBackend(context, self.hosting)
        self._operations = self._dispatch_table()
        self._faults: dict[str, list[str]] = {}
        self._lock = threading.Lock()

    def _dispatch_table(self) -> dict[str, Callable[..., dict]]:
        """Every API operation a part implements, by its snake-case name (each in one part only)."""
        table: dict[str, Callable[..., dict]] = {}
        for operation in service_model().operation_names:
            name = method_name(operation)
            for part in (self.jobs, self.tuning, self.hosting, self.registry, self.transform):
                method = getattr(part, name, None)
                if callable(method):
                    if name in table:
                        raise TypeError(f"{operation} is implemented twice ({table[name]} and {method})")
                    table[name] = method
        return table

    # -- the API entry point --------------------------------------------------------------------
    def inject_fault(self, operation: str, error_code: str, times: int = 1) -> None:
        """Make the next ``times`` calls of ``operation`` fail with ``error_code`` (tests only)."""
        with self._lock:
            self._faults.setdefault(operation_name(operation), []).extend([error_code] * times)

    def _take_fault(self, operation: str) -> str | None:
        with self._lock:
            queue = self._faults.get(operation_name(operation))
            return queue.pop(0) if queue else None

    def call(self, operation: str, request: dict | None = None) -> dict:
        """One SageMaker API call: faults, validation, then the method named after the operation."""
        request = dict(request or {})
        code = self._take_fault(operation)
        if code:
            log.info("injected %s on %s", code, operation_name(operation))
            raise exc.from_code(code)
        validate(operation, request)
        method = self._operations.get(method_name(operation))
        if method is None:
            raise exc.ValidationException(f"The local SageMaker emulator does not implement {operation_name(operation)}")
        return method(**request)

    # -- jobs by kind (processing, training, tuning, transform) ---------------------------------
    def ended_event(self, kind: str, name: str) -> threading.Event | None:
        """The event set when a job of ``kind`` running in this process ends; None when it does not
        run here (callers then poll its Describe*)."""
        if kind == "transform":
            return self.transform.ended_event(name)
        if kind == "tuning":
            return self.tuning.ended_event(name)
        return self.jobs.ended_event(kind, name)

    def wait(self, kind: str, name: str, timeout: float = 600.0) -> dict:
        """Block until a job is terminal and return its Describe* answer (tests, benchmarks)."""
        if kind == "transform":
            return self.transform.wait(name, timeout)
        if kind == "tuning":
            return self.tuning.wait(name, timeout)
        return self.jobs.wait(kind, name, timeout)

    def close(self) -> None:
        """Stop what runs in the background (searches first: they start training jobs)."""
        self.tuning.close()
        self.transform.close()
        self.jobs.close()
        self.hosting.close()
