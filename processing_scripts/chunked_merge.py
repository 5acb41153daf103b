"""The chunked engine's merge: the instances' partial statistics combined into the plan (problem type,
cell rules, dates, IDs, encodings fitted on the train split, duplicates) and schema.json,
baseline.json and Model Monitor's baseline."""

from __future__ import annotations

import logging
import math
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

if __package__:
    from . import chunked_accumulators as accumulators
    from . import chunked_reading as reading
    from . import monitor_baseline
    from . import preprocess as pre
    from . import problem_rules as rules
else:
    import chunked_accumulators as accumulators
    import chunked_reading as reading
    import monitor_baseline
    import preprocess as pre
    import problem_rules as rules

log = logging.getLogger("preprocess.chunked")  # chunked.py's logger: the report lines read as before


@dataclass
class Plan:
    options: pre.Options
    header: list[str]
    input_columns: list[str]
    decision: rules.TargetDecision
    encodings: list[pre.ColumnEncoding]
    numeric_columns: list[str]
    drop_in_shard: list[np.ndarray]  # per rank: hashes seen in an earlier shard
    repeated_in_shard: list[np.ndarray]  # per rank: hashes occurring twice or more in that shard
    schema: dict[str, Any]
    baseline: dict[str, Any]
    monitor: tuple[dict[str, Any], dict[str, Any]]  # Model Monitor's statistics.json, constraints.json


def merge(partials: list[accumulators.Partial], options: pre.Options) -> Plan:
    total = partials[0]
    for other in partials[1:]:
        total.merge(other)
    target = options.target_column
    if total.rows == 0:
        raise pre.HeaderOnlyError(f"{', '.join(total.file_names)} has a header but no data rows. "
                                  "Upload the data rows too.")
    try:
        decision = rules.decide(total.target, options.problem_type, target, "the input")
    except rules.UnusableTarget as err:
        raise pre.UnusableTarget(str(err)) from None
    dropped_null = total.target.missing
    # duplicates: a hash seen in an earlier shard goes entirely; one repeated within a shard keeps its first copy
    drop_in_shard, repeated_in_shard, seen, labelled = [], [], np.empty(0, dtype=np.uint64), 0
    removed = np.zeros(len(reading.SPLITS), dtype=np.int64)
    for partial in partials:
        hashes = np.concatenate(partial.hashes) if partial.hashes else np.empty(0, dtype=np.uint64)
        labelled += hashes.size
        distinct, counts = np.unique(hashes, return_counts=True)
        earlier = np.isin(distinct, seen)
        repeated = (counts > 1) & ~earlier
        drop_in_shard.append(distinct[earlier])
        repeated_in_shard.append(distinct[repeated])
        gone = np.concatenate([distinct[earlier], distinct[repeated]])
        copies = np.concatenate([counts[earlier], counts[repeated] - 1])
        removed += np.bincount(reading.split_of(gone, options), weights=copies,
                               minlength=len(reading.SPLITS)).astype(np.int64)
        seen = np.union1d(seen, distinct)
        partial.hashes = []
    del seen
    unique = labelled - int(removed.sum())
    dropped_dupes = labelled - unique
    # the statistics count duplicate rows (see the module's docstring); the counts in schema.json are
    # the rows each split's files hold
    counts = {split: total.split_rows[split] - int(removed[i]) for i, split in enumerate(reading.SPLITS)}
    try:
        rules.check_labelled_rows(unique, dropped_null, target, "The input")
    except rules.InsufficientData as err:
        raise pre.InsufficientData(f"{err} ({dropped_dupes} duplicate row(s) were dropped too.)" if dropped_dupes
                                   else str(err)) from None
    classification = decision.problem_type != pre.REGRESSION
    if classification:
        overall = Counter()
        for split in reading.SPLITS:
            overall.update(total.class_counts[split])
        labels_by_key = dict(zip(decision.keys, decision.labels))
        try:
            rules.check_class_sizes({labels_by_key[k]: overall[k] for k in decision.keys}, target)
        except rules.InsufficientData as err:
            raise pre.InsufficientData(str(err)) from None
        for split in reading.SPLITS:
            absent = [labels_by_key[k] for k in decision.keys if not total.class_counts[split][k]]
            if absent:
                raise pre.InsufficientData(
                    f"Target {target!r}: no row of class(es) {absent} fell in the {split} split (each row's split "
                    f"is decided by a hash of the row, so a class needs enough rows for every split to draw some). "
                    "Add rows of those classes, or remove them from the file.")
    if min(total.split_rows.values()) == 0:
        raise pre.InsufficientData(f"The hash split left a split empty ({total.split_rows}); provide more rows.")

    columns = [c for c in total.header if c != target]
    numeric, cell_decisions = [], []
    for name in columns:
        cells = total.columns[name].cells
        if cells.numeric:
            numeric.append(name)
        cell_decisions += [{"column": name, "action": "read as numbers:", "detail": line}
                           for line in cells.warnings()]
    dates, id_columns = _plan_columns(total, columns, numeric, unique)
    encodings, dropped_in_train, decisions = _fit(total, [c for c in columns if c not in {d["name"] for d in id_columns}],
                                                  numeric, dates, options.max_onehot_cardinality)
    dropped_columns = id_columns + dropped_in_train
    decisions = ([{"column": d["name"], "action": "dropped", "detail": d["reason"]} for d in dropped_columns]
                 + cell_decisions + decisions)
    report = pre.data_report(total.rows, dropped_null, dropped_dupes, target, decision, decisions)
    for line in report:
        log.info("%s", line)
    train_rows = total.split_rows["train"]
    if classification:
        fractions = [total.class_counts["train"][k] / train_rows for k in decision.keys]
        naive = {"strategy": "class_prior", "class_fractions": [float(f) for f in fractions]}
    else:
        naive = {"strategy": "mean", "mean": float(total.label_sum / max(total.label_values.total, 1))}
    schema = pre.schema_document(
        options, decision, encodings, columns, dropped_columns, decisions, report,
        {"input": total.rows, "dropped_null_target": dropped_null, "dropped_duplicates": dropped_dupes,
         **counts, "batch": counts["test"]},
        naive, total.file_names)
    schema["engine"] = {"name": "chunked", "split": "row hash", "chunk_rows": options.chunk_rows,
                        "instances": len(partials), "train_parts": options.train_shards}
    baseline = _baseline(total, encodings, decision)
    monitored = monitor_baseline.BaselineAccumulator(monitor_baseline.monitored_columns(schema))
    for name, kind in monitored.columns.items():
        stats = total.columns[name]
        monitored.features[name] = (stats.monitor_numeric if kind == monitor_baseline.NUMERIC
                                    else stats.monitor_categorical)
    monitored.rows = total.split_rows["train"]
    monitor = monitored.finish(options.drift_threshold)
    return Plan(options, total.header, columns, decision, encodings, numeric, drop_in_shard, repeated_in_shard,
                schema, baseline, monitor)


def _date_text(texts: accumulators.Texts) -> Counter:
    return Counter({t: c for cell, c in texts.counts.items() if (t := str(cell).strip())})


def _plan_columns(total: accumulators.Partial, columns: list[str], numeric: list[str], labelled: int,
                  ) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
    """preprocess.plan_columns from the statistics."""
    dates, dropped = {}, []
    for name in columns:
        stats = total.columns[name]
        if name not in numeric:
            found = _date_format(stats.texts) if not stats.texts.overflow else None
            if found:
                dates[name] = {"format": found[0], "unreadable": found[1]}
                continue
            if stats.texts.overflow:
                dropped.append({"name": name, "reason": f"more than {accumulators.CATEGORY_CAP} distinct values, "
                                                        "an identifier or free text"})
                continue
            if (labelled >= pre.MIN_ROWS_FOR_ID and not stats.missing and len(stats.texts.counts) == labelled
                    and all(c == 1 for c in stats.texts.counts.values())):
                dropped.append({"name": name, "reason": "unique per row, an identifier"})
            continue
        if labelled < pre.MIN_ROWS_FOR_ID or stats.non_number or not stats.integer:
            continue
        if stats.order.rising or stats.order.falling:
            dropped.append({"name": name, "reason": "a monotonic integer index"})
            continue
        unique = not stats.numbers.bucketed and stats.numbers.values.size == labelled
        if unique and (pre.ID_NAME.search(name) or pre.ID_NAME.search(name.lower())):
            dropped.append({"name": name, "reason": "unique integers named like an identifier"})
    return dates, dropped


def _date_format(texts: accumulators.Texts) -> tuple[str, int] | None:
    counts = _date_text(texts)
    total = sum(counts.values())
    if not total:
        return None
    values = pd.Series(list(counts.keys()), dtype=object)
    weights = np.asarray(list(counts.values()), dtype=np.float64)
    shaped = values.map(lambda v: bool(pre.DATE_SHAPE.match(v))).to_numpy(dtype=bool)
    if weights[shaped].sum() < pre.DATE_MIN_SHARE * total:
        return None
    best = None
    for fmt in pre.DATE_FORMATS:
        read = int(weights[pd.to_datetime(values, format=fmt, errors="coerce").notna().to_numpy()].sum())
        if best is None or read > best[1]:
            best = (fmt, read)
    if best is None or best[1] < pre.DATE_MIN_SHARE * total:
        return None
    return best[0], total - best[1]


def _fit(total: accumulators.Partial, columns: list[str], numeric: list[str], dates: dict[str, dict[str, Any]],
         max_onehot: int) -> tuple[list[pre.ColumnEncoding], list[dict[str, str]], list[dict[str, Any]]]:
    """preprocess.fit_encodings from the train split's statistics."""
    rows = total.split_rows["train"]
    encodings, dropped, decisions = [], [], []
    for name in columns:
        stats = total.columns[name]
        is_numeric = name in numeric
        missing_count = stats.non_number_train if is_numeric else stats.missing_train
        missing = missing_count / rows
        if missing == 1.0:
            dropped.append({"name": name, "reason": "every value is missing in the train split"})
            continue
        if not is_numeric and stats.texts_train.overflow:
            dropped.append({"name": name, "reason": f"more than {accumulators.CATEGORY_CAP} distinct values, "
                                                    "an identifier or free text"})
            continue
        texts = stats.texts_train.counts
        if is_numeric:
            distinct = stats.numbers_train.values.size + (1 if missing_count else 0)
            first = repr(float(stats.numbers_train.values[0])) if stats.numbers_train.values.size else ""
        elif name in dates:
            distinct = len(texts) + (1 if missing_count else 0)
            first = next(iter(sorted(map(str, texts))), "")
        else:
            keys = _key_counts(texts, missing_count)
            distinct = len(keys)
            first = next(iter(sorted(map(str, texts))), "")
        if distinct <= 1:
            dropped.append({"name": name, "reason": f"constant ({first.strip()!r} in every train row)"})
            continue
        if name in dates:
            fmt = dates[name]["format"]
            parts_values, origin = _date_parts(texts, fmt, missing_count)
            medians = [parts.median() if parts.total else math.nan for parts in parts_values]
            encodings.append(pre.ColumnEncoding(name, "date", "date_parts", date_format=fmt, origin=str(origin),
                                                part_impute_values=medians, missing_in_train=missing))
            decisions.append(pre.date_decision(name, fmt, origin, dates[name]["unreadable"]))
            continue
        if is_numeric:
            encodings.append(pre.ColumnEncoding(name, "numeric", "passthrough",
                                                impute_value=float(stats.numbers_train.median()),
                                                missing_in_train=missing))
            continue
        keys = _key_counts(texts, missing_count)
        spellings: dict[str, Counter] = {}
        for cell, count in texts.items():
            spelling = str(cell).strip()
            if spelling:
                spellings.setdefault(rules.category_key(spelling), Counter())[spelling] += count
        labels = {key: min(found.items(), key=lambda kv: (-kv[1], kv[0]))[0] for key, found in spellings.items()}
        merged = {labels[key]: sorted(found) for key, found in sorted(spellings.items()) if len(found) > 1}
        if merged:
            decisions.append({"column": name, "action": "spellings merged:",
                              "detail": "; ".join(f"{v} -> {k!r}" for k, v in merged.items())})
        if len(keys) <= max_onehot:
            categories = sorted(keys)
            encodings.append(pre.ColumnEncoding(name, "categorical", "one_hot", categories=categories,
                                                labels=[labels.get(k, k) for k in categories],
                                                missing_in_train=missing, cardinality=len(keys)))
        else:
            freq = {str(k): float(v) / rows for k, v in sorted(keys.items())}
            encodings.append(pre.ColumnEncoding(name, "categorical", "frequency", frequencies=freq,
                                                missing_in_train=missing, cardinality=len(keys)))
    if not encodings:
        raise pre.NoFeaturesError("No usable feature columns: every column besides the target is empty, constant or "
                                  f"an identifier ({', '.join(d['name'] for d in dropped)}). Check the export "
                                  "includes the feature columns.")
    return encodings, dropped, decisions


def _key_counts(texts: Counter, missing: int) -> Counter:
    """Category key -> train rows, as preprocess._category_keys keys them (blank and missing: __missing__)."""
    keys = Counter()
    for cell, count in texts.items():
        keys[rules.category_key(cell) or pre.MISSING] += count
    if missing:
        keys[pre.MISSING] += missing
    return keys


def _date_parts(texts: Counter, fmt: str, missing: int) -> tuple[list[accumulators.Values], pd.Timestamp]:
    """Each date part's train values (unreadable and missing dates left out, as nanmedian does), and
    the earliest train date."""
    cells = pd.Series(list(texts.keys()), dtype=object)
    counts = np.asarray(list(texts.values()), dtype=np.int64)
    when = pd.to_datetime(cells.map(str).str.strip(), format=fmt, errors="coerce")
    origin = when.min()
    parts = pre._date_parts(cells, fmt, str(origin))
    out = []
    for i in range(parts.shape[1]):
        readable = ~np.isnan(parts[:, i])
        values = accumulators.Values()
        values.add(parts[readable, i], counts[readable]) if readable.any() else None
        out.append(values)
    return out, origin


def _baseline(total: accumulators.Partial, encodings: list[pre.ColumnEncoding],
              decision: rules.TargetDecision) -> dict[str, Any]:
    """preprocess.build_baseline, from the train split's statistics (duplicates included)."""
    rows = total.split_rows["train"]
    per_feature, per_source = {}, {}
    for enc in encodings:
        stats = total.columns[enc.name]
        entry: dict[str, Any] = {"kind": enc.kind, "missing_fraction": enc.missing_in_train}
        names = enc.output_names()
        if enc.kind == "numeric":
            features = [stats.numbers_train.with_extra(enc.impute_value, stats.non_number_train)]
        elif enc.kind == "date":
            parts, _ = _date_parts(stats.texts_train.counts, enc.date_format, stats.missing_train)
            features = [p.with_extra(v, rows - p.total) for p, v in zip(parts, enc.part_impute_values)]
        else:
            keys = _key_counts(stats.texts_train.counts, stats.missing_train)
            if enc.encoding == "one_hot":
                features = []
                for category in enc.categories:
                    ones = keys.get(category, 0)
                    values = accumulators.Values()
                    values.add(np.asarray([0.0, 1.0]), np.asarray([rows - ones, ones]))
                    features.append(values)
            else:
                values = accumulators.Values()
                frequencies = np.asarray([enc.frequencies.get(k, 0.0) for k in keys], dtype=np.float64)
                values.add(*_collapse(frequencies, np.asarray(list(keys.values()), dtype=np.int64)))
                features = [values]
            top = sorted(keys.items(), key=lambda kv: (-kv[1], str(kv[0])))[:pre.BASELINE_TOP_CATEGORIES]
            entry["top_categories"] = {str(k): float(v) / rows for k, v in top}
        for name, values in zip(names, features):
            per_feature[name] = _nonzero(values).baseline()
        per_source[enc.name] = entry
    if decision.problem_type == pre.REGRESSION:
        label = total.label_values.baseline()
    else:
        label = {"class_fractions": {str(i): float(total.class_counts["train"][k]) / rows
                                     for i, k in enumerate(decision.keys)}}
    return {"schema_version": pre.SCHEMA_VERSION, "computed_on": "train", "rows": rows,
            "features": per_feature, "source_columns": per_source, "label": label}


def _collapse(values: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    distinct, inverse = np.unique(values, return_inverse=True)
    return distinct, np.bincount(inverse, weights=counts, minlength=distinct.size).astype(np.int64)


def _nonzero(values: accumulators.Values) -> accumulators.Values:
    keep = values.counts > 0
    return accumulators.Values(values.values[keep], values.counts[keep], values.bucketed)
