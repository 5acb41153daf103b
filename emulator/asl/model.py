"""The typed model of a definition: one frozen dataclass per ASL state Type.

Each state keeps its name and JSON pointer; every path, payload template, intrinsic call, JSONata
expression and choice rule is already compiled. parse.py builds these; the interpreter only reads
them. A state's ``query_language`` says which of its fields are in use: the JSONPath ones
(InputPath, Parameters, ResultSelector, ResultPath, OutputPath, *Path) or the JSONata ones
(``parameters`` then holds Arguments, ``output`` holds Output, and the ``*_path`` fields hold
``{% %}`` expressions of TimeoutSeconds, Seconds, MaxConcurrency...).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from emulator.asl import choice as rules
from emulator.asl.dataflow import Assign
from emulator.asl.jsonpath import JsonPath
from emulator.asl.paths import ROOT, Template
from emulator.asl.query import Expression, QueryTemplate

MISSING: Any = object()  # Pass.result when the state has no Result field
JSONPATH = "JSONPath"
JSONATA = "JSONata"

Payload = Template | QueryTemplate  # Parameters (JSONPath) or Arguments/ItemSelector (JSONata)
Dynamic = JsonPath | Expression  # a *Path field (JSONPath) or a {% %} value (JSONata)


@dataclass(frozen=True)
class Retrier:
    error_equals: tuple[str, ...]
    interval_seconds: float = 1.0
    max_attempts: int = 3
    backoff_rate: float = 2.0
    max_delay_seconds: float | None = None
    jitter_strategy: str = "NONE"
    pointer: str = ""


@dataclass(frozen=True)
class Catcher:
    error_equals: tuple[str, ...]
    next: str
    result_path: JsonPath | None = ROOT
    pointer: str = ""
    assign: Assign | None = None
    output: QueryTemplate | None = None  # JSONata: the state output when this catcher handles the error


@dataclass(frozen=True, kw_only=True)
class State:
    name: str
    pointer: str
    comment: str | None = None
    next: str | None = None
    end: bool = False
    input_path: JsonPath | None = ROOT
    output_path: JsonPath | None = ROOT
    query_language: str = JSONPATH
    assign: Assign | None = None
    output: QueryTemplate | None = None  # JSONata Output; None means the default output

    @property
    def type(self) -> str:
        return type(self).__name__

    @property
    def jsonata(self) -> bool:
        return self.query_language == JSONATA


@dataclass(frozen=True, kw_only=True)
class Pass(State):
    parameters: Payload | None = None
    result: Any = MISSING
    result_path: JsonPath | None = ROOT

    @property
    def has_result(self) -> bool:
        return self.result is not MISSING


@dataclass(frozen=True, kw_only=True)
class Task(State):
    resource: str
    parameters: Payload | None = None
    result_selector: Template | None = None
    result_path: JsonPath | None = ROOT
    retry: tuple[Retrier, ...] = ()
    catch: tuple[Catcher, ...] = ()
    timeout_seconds: float | None = None
    timeout_seconds_path: Dynamic | None = None
    heartbeat_seconds: float | None = None
    heartbeat_seconds_path: Dynamic | None = None


@dataclass(frozen=True, kw_only=True)
class Choice(State):
    choices: tuple[rules.TopLevelRule, ...]
    default: str | None = None


@dataclass(frozen=True, kw_only=True)
class Wait(State):
    seconds: float | None = None
    timestamp: str | None = None
    seconds_path: Dynamic | None = None
    timestamp_path: Dynamic | None = None


@dataclass(frozen=True, kw_only=True)
class Succeed(State):
    pass


@dataclass(frozen=True, kw_only=True)
class Fail(State):
    error: str | None = None
    cause: str | None = None
    error_path: Any = None  # JsonPath, an intrinsic Template, or a JSONata Expression
    cause_path: Any = None


@dataclass(frozen=True, kw_only=True)
class Parallel(State):
    branches: tuple[StateMachine, ...]
    parameters: Payload | None = None
    result_selector: Template | None = None
    result_path: JsonPath | None = ROOT
    retry: tuple[Retrier, ...] = ()
    catch: tuple[Catcher, ...] = ()


@dataclass(frozen=True)
class ItemReader:
    """Where a Distributed Map reads its items: an S3 object (CSV, JSON, JSONL, an S3 inventory
    manifest) through ``s3:getObject``, or a bucket listing through ``s3:listObjectsV2``."""

    resource: str  # the Resource ARN as written
    action: str  # "getObject" or "listObjectsV2"
    parameters: Payload | None  # Parameters (JSONPath) or Arguments (JSONata): Bucket, Key / Prefix
    input_type: str | None = None  # CSV | JSON | JSONL | MANIFEST (ReaderConfig.InputType)
    csv_header_location: str = "FIRST_ROW"
    csv_headers: tuple[str, ...] = ()
    csv_delimiter: str = "COMMA"
    max_items: int | None = None
    max_items_path: Dynamic | None = None
    pointer: str = ""


@dataclass(frozen=True)
class ItemBatcher:
    max_items_per_batch: int | None = None
    max_items_per_batch_path: Dynamic | None = None
    max_input_bytes_per_batch: int | None = None
    max_input_bytes_per_batch_path: Dynamic | None = None
    batch_input: Payload | None = None  # a payload template (JSONPath) or a JSONata template
    pointer: str = ""


@dataclass(frozen=True)
class ResultWriter:
    resource: str | None  # arn:aws:states:::s3:putObject, or None for WriterConfig alone
    parameters: Payload | None  # Bucket, Prefix
    transformation: str | None = None  # NONE | COMPACT | FLATTEN (None: NONE with S3, COMPACT without)
    output_type: str = "JSON"  # JSON | JSONL
    pointer: str = ""


@dataclass(frozen=True)
class Distributed:
    """What makes a Map distributed (ProcessorConfig Mode DISTRIBUTED): each item or batch runs as a
    child execution of the item processor, in a Map Run."""

    execution_type: str = "STANDARD"  # STANDARD | EXPRESS
    item_reader: ItemReader | None = None
    item_batcher: ItemBatcher | None = None
    result_writer: ResultWriter | None = None
    label: str | None = None


@dataclass(frozen=True, kw_only=True)
class Map(State):
    processor: StateMachine
    items_path: JsonPath | None = ROOT
    items: QueryTemplate | None = None  # JSONata Items: an array or an expression (None: the input)
    item_selector: Payload | None = None  # ItemSelector, or the legacy Parameters
    max_concurrency: int = 0
    max_concurrency_path: Dynamic | None = None
    tolerated_failure_percentage: float | None = None
    tolerated_failure_percentage_path: Dynamic | None = None
    tolerated_failure_count: int | None = None
    tolerated_failure_count_path: Dynamic | None = None
    result_selector: Template | None = None
    result_path: JsonPath | None = ROOT
    retry: tuple[Retrier, ...] = ()
    catch: tuple[Catcher, ...] = ()
    distributed: Distributed | None = None  # None: an inline Map

    @property
    def has_tolerance(self) -> bool:
        return any(
            v is not None
            for v in (
                self.tolerated_failure_percentage,
                self.tolerated_failure_percentage_path,
                self.tolerated_failure_count,
                self.tolerated_failure_count_path,
            )
        )


STATE_CLASSES: tuple[type[State], ...] = (Pass, Task, Choice, Wait, Succeed, Fail, Parallel, Map)


@dataclass(frozen=True)
class StateMachine:
    """A top-level definition or one branch / item processor: StartAt plus its States."""

    start_at: str
    states: dict[str, State] = field(hash=False)
    pointer: str = ""
    comment: str | None = None
    timeout_seconds: float | None = None
    has_task: bool = False  # some state (here or nested) is a Task: worth running branches in threads
    has_wait: bool = False
