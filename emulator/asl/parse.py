"""Parse and check a States Language definition into typed, frozen state classes.

Every state class is named after its ASL ``Type`` and carries its name and JSON pointer. All paths,
payload templates, intrinsic calls and choice rules are compiled here, once; the interpreter never
reads the raw dicts. Checks follow what AWS's validation rejects (unknown targets, Next and End
together, Retry on a Pass, States.ALL not last, unreachable states, bad JSONPath, ...), each raised
as DefinitionError(pointer, message).
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from emulator.asl import choice as rules
from emulator.asl import query
from emulator.asl.dataflow import compile_assign
from emulator.asl.errors import UNSUPPORTED_FEATURE, DefinitionError
from emulator.asl.fields import (
    catchers,
    check_reachable,
    check_transitions,
    check_unique_names,
    escape,
    exclusive,
    exclusive_number,
    is_int,
    opt_path,
    opt_template,
    payload,
    positive_int,
    query_language,
    reject_unknown,
    req_path,
    retriers,
)
from emulator.asl.items import CSV_DELIMITERS
from emulator.asl.model import (
    JSONATA,
    JSONPATH,
    MISSING,
    STATE_CLASSES,
    Catcher,
    Choice,
    Distributed,
    Fail,
    ItemBatcher,
    ItemReader,
    Map,
    Parallel,
    Pass,
    ResultWriter,
    Retrier,
    State,
    StateMachine,
    Succeed,
    Task,
    Wait,
)
from emulator.asl.paths import ROOT, compile_template

__all__ = [
    "STATE_CLASSES",
    "Catcher",
    "Choice",
    "Fail",
    "Map",
    "Parallel",
    "Pass",
    "Retrier",
    "State",
    "StateMachine",
    "Succeed",
    "Task",
    "Wait",
    "parse_definition",
]

MAX_STATE_NAME = 80


# -- parsing ---------------------------------------------------------------------------------------

_COMMON = {"Type", "Comment", "QueryLanguage"}
_FLOW = {"Next", "End"}
_IO = {"InputPath", "OutputPath"}
_FIELDS: dict[str, set[str]] = {
    "Pass": _COMMON | _FLOW | _IO | {"Parameters", "Result", "ResultPath", "Assign", "Output"},
    "Task": _COMMON | _FLOW | _IO | {
        "Resource", "Parameters", "ResultSelector", "ResultPath", "Retry", "Catch",
        "TimeoutSeconds", "TimeoutSecondsPath", "HeartbeatSeconds", "HeartbeatSecondsPath",
        "Assign", "Arguments", "Output",
    },
    "Choice": _COMMON | _IO | {"Choices", "Default", "Assign", "Output"},
    "Wait": _COMMON | _FLOW | _IO | {"Seconds", "Timestamp", "SecondsPath", "TimestampPath", "Assign", "Output"},
    "Succeed": _COMMON | _IO | {"Output"},
    "Fail": _COMMON | {"Error", "Cause", "ErrorPath", "CausePath"},
    "Parallel": _COMMON | _FLOW | _IO | {
        "Branches", "Parameters", "ResultSelector", "ResultPath", "Retry", "Catch", "Assign", "Arguments", "Output",
    },
    "Map": _COMMON | _FLOW | _IO | {
        "ItemsPath", "ItemSelector", "Parameters", "Iterator", "ItemProcessor", "MaxConcurrency",
        "MaxConcurrencyPath", "ToleratedFailurePercentage", "ToleratedFailurePercentagePath",
        "ToleratedFailureCount", "ToleratedFailureCountPath", "ResultSelector", "ResultPath", "Retry", "Catch",
        "Assign", "Items", "Output", "ItemReader", "ItemBatcher", "ResultWriter", "Label",
    },
}
# Fields that exist in AWS but that the emulator does not run: say so instead of ignoring them.
_UNSUPPORTED = {
    "Credentials": "Credentials (cross-account task credentials)",
}
# JSONPath-only fields and what a JSONata state uses instead (AWS: "Transforming data with JSONata").
_JSONPATH_ONLY = {
    "InputPath": "Arguments with $states.input",
    "Parameters": "Arguments (ItemSelector in a Map)",
    "ResultSelector": "Output with $states.result",
    "ResultPath": "Assign or Output",
    "OutputPath": "Output",
    "Result": "Output",
    "ItemsPath": "Items",
    "TimeoutSecondsPath": "TimeoutSeconds with a {% %} expression",
    "HeartbeatSecondsPath": "HeartbeatSeconds with a {% %} expression",
    "SecondsPath": "Seconds with a {% %} expression",
    "TimestampPath": "Timestamp with a {% %} expression",
    "ErrorPath": "Error with a {% %} expression",
    "CausePath": "Cause with a {% %} expression",
    "MaxConcurrencyPath": "MaxConcurrency with a {% %} expression",
    "ToleratedFailureCountPath": "ToleratedFailureCount with a {% %} expression",
    "ToleratedFailurePercentagePath": "ToleratedFailurePercentage with a {% %} expression",
    "Iterator": "ItemProcessor",
}
_JSONATA_ONLY = {"Arguments", "Output", "Items"}
_TOP_LEVEL = {"StartAt", "States", "Comment", "Version", "TimeoutSeconds", "QueryLanguage"}
_BRANCH = {"StartAt", "States", "Comment"}


def parse_definition(definition: dict | str) -> StateMachine:
    """Parse and check a whole definition; raises DefinitionError with a JSON pointer."""
    if isinstance(definition, (str, bytes)):
        try:
            definition = json.loads(definition)
        except json.JSONDecodeError as exc:
            raise DefinitionError("", f"the definition is not valid JSON: {exc}", code="INVALID_JSON_DESCRIPTION") from None
    if not isinstance(definition, dict):
        raise DefinitionError("", "the definition must be a JSON object with StartAt and States")
    language = query_language(definition, "", JSONPATH, "the state machine")
    if "Version" in definition and definition["Version"] != "1.0":
        raise DefinitionError("/Version", f"only version '1.0' exists, got {definition['Version']!r}")
    machine = _parse_machine(definition, "", _TOP_LEVEL, language)
    check_unique_names(machine)
    return machine


def parse_state(name: str, body: Any, language: str = JSONPATH) -> State:
    """One state on its own (TestState without stateName): its transitions are not checked."""
    return _parse_state(name, body, f"/States/{escape(name)}", language)


def _parse_machine(raw: dict, pointer: str, allowed: set[str], language: str) -> StateMachine:
    reject_unknown(raw, allowed, pointer, "a state machine" if not pointer else "a branch")
    if "StartAt" not in raw:
        raise DefinitionError(pointer or "/", "StartAt is missing: name the first state to run")
    start_at = raw["StartAt"]
    if not isinstance(start_at, str):
        raise DefinitionError(f"{pointer}/StartAt", "must be a state name string")
    raw_states = raw.get("States")
    if not isinstance(raw_states, dict) or not raw_states:
        raise DefinitionError(f"{pointer}/States", "States must be a non-empty JSON object of named states")
    states: dict[str, State] = {}
    for name, body in raw_states.items():
        state_pointer = f"{pointer}/States/{escape(name)}"
        if not name or len(name) > MAX_STATE_NAME:
            raise DefinitionError(state_pointer, f"state names must be 1 to {MAX_STATE_NAME} characters")
        states[name] = _parse_state(name, body, state_pointer, language)
    if start_at not in states:
        raise DefinitionError(f"{pointer}/StartAt", f"StartAt names {start_at!r}, which is not in States", code="MISSING_TRANSITION_TARGET")
    check_transitions(states, pointer)
    check_reachable(start_at, states, pointer)
    timeout = None
    if "TimeoutSeconds" in raw:
        timeout = positive_int(raw["TimeoutSeconds"], f"{pointer}/TimeoutSeconds")
    has_task = any(_has(s, Task) for s in states.values())
    has_wait = any(_has(s, Wait) for s in states.values())
    return StateMachine(
        start_at=start_at,
        states=states,
        pointer=pointer,
        comment=raw.get("Comment"),
        timeout_seconds=timeout,
        has_task=has_task,
        has_wait=has_wait,
    )


def _has(state: State, kind: type) -> bool:
    if isinstance(state, kind):
        return True
    if isinstance(state, Parallel):
        return any(branch.has_task if kind is Task else branch.has_wait for branch in state.branches)
    if isinstance(state, Map):
        return state.processor.has_task if kind is Task else state.processor.has_wait
    return False


def _parse_state(name: str, raw: Any, pointer: str, machine_language: str) -> State:
    if not isinstance(raw, dict):
        raise DefinitionError(pointer, "a state must be a JSON object with a Type")
    kind = raw.get("Type")
    if kind not in _FIELDS:
        raise DefinitionError(f"{pointer}/Type", f"unknown state Type {kind!r}; expected one of {sorted(_FIELDS)}")
    language = query_language(raw, pointer, machine_language, f"state {name!r}")
    jsonata = language == JSONATA
    for key in raw:
        if key in _UNSUPPORTED:
            raise DefinitionError(
                f"{pointer}/{key}",
                f"state {name!r} uses {_UNSUPPORTED[key]}, which the emulator does not support",
                code=UNSUPPORTED_FEATURE,
            )
        if key in ("Next", "End") and kind in ("Choice", "Succeed", "Fail"):
            hint = "use Choices and Default" if kind == "Choice" else "it ends the execution or branch"
            raise DefinitionError(f"{pointer}/{key}", f"a {kind} state cannot have {key}; {hint}")
        if key in ("Retry", "Catch") and key not in _FIELDS[kind]:
            raise DefinitionError(
                f"{pointer}/{key}", f"a {kind} state cannot have {key}; only Task, Parallel and Map states can"
            )
        if jsonata and key in _JSONPATH_ONLY and key in _FIELDS[kind]:
            raise DefinitionError(
                f"{pointer}/{key}",
                f"state {name!r} uses QueryLanguage JSONata, where the JSONPath field {key} is not allowed; "
                f"use {_JSONPATH_ONLY[key]}",
            )
        if not jsonata and key in _JSONATA_ONLY and key in _FIELDS[kind]:
            raise DefinitionError(
                f"{pointer}/{key}",
                f"{key} is a JSONata field but state {name!r} uses QueryLanguage JSONPath; "
                "set \"QueryLanguage\": \"JSONata\" on the state or the state machine",
            )
    reject_unknown(raw, _FIELDS[kind], pointer, f"a {kind} state")
    common: dict[str, Any] = {
        "name": name,
        "pointer": pointer,
        "comment": raw.get("Comment"),
        "input_path": ROOT if jsonata else opt_path(raw, "InputPath", pointer),
        "output_path": ROOT if jsonata else opt_path(raw, "OutputPath", pointer),
        "query_language": language,
    }
    if "Assign" in raw:
        common["assign"] = compile_assign(raw["Assign"], f"{pointer}/Assign", jsonata)
    if "Output" in raw:
        common["output"] = query.compile_template(raw["Output"], f"{pointer}/Output")
    if "Next" in _FIELDS[kind]:
        common.update(_flow(raw, pointer, kind))
    return _BUILDERS[kind](raw, pointer, common, machine_language)


def _flow(raw: dict, pointer: str, kind: str) -> dict:
    has_next, end = "Next" in raw, raw.get("End", False)
    if "End" in raw and not isinstance(end, bool):
        raise DefinitionError(f"{pointer}/End", "must be true or false")
    if has_next and end:
        raise DefinitionError(pointer, "a state cannot have both Next and End: true")
    if not has_next and not end:
        raise DefinitionError(pointer, f"a {kind} state needs Next (the state to go to) or End: true")
    if has_next and not isinstance(raw["Next"], str):
        raise DefinitionError(f"{pointer}/Next", "must be a state name string")
    return {"next": raw.get("Next"), "end": bool(end)}


def _build_pass(raw: dict, pointer: str, common: dict, machine: str) -> Pass:
    return Pass(
        **common,
        parameters=None if common["query_language"] == JSONATA else opt_template(raw, "Parameters", pointer),
        result=raw.get("Result", MISSING),
        result_path=opt_path(raw, "ResultPath", pointer, reference=True),
    )


def _build_task(raw: dict, pointer: str, common: dict, machine: str) -> Task:
    resource = raw.get("Resource")
    if not isinstance(resource, str) or not resource.startswith("arn:"):
        raise DefinitionError(f"{pointer}/Resource", f"a Task state needs a Resource ARN string, got {resource!r}")
    timeout = exclusive(raw, "TimeoutSeconds", pointer)
    heartbeat = exclusive(raw, "HeartbeatSeconds", pointer)
    if timeout[0] is not None and heartbeat[0] is not None and heartbeat[0] >= timeout[0]:
        raise DefinitionError(f"{pointer}/HeartbeatSeconds", "HeartbeatSeconds must be smaller than TimeoutSeconds")
    return Task(
        **common,
        resource=resource,
        parameters=payload(raw, pointer, common),
        result_selector=opt_template(raw, "ResultSelector", pointer),
        result_path=opt_path(raw, "ResultPath", pointer, reference=True),
        retry=retriers(raw, pointer),
        catch=catchers(raw, pointer, common["query_language"]),
        timeout_seconds=timeout[0],
        timeout_seconds_path=timeout[1],
        heartbeat_seconds=heartbeat[0],
        heartbeat_seconds_path=heartbeat[1],
    )


def _build_choice(raw: dict, pointer: str, common: dict, machine: str) -> Choice:
    items = raw.get("Choices")
    if not isinstance(items, list) or not items:
        raise DefinitionError(f"{pointer}/Choices", "a Choice state needs a non-empty Choices array")
    default = raw.get("Default")
    if default is not None and not isinstance(default, str):
        raise DefinitionError(f"{pointer}/Default", "must be a state name string")
    jsonata = common["query_language"] == JSONATA
    choices = []
    for i, item in enumerate(items):
        where = f"{pointer}/Choices/{i}"
        choice = rules.compile_choice(item, where, jsonata)
        if isinstance(item, dict) and "Assign" in item:
            choice = dataclasses.replace(choice, assign=compile_assign(item["Assign"], f"{where}/Assign", jsonata))
        choices.append(choice)
    return Choice(**common, choices=tuple(choices), default=default)


def _build_wait(raw: dict, pointer: str, common: dict, machine: str) -> Wait:
    given = [k for k in ("Seconds", "Timestamp", "SecondsPath", "TimestampPath") if k in raw]
    if len(given) != 1:
        raise DefinitionError(
            pointer, f"a Wait state needs exactly one of Seconds, Timestamp, SecondsPath, TimestampPath; found {given or 'none'}"
        )
    key = given[0]
    where = f"{pointer}/{key}"
    if query.is_expression(raw[key]):  # JSONata: Seconds or Timestamp computed per execution
        expression = query.compile_expression(raw[key], where)
        return Wait(**common, **{"seconds_path" if key == "Seconds" else "timestamp_path": expression})
    if key == "Seconds":
        seconds = raw[key]
        if not is_int(seconds) or seconds < 0:
            raise DefinitionError(where, "must be a non-negative integer")
        return Wait(**common, seconds=seconds)
    if key == "Timestamp":
        if rules.parse_timestamp(raw[key]) is None:
            raise DefinitionError(where, f"{raw[key]!r} is not an RFC 3339 timestamp like 2016-03-14T01:59:00Z")
        return Wait(**common, timestamp=raw[key])
    path = req_path(raw[key], where, reference=True)
    return Wait(**common, **{"seconds_path" if key == "SecondsPath" else "timestamp_path": path})


def _build_succeed(raw: dict, pointer: str, common: dict, machine: str) -> Succeed:
    return Succeed(**common)


def _build_fail(raw: dict, pointer: str, common: dict, machine: str) -> Fail:
    values: dict[str, Any] = {}
    for key in ("Error", "Cause"):
        if key in raw and key + "Path" in raw:
            raise DefinitionError(f"{pointer}/{key}Path", f"a Fail state cannot have both {key} and {key}Path")
        if key in raw and query.is_expression(raw[key]):
            values[key.lower() + "_path"] = query.compile_expression(raw[key], f"{pointer}/{key}")
        elif key in raw:
            if not isinstance(raw[key], str):
                raise DefinitionError(f"{pointer}/{key}", "must be a string")
            values[key.lower()] = raw[key]
        if key + "Path" in raw:
            values[key.lower() + "_path"] = _fail_path(raw[key + "Path"], f"{pointer}/{key}Path")
    del common["input_path"], common["output_path"]
    return Fail(**common, **values)


def _fail_path(value: Any, pointer: str) -> Any:
    """ErrorPath/CausePath: a reference path, a context path or an intrinsic function."""
    if isinstance(value, str) and value.startswith("States."):
        return compile_template({"v.$": value}, pointer)
    return req_path(value, pointer)


def _build_parallel(raw: dict, pointer: str, common: dict, machine: str) -> Parallel:
    branches = raw.get("Branches")
    if not isinstance(branches, list) or not branches:
        raise DefinitionError(f"{pointer}/Branches", "a Parallel state needs a non-empty Branches array")
    parsed = []
    for i, branch in enumerate(branches):
        if not isinstance(branch, dict):
            raise DefinitionError(f"{pointer}/Branches/{i}", "a branch must be a JSON object with StartAt and States")
        parsed.append(_parse_machine(branch, f"{pointer}/Branches/{i}", _BRANCH, machine))
    return Parallel(
        **common,
        branches=tuple(parsed),
        parameters=payload(raw, pointer, common),
        result_selector=opt_template(raw, "ResultSelector", pointer),
        result_path=opt_path(raw, "ResultPath", pointer, reference=True),
        retry=retriers(raw, pointer),
        catch=catchers(raw, pointer, common["query_language"]),
    )


def _build_map(raw: dict, pointer: str, common: dict, machine: str) -> Map:
    if ("Iterator" in raw) == ("ItemProcessor" in raw):
        raise DefinitionError(pointer, "a Map state needs exactly one of ItemProcessor or (legacy) Iterator")
    if "ItemSelector" in raw and "Parameters" in raw:
        raise DefinitionError(pointer, "a Map state cannot have both ItemSelector and (legacy) Parameters")
    if "Iterator" in raw:
        key, body, allowed = "Iterator", raw["Iterator"], _BRANCH
    else:
        key, body, allowed = "ItemProcessor", raw["ItemProcessor"], _BRANCH | {"ProcessorConfig"}
    if not isinstance(body, dict):
        raise DefinitionError(f"{pointer}/{key}", "must be a JSON object with StartAt and States")
    mode, execution_type = "INLINE", None
    if "ProcessorConfig" in body:
        mode, execution_type = _check_processor_config(body["ProcessorConfig"], f"{pointer}/{key}/ProcessorConfig")
    # A Distributed Map's item processor is a state machine of its own (its child executions), so
    # it may set its own QueryLanguage; an inline one inherits the Map's.
    processor_language = machine
    if mode == "DISTRIBUTED" and isinstance(body.get("QueryLanguage"), str):
        processor_language = body["QueryLanguage"]
    processor = _parse_machine(body, f"{pointer}/{key}", allowed | ({"QueryLanguage"} if mode == "DISTRIBUTED" else set()),
                               processor_language if mode == "DISTRIBUTED" else machine)
    selector_key = "ItemSelector" if "ItemSelector" in raw else "Parameters"
    jsonata = common["query_language"] == JSONATA
    item_selector = (
        query.compile_template(raw["ItemSelector"], f"{pointer}/ItemSelector") if jsonata and "ItemSelector" in raw
        else None if jsonata else opt_template(raw, selector_key, pointer)
    )
    items = None
    if "Items" in raw:
        if not (isinstance(raw["Items"], list) or query.is_expression(raw["Items"])):
            raise DefinitionError(f"{pointer}/Items", "must be a JSON array or a JSONata expression '{% ... %}'")
        items = query.compile_template(raw["Items"], f"{pointer}/Items")
    concurrency = exclusive_number(raw, "MaxConcurrency", pointer, integer=True, low=0, high=None)
    percentage = exclusive_number(raw, "ToleratedFailurePercentage", pointer, integer=False, low=0, high=100)
    count = exclusive_number(raw, "ToleratedFailureCount", pointer, integer=True, low=0, high=None)
    return Map(
        **common,
        processor=processor,
        items_path=ROOT if jsonata else opt_path(raw, "ItemsPath", pointer),
        items=items,
        item_selector=item_selector,
        max_concurrency=concurrency[0] or 0,
        max_concurrency_path=concurrency[1],
        tolerated_failure_percentage=percentage[0],
        tolerated_failure_percentage_path=percentage[1],
        tolerated_failure_count=count[0],
        tolerated_failure_count_path=count[1],
        result_selector=opt_template(raw, "ResultSelector", pointer),
        result_path=opt_path(raw, "ResultPath", pointer, reference=True),
        retry=retriers(raw, pointer),
        catch=catchers(raw, pointer, common["query_language"]),
        distributed=_distributed(raw, pointer, common, mode, execution_type),
    )


def _check_processor_config(config: Any, pointer: str) -> tuple[str, str | None]:
    """(Mode, ExecutionType) of an ItemProcessor's ProcessorConfig."""
    if not isinstance(config, dict):
        raise DefinitionError(pointer, "must be a JSON object")
    reject_unknown(config, {"Mode", "ExecutionType"}, pointer, "ProcessorConfig")
    mode = config.get("Mode", "INLINE")
    if mode not in ("INLINE", "DISTRIBUTED"):
        raise DefinitionError(f"{pointer}/Mode", f"Mode must be INLINE or DISTRIBUTED, got {mode!r}")
    if "ExecutionType" in config and mode != "DISTRIBUTED":
        raise DefinitionError(f"{pointer}/ExecutionType", "ExecutionType is only valid with Mode DISTRIBUTED")
    execution_type = config.get("ExecutionType")
    if mode == "DISTRIBUTED" and execution_type not in ("STANDARD", "EXPRESS"):
        raise DefinitionError(f"{pointer}/ExecutionType",
                              f"a Distributed Map needs ExecutionType STANDARD or EXPRESS for its child executions, got {execution_type!r}")
    return mode, execution_type


# AWS "Map state in Distributed mode": a Label is at most 40 characters, none of them whitespace,
# brackets, wildcards or these specials (the name rules of an execution).
_LABEL_BAD = set(' \t\n<>{}[]?*"#%\\^|~`$&,;:/')
_DISTRIBUTED_ONLY = ("ItemReader", "ItemBatcher", "ResultWriter", "Label")


def _distributed(raw: dict, pointer: str, common: dict, mode: str, execution_type: str | None) -> Distributed | None:
    if mode != "DISTRIBUTED":
        for key in _DISTRIBUTED_ONLY:
            if key in raw:
                raise DefinitionError(f"{pointer}/{key}", f"{key} is only valid in a Distributed Map: set "
                                      "ItemProcessor.ProcessorConfig to {\"Mode\": \"DISTRIBUTED\", \"ExecutionType\": \"STANDARD\"}")
        return None
    jsonata = common["query_language"] == JSONATA
    for key in ("ItemsPath", "Items"):
        if "ItemReader" in raw and key in raw:
            raise DefinitionError(f"{pointer}/{key}", f"a Distributed Map reads its items with ItemReader or takes them "
                                  f"from {key}, not both")
    label = raw.get("Label")
    if label is not None and (not isinstance(label, str) or not 1 <= len(label) <= 40 or _LABEL_BAD & set(label)
                              or any(ord(c) < 32 or 127 <= ord(c) <= 159 for c in label)):
        raise DefinitionError(f"{pointer}/Label", f"Label must be 1 to 40 characters without whitespace, brackets, "
                              f"wildcards or special characters, got {label!r}")
    return Distributed(
        execution_type=execution_type or "STANDARD",
        item_reader=_item_reader(raw["ItemReader"], f"{pointer}/ItemReader", jsonata) if "ItemReader" in raw else None,
        item_batcher=_item_batcher(raw["ItemBatcher"], f"{pointer}/ItemBatcher", jsonata) if "ItemBatcher" in raw else None,
        result_writer=_result_writer(raw["ResultWriter"], f"{pointer}/ResultWriter", jsonata) if "ResultWriter" in raw else None,
        label=label,
    )


def _resource_action(raw: dict, pointer: str, allowed: tuple[str, ...], what: str) -> str:
    resource = raw.get("Resource")
    prefix = resource.split(":states:::s3:", 1) if isinstance(resource, str) else []
    if len(prefix) != 2 or not prefix[0].startswith("arn:") or prefix[1] not in allowed:
        options = " or ".join(f"arn:aws:states:::s3:{a}" for a in allowed)
        raise DefinitionError(f"{pointer}/Resource", f"the {what} Resource must be {options}, got {resource!r}")
    return prefix[1]


def _block_payload(raw: dict, pointer: str, jsonata: bool, key_hint: str) -> Any:
    """Parameters (JSONPath) or Arguments (JSONata) of an ItemReader or ResultWriter."""
    if jsonata and "Parameters" in raw:
        raise DefinitionError(f"{pointer}/Parameters", f"the {key_hint} of a JSONata state takes Arguments, not Parameters")
    if not jsonata and "Arguments" in raw:
        raise DefinitionError(f"{pointer}/Arguments", f"the {key_hint} of a JSONPath state takes Parameters, not Arguments")
    if jsonata:
        return query.compile_template(raw["Arguments"], f"{pointer}/Arguments") if "Arguments" in raw else None
    return opt_template(raw, "Parameters", pointer)


def _item_reader(raw: Any, pointer: str, jsonata: bool) -> ItemReader:
    if not isinstance(raw, dict):
        raise DefinitionError(pointer, "ItemReader must be a JSON object with Resource and ReaderConfig")
    reject_unknown(raw, {"Resource", "Parameters", "Arguments", "ReaderConfig"}, pointer, "an ItemReader")
    action = _resource_action(raw, pointer, ("getObject", "listObjectsV2"), "ItemReader")
    config = raw.get("ReaderConfig", {})
    where = f"{pointer}/ReaderConfig"
    if not isinstance(config, dict):
        raise DefinitionError(where, "ReaderConfig must be a JSON object")
    reject_unknown(config, {"InputType", "CSVHeaderLocation", "CSVHeaders", "CSVDelimiter", "MaxItems",
                             "MaxItemsPath", "ManifestType"}, where, "a ReaderConfig")
    input_type = config.get("InputType")
    if action == "getObject" and input_type not in ("CSV", "JSON", "JSONL", "MANIFEST"):
        hint = " (PARQUET is not read by the emulator)" if input_type == "PARQUET" else ""
        raise DefinitionError(f"{where}/InputType", f"an s3:getObject ItemReader needs InputType CSV, JSON, JSONL or "
                              f"MANIFEST, got {input_type!r}{hint}", code=UNSUPPORTED_FEATURE if hint else "SCHEMA_VALIDATION_FAILED")
    if action == "listObjectsV2" and input_type is not None:
        raise DefinitionError(f"{where}/InputType", "an s3:listObjectsV2 ItemReader lists objects: it takes no InputType")
    if config.get("ManifestType", "S3_INVENTORY") != "S3_INVENTORY":
        raise DefinitionError(f"{where}/ManifestType", f"the emulator reads S3 inventory manifests only, got "
                              f"{config['ManifestType']!r}", code=UNSUPPORTED_FEATURE)
    location = config.get("CSVHeaderLocation", "FIRST_ROW")
    if location not in ("FIRST_ROW", "GIVEN"):
        raise DefinitionError(f"{where}/CSVHeaderLocation", f"must be FIRST_ROW or GIVEN, got {location!r}")
    headers = config.get("CSVHeaders")
    if location == "GIVEN":
        if not isinstance(headers, list) or not headers or not all(isinstance(h, str) for h in headers):
            raise DefinitionError(f"{where}/CSVHeaders", "CSVHeaderLocation GIVEN needs CSVHeaders: a non-empty array of column names")
    elif headers is not None:
        raise DefinitionError(f"{where}/CSVHeaders", "CSVHeaders are only used with CSVHeaderLocation GIVEN")
    if (location != "FIRST_ROW" or headers is not None or "CSVDelimiter" in config) and input_type != "CSV":
        raise DefinitionError(where, "CSVHeaderLocation, CSVHeaders and CSVDelimiter apply to InputType CSV only")
    delimiter = config.get("CSVDelimiter", "COMMA")
    if delimiter not in CSV_DELIMITERS:
        raise DefinitionError(f"{where}/CSVDelimiter", f"must be one of {sorted(CSV_DELIMITERS)}, got {delimiter!r}")
    if jsonata and "MaxItemsPath" in config:
        raise DefinitionError(f"{where}/MaxItemsPath", "MaxItemsPath is a JSONPath field; a JSONata state sets MaxItems to a {% %} expression")
    max_items = exclusive_number(config, "MaxItems", where, integer=True, low=0, high=100_000_000)
    return ItemReader(resource=raw["Resource"], action=action, parameters=_block_payload(raw, pointer, jsonata, "ItemReader"),
                      input_type=input_type, csv_header_location=location, csv_headers=tuple(headers or ()),
                      csv_delimiter=delimiter, max_items=max_items[0], max_items_path=max_items[1], pointer=pointer)


def _item_batcher(raw: Any, pointer: str, jsonata: bool) -> ItemBatcher:
    if not isinstance(raw, dict):
        raise DefinitionError(pointer, "ItemBatcher must be a JSON object")
    reject_unknown(raw, {"MaxItemsPerBatch", "MaxItemsPerBatchPath", "MaxInputBytesPerBatch",
                          "MaxInputBytesPerBatchPath", "BatchInput"}, pointer, "an ItemBatcher")
    for key in ("MaxItemsPerBatchPath", "MaxInputBytesPerBatchPath"):
        if jsonata and key in raw:
            raise DefinitionError(f"{pointer}/{key}", f"{key} is a JSONPath field; a JSONata state sets "
                                  f"{key.removesuffix('Path')} to a {{% %}} expression")
    count = exclusive_number(raw, "MaxItemsPerBatch", pointer, integer=True, low=1, high=None)
    size = exclusive_number(raw, "MaxInputBytesPerBatch", pointer, integer=True, low=1, high=262_144)
    if count == (None, None) and size == (None, None):
        raise DefinitionError(pointer, "an ItemBatcher needs MaxItemsPerBatch or MaxInputBytesPerBatch (or both)")
    batch_input = None
    if "BatchInput" in raw:
        if not isinstance(raw["BatchInput"], dict) and not (jsonata and query.is_expression(raw["BatchInput"])):
            raise DefinitionError(f"{pointer}/BatchInput", "BatchInput must be a JSON object")
        batch_input = (query.compile_template(raw["BatchInput"], f"{pointer}/BatchInput") if jsonata
                       else compile_template(raw["BatchInput"], f"{pointer}/BatchInput"))
    return ItemBatcher(max_items_per_batch=count[0], max_items_per_batch_path=count[1], max_input_bytes_per_batch=size[0],
                       max_input_bytes_per_batch_path=size[1], batch_input=batch_input, pointer=pointer)


def _result_writer(raw: Any, pointer: str, jsonata: bool) -> ResultWriter:
    if not isinstance(raw, dict) or not raw:
        raise DefinitionError(pointer, "ResultWriter must be a JSON object with Resource and Parameters/Arguments, WriterConfig, or both")
    reject_unknown(raw, {"Resource", "Parameters", "Arguments", "WriterConfig"}, pointer, "a ResultWriter")
    resource = None
    if "Resource" in raw:
        _resource_action(raw, pointer, ("putObject",), "ResultWriter")
        resource = raw["Resource"]
        if "Parameters" not in raw and "Arguments" not in raw:
            raise DefinitionError(pointer, f"a ResultWriter with a Resource needs {'Arguments' if jsonata else 'Parameters'} naming the Bucket (and Prefix)")
    elif "Parameters" in raw or "Arguments" in raw:
        raise DefinitionError(f"{pointer}/Resource", "a ResultWriter with Parameters/Arguments needs Resource arn:aws:states:::s3:putObject")
    config = raw.get("WriterConfig", {})
    where = f"{pointer}/WriterConfig"
    if not isinstance(config, dict):
        raise DefinitionError(where, "WriterConfig must be a JSON object")
    reject_unknown(config, {"Transformation", "OutputType"}, where, "a WriterConfig")
    transformation = config.get("Transformation")
    if transformation is not None and transformation not in ("NONE", "COMPACT", "FLATTEN"):
        raise DefinitionError(f"{where}/Transformation", f"must be NONE, COMPACT or FLATTEN, got {transformation!r}")
    output_type = config.get("OutputType", "JSON")
    if output_type not in ("JSON", "JSONL"):
        raise DefinitionError(f"{where}/OutputType", f"must be JSON or JSONL, got {output_type!r}")
    if resource is None and "WriterConfig" not in raw:
        raise DefinitionError(pointer, "ResultWriter cannot be empty")
    return ResultWriter(resource=resource, parameters=_block_payload(raw, pointer, jsonata, "ResultWriter") if resource else None,
                        transformation=transformation, output_type=output_type, pointer=pointer)


_BUILDERS = {
    "Pass": _build_pass,
    "Task": _build_task,
    "Choice": _build_choice,
    "Wait": _build_wait,
    "Succeed": _build_succeed,
    "Fail": _build_fail,
    "Parallel": _build_parallel,
    "Map": _build_map,
}
assert set(_BUILDERS) == {cls.__name__ for cls in STATE_CLASSES}
