"""How jsonata-python (the engine behind QueryLanguage JSONata) fares on the JSONata project's own
language-neutral test suite (jsonata-js/jsonata, test/test-suite): passed / total, by group.

The suite is not vendored: point the script at a checkout of jsonata-js/jsonata (or its
test/test-suite folder).

Run: .venv/bin/python benchmarks/jsonata_suite.py PATH/TO/jsonata [--failures]
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections import Counter
from pathlib import Path

from jsonata import Jsonata, Utils

UNDEFINED = object()


def suite_dir(path: Path) -> Path:
    for candidate in (path, path / "test" / "test-suite"):
        if (candidate / "groups").is_dir() and (candidate / "datasets").is_dir():
            return candidate
    raise SystemExit(f"{path} is not the JSONata test suite: expected groups/ and datasets/ (or test/test-suite/ inside it)")


def same(actual: object, expected: object) -> bool:
    """Deep equality as the suite means it: numbers compare as doubles (1 == 1.0), bools are not numbers."""
    if isinstance(expected, bool) or isinstance(actual, bool):
        return type(actual) is type(expected) and actual == expected
    if isinstance(expected, (int, float)) and isinstance(actual, (int, float)):
        return math.isclose(actual, expected, rel_tol=1e-12, abs_tol=1e-12)
    if isinstance(expected, dict):
        return isinstance(actual, dict) and actual.keys() == expected.keys() and all(same(actual[k], expected[k]) for k in expected)
    if isinstance(expected, list):
        return isinstance(actual, list) and len(actual) == len(expected) and all(same(a, e) for a, e in zip(actual, expected))
    return actual == expected


def run_case(case: dict, folder: Path, datasets: Path) -> str:
    """'pass', or what went wrong: 'wrong result', 'unexpected error', 'no error', 'wrong error code'."""
    # the expected error code: "code", or "error": {"code", "message"} in some groups
    code = case.get("code", (case.get("error") or {}).get("code"))
    expr = case.get("expr")
    if expr is None:
        expr = (folder / case["expr-file"]).read_text()
    if "data" in case:
        data = case["data"]
    elif case.get("dataset") is not None:
        data = json.loads((datasets / f"{case['dataset']}.json").read_text())
    else:
        data = None
    frame = Jsonata.Frame(None)
    for key, value in (case.get("bindings") or {}).items():
        frame.bind(key, value)
    frame.set_runtime_bounds(case.get("timelimit") or 10_000, case.get("depth") or 300)
    try:
        engine = Jsonata(expr)
        engine.set_output_convert_nulls(False)  # keep undefined (None) apart from null
        raw = engine.evaluate(data, frame)
    except Exception as exc:  # noqa: BLE001 - the suite checks error codes
        if code is None:
            return "unexpected error"
        return "pass" if getattr(exc, "error", None) == code else "wrong error code"
    if code is not None:
        return "no error"
    actual = UNDEFINED if raw is None else Utils.convert_nulls(raw)
    if case.get("undefinedResult"):
        return "pass" if actual is UNDEFINED else "wrong result"
    return "pass" if actual is not UNDEFINED and same(actual, case.get("result")) else "wrong result"


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__)
        return 2
    root = suite_dir(Path(argv[0]))
    show_failures = "--failures" in argv
    outcomes: Counter[str] = Counter()
    by_group: dict[str, Counter[str]] = {}
    failures = []
    begin = time.perf_counter()
    for path in sorted((root / "groups").glob("*/*.json")):
        cases = json.loads(path.read_text())
        for index, case in enumerate(cases if isinstance(cases, list) else [cases]):
            outcome = run_case(case, path.parent, root / "datasets")
            outcomes[outcome] += 1
            by_group.setdefault(path.parent.name, Counter())[outcome] += 1
            if outcome != "pass":
                failures.append(f"{path.parent.name}/{path.name}#{index}: {outcome}: {case.get('expr', case.get('expr-file'))!r}"[:200])
    seconds = time.perf_counter() - begin
    total = sum(outcomes.values())
    print(f"jsonata-python on the JSONata test suite ({root}): {outcomes['pass']}/{total} cases pass = {outcomes['pass'] / total:.1%} ({seconds:.1f} s)")
    for outcome, count in outcomes.most_common():
        if outcome != "pass":
            print(f"  {outcome:18s} {count}")
    worst = sorted(by_group.items(), key=lambda item: item[1]["pass"] / sum(item[1].values()))[:8]
    print("groups with the lowest pass rate:")
    for group, counts in worst:
        print(f"  {group:32s} {counts['pass']}/{sum(counts.values())}")
    if show_failures:
        print("\n".join(failures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
