"""preprocess.py's bounded-memory engine: statistics over chunks, one merge, then transform chunk by chunk.

Peak memory depends on --chunk-rows and the caps below, not on the table. Three stages, each a pure
function of the input bytes (never of the chunk size or of how the input is sharded):

  statistics  each instance reads its shard of the input (byte ranges of the CSV files cut at line
              ends, from its rank in resourceconfig.json) in chunks and accumulates mergeable
              partial statistics: per column the cell kinds (feature_rules' counts), exact value
              counts of numbers and of text cells (all labelled rows, and the train split's), the
              order of its numbers (ID detection), the target's spellings (problem_rules'
              TargetSummary), class counts per split, and a 64-bit hash of every labelled row.
  merge       one instance combines the partials (in rank order) and decides everything preprocess
              decides in memory: problem type, cell rules, dates, IDs, encodings fitted on the train
              split, duplicates, schema.json, baseline.json, Model Monitor's statistics.json and
              constraints.json (monitor_baseline.py's accumulators, fed the train rows in the
              statistics pass and merged here), the featurizer and decoder archives.
  transform   each instance re-reads its shard and writes its rows, encoded with the merged plan, to
              ``<split>/<split>-<rank>.csv`` (train: one file per --train-shards part, so a training
              job's ShardedByS3Key channel can give every host its share).

The split: a row's 64-bit hash (its cells as text, the target by label identity), mixed with --seed,
is a uniform number u in [0, 1): test if u < test_fraction, validation if u < test + validation,
train otherwise. The same row lands in the same split whatever the chunking, sharding or file order
— and duplicates of a row land together, so the first of them (in shard, then row order) is kept.
Each class is split by the same uniform rule, so the splits are stratified in expectation (class
fractions within sampling error); a split left without a class stops with InsufficientData.

How it differs from the in-memory engine (used for tables up to preprocess.IN_MEMORY_MAX_BYTES on
one instance): the split is the hash rule above, not scikit-learn's exact stratified shuffle;
statistics count duplicate rows (dropping them needs every row's hash, which only the merge has);
a text column with more than CATEGORY_CAP distinct values is dropped (an identifier or free text);
numeric value counts beyond VALUE_CAP distinct values become log buckets of relative width
SKETCH_GAMMA - 1 (medians and baseline quantiles then within 0.1%); the cells are read as text and
typed per column (so "1" and "1.0" in a numeric column are the same number, but two rows spelling it
differently are not duplicates).

The modules, each importing only the ones listed before it: chunked_reading.py (byte ranges, chunks,
factorized columns, row hashes and the split rule), chunked_accumulators.py (the mergeable partial
statistics), chunked_merge.py (the merge into the plan, schema.json and the baselines); this file runs
the stages: statistics, transform, and the job's glue (its rank, the partial and plan files).
"""

from __future__ import annotations

import io
import json
import logging
import pickle
import re
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

if __package__:
    from . import chunked_accumulators as accumulators
    from . import chunked_merge, feature_rules, monitor_baseline
    from . import chunked_reading as reading
    from . import preprocess as pre
    from . import problem_rules as rules
else:
    import chunked_accumulators as accumulators
    import chunked_merge
    import chunked_reading as reading
    import feature_rules
    import monitor_baseline
    import preprocess as pre
    import problem_rules as rules

log = logging.getLogger("preprocess.chunked")

CHUNK_ROWS = 100_000
PARTIAL_FILE = "statistics-{host}.pkl"
PLAN_FILE = "plan.pkl"


# ---------------------------------------------------------------------------------------------
# Stage 1: statistics (stage 2, the merge, is chunked_merge.py)


def statistics(options: pre.Options, rank: int = 0, count: int = 1) -> accumulators.Partial:
    """The partial statistics of instance ``rank`` of ``count``."""
    header, files = reading.inputs(options)
    names = [name.strip() for name in header]
    target = options.target_column
    if target not in names:
        near = [c for c in names if c.lower() == target.lower()]
        hint = f" Did you mean {near[0]!r}?" if near else ""
        raise pre.MissingTargetColumnError(f"Target column {target!r} is not in the input columns "
                                           f"{names}.{hint} Pass --target-column with one of them.")
    partial = accumulators.Partial(header=names, file_names=[shown for _, shown, _ in files])
    partial.columns = {name: accumulators.ColumnStats(name, feature_rules.ColumnCells(name))
                       for name in names if name != target}
    for chunk in reading.chunks(reading.shard_pieces(files, rank, count), header, target, options.chunk_rows):
        _chunk_statistics(partial, chunk, options)
    return partial


def _chunk_statistics(partial: accumulators.Partial, chunk: pd.DataFrame, options: pre.Options) -> None:
    target = options.target_column
    partial.rows += len(chunk)
    _add_target_counts(partial.target, chunk[target].value_counts(dropna=False))
    labelled = reading.labelled_mask(chunk[target])
    data = chunk[labelled]
    keys = reading.label_keys(data[target])
    columns = {name: reading.Cells(data[name]) for name in data.columns}
    hashes = reading.row_hashes(columns, target, keys)
    partial.hashes.append(hashes)
    split = reading.split_of(hashes, options)
    train = split == 0
    for i, name in enumerate(reading.SPLITS):
        partial.split_rows[name] += int((split == i).sum())
        partial.class_counts[name].update(keys[split == i].value_counts().to_dict())
    numbers_of_target = reading.numbers_of(data[target])
    finite = np.isfinite(numbers_of_target) & train
    partial.label_values.add(numbers_of_target[finite])
    partial.label_sum += float(numbers_of_target[finite].sum())
    for name, stats in partial.columns.items():
        _column_chunk(stats, reading.Cells(chunk[name]), labelled, train, columns[name])
        _monitor_chunk(stats, columns[name], train, hashes[train])


def _column_chunk(stats: accumulators.ColumnStats, everyone: reading.Cells, labelled: np.ndarray, train: np.ndarray,
                  kept: reading.Cells) -> None:
    """``everyone``: the column's cells in every row; ``kept``: in the labelled rows."""
    distinct_numbers = everyone.distinct_numbers()
    text_of = everyone.distinct_text()
    numbers = everyone.spread(distinct_numbers, np.nan)
    present = everyone.present
    spelled = text_of.str.casefold().isin(rules.INFINITE_SPELLINGS).to_numpy(dtype=bool)
    infinite = everyone.spread(np.isinf(distinct_numbers) | spelled, False)
    finite = np.isfinite(numbers)
    text = everyone.spread(text_of.to_numpy(dtype=object), "")
    # feature_rules.ColumnCells over every row (labelled or not), vectorized: pandas already read its
    # missing markers as missing, and a blank cell as missing
    is_text = present & ~finite & ~infinite
    cells_stats = stats.cells
    cells_stats.filled += int((present & (finite | infinite | is_text)).sum())
    cells_stats.numbers += int(finite.sum())
    cells_stats.infinite += int(infinite.sum())
    cells_stats.text += int(is_text.sum())
    if is_text.any() and len(cells_stats.examples) < feature_rules.EXAMPLES:
        for example in pd.unique(text[is_text])[:feature_rules.EXAMPLES]:
            if example not in cells_stats.examples and len(cells_stats.examples) < feature_rules.EXAMPLES:
                cells_stats.examples.append(example)
    # the labelled rows, as plan_columns and fit_encodings see them
    numbers, present, finite = numbers[labelled], present[labelled], finite[labelled]
    stats.missing += int((~present).sum())
    stats.missing_train += int((~present & train).sum())
    stats.non_number += int((~finite).sum())
    stats.non_number_train += int((~finite & train).sum())
    stats.numbers.add(numbers[finite])
    stats.numbers_train.add(numbers[finite & train])
    stats.order.add(numbers[finite])
    if finite.any():
        stats.integer = stats.integer and bool(np.all(np.mod(numbers[finite], 1) == 0))
    stats.texts.add_counts(kept.counts(np.ones(len(train), dtype=bool)))
    stats.texts_train.add_counts(kept.counts(train))


def _monitor_chunk(stats: accumulators.ColumnStats, kept: reading.Cells, train: np.ndarray, keys: np.ndarray) -> None:
    """The train rows into both monitor accumulators: as numbers (infinite and text cells missing, as
    feature_rules reads a numeric column) and as category keys (monitor_baseline.category_keys)."""
    numbers = kept.distinct_numbers()
    numbers[~np.isfinite(numbers)] = np.nan
    stats.monitor_numeric.update(kept.spread(numbers, np.nan)[train], keys)
    categories = monitor_baseline.category_keys(pd.Series(kept.distinct, dtype=object)).to_numpy(dtype=object)
    stats.monitor_categorical.update(pd.Series(kept.spread(categories, np.nan)[train], dtype=object))


def _add_target_counts(summary: rules.TargetSummary, counts: pd.Series) -> None:
    """TargetSummary.add for every cell, from the chunk's (cell -> count): one call per distinct cell."""
    for cell, count in counts.items():
        before_missing, before_infinite = summary.missing, summary.infinite
        summary.add(cell)
        extra = int(count) - 1
        if not extra:
            continue
        summary.rows += extra
        if summary.missing > before_missing:
            summary.missing += extra
            summary.infinite += extra * (summary.infinite - before_infinite)
            continue
        text = str(cell).strip()
        key = rules.label_key(text)
        if key in summary.spellings:
            summary.spellings[key][text] += extra


# ---------------------------------------------------------------------------------------------
# Stage 3: transform and write


def transform(plan: chunked_merge.Plan, rank: int, count: int, output_dir: Path) -> dict[str, int]:
    """Instance ``rank``'s rows, encoded by the plan, appended chunk by chunk to its split files."""
    options = plan.options
    header, files = reading.inputs(options)
    target = options.target_column
    drop = plan.drop_in_shard[rank]
    repeated = plan.repeated_in_shard[rank]
    seen: set[int] = set()
    written = dict.fromkeys(reading.SPLITS, 0)
    handles: dict[tuple[str, int], Any] = {}

    def handle(split: str, part: int):
        key = (split, part)
        if key not in handles:
            name = f"{split}-{rank:05d}" + (f"-{part:05d}" if split == "train" and options.train_shards > 1 else "")
            path = output_dir / split / f"{name}.csv"
            path.parent.mkdir(parents=True, exist_ok=True)
            handles[key] = path.open("w", newline="")
        return handles[key]

    batch_path = output_dir / "batch" / f"batch-{rank:05d}.csv"
    batch_path.parent.mkdir(parents=True, exist_ok=True)
    index = plan.decision.index() if plan.decision.problem_type != pre.REGRESSION else None
    try:
        with batch_path.open("w", newline="") as batch:
            for chunk in reading.chunks(reading.shard_pieces(files, rank, count), header, target, options.chunk_rows):
                data = chunk[reading.labelled_mask(chunk[target])]
                if data.empty:
                    continue
                keys = reading.label_keys(data[target])
                columns = {name: reading.Cells(data[name]) for name in data.columns}
                hashes = reading.row_hashes(columns, target, keys)
                keep = ~np.isin(hashes, drop)
                if repeated.size:
                    for i in np.flatnonzero(keep & np.isin(hashes, repeated)):
                        h = int(hashes[i])
                        keep[i] = h not in seen
                        seen.add(h)
                if not keep.all():
                    data, keys, hashes = data[keep], keys[keep], hashes[keep]
                    columns = None
                if data.empty:
                    continue
                features = _encode(plan, data, columns)
                if index is None:
                    labels = reading.numbers_of(data[target])
                else:
                    labels = keys.map(index).to_numpy(dtype=np.int64)
                split = reading.split_of(hashes, options)
                parts = reading.train_part_of(hashes, options.train_shards)
                for i, name in enumerate(reading.SPLITS):
                    rows = split == i
                    if not rows.any():
                        continue
                    if name == "train":
                        for part in np.unique(parts[rows]):
                            chosen = rows & (parts == part)
                            _append(handle(name, int(part)), labels[chosen], features[chosen])
                    else:
                        _append(handle(name, 0), labels[rows], features[rows])
                    written[name] += int(rows.sum())
                test = split == 2
                if test.any():
                    data.loc[test, plan.input_columns].to_csv(batch, header=False, index=False)
    finally:
        for h in handles.values():
            h.close()
    for name in ("validation", "test"):  # every instance writes its files, empty or not
        if (name, 0) not in handles:
            handle(name, 0).close()
    return written


def _encode(plan: chunked_merge.Plan, data: pd.DataFrame, columns: dict[str, reading.Cells] | None) -> np.ndarray:
    """The columns as the in-memory engine hands them to ColumnEncoding.transform: numeric ones as
    numbers with infinite and stray text cells missing (feature_rules), the others as read."""
    frame = {}
    for enc in plan.encodings:
        cells = data[enc.name]
        if enc.kind == "numeric":
            values = (columns[enc.name] if columns else reading.Cells(cells)).numbers()
            values[np.isinf(values)] = np.nan
            frame[enc.name] = pd.Series(values, index=data.index)
        else:
            frame[enc.name] = cells
    return pre.transform(plan.encodings, pd.DataFrame(frame, index=data.index))


def _append(handle, labels: np.ndarray, features: np.ndarray) -> None:
    buffer = io.StringIO()
    pre._write_csv_to(buffer, labels, features)
    handle.write(buffer.getvalue())


# ---------------------------------------------------------------------------------------------
# The stages as the job runs them


def resource_rank(path: Path | None) -> tuple[int, int, str]:
    """(rank, count, host) from SageMaker's resourceconfig.json; (0, 1, 'algo-1') without one."""
    if path is None or not path.is_file():
        return 0, 1, "algo-1"
    config = json.loads(path.read_text())
    hosts = sorted(config.get("hosts") or ["algo-1"])
    host = config.get("current_host", hosts[0])
    return hosts.index(host), len(hosts), host


def write_partial(partial: accumulators.Partial, directory: Path, host: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / PARTIAL_FILE.format(host=host)
    with path.open("wb") as handle:
        pickle.dump(partial, handle, protocol=4)
    return path


def read_partials(directory: Path) -> list[accumulators.Partial]:
    """Every instance's partial, in rank order (algo-1, algo-2, ..., algo-10: by number)."""
    files = sorted(directory.rglob(PARTIAL_FILE.format(host="*")),
                   key=lambda p: [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", p.name)])
    if not files:
        raise pre.NoInputFilesError(f"No statistics-*.pkl under {directory}: run the statistics stage first.")
    partials = []
    for path in files:
        with path.open("rb") as handle:
            partials.append(pickle.load(handle))  # written by this job's own statistics stage
    return partials


def write_plan_outputs(plan: chunked_merge.Plan, output_dir: Path, plan_dir: Path | None) -> None:
    """schema.json, baseline.json and the serving archives (and the plan, for the transform stage)."""
    parts = {"schema": plan.schema, "baseline": plan.baseline, "statistics": plan.monitor[0],
             "constraints": plan.monitor[1], **pre.serving_package().serving_archives(plan.schema)}
    for key, value in parts.items():
        path = output_dir / pre.OUTPUT_FILES[key]
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(value, bytes):
            path.write_bytes(value)
        else:
            path.write_text(json.dumps(value, indent=2) + "\n")
    if plan_dir is not None:
        plan_dir.mkdir(parents=True, exist_ok=True)
        with (plan_dir / PLAN_FILE).open("wb") as handle:
            pickle.dump(plan, handle, protocol=4)


def read_plan(plan_dir: Path) -> chunked_merge.Plan:
    path = plan_dir / PLAN_FILE if plan_dir.is_dir() else plan_dir
    if not path.is_file():
        raise pre.NoInputFilesError(f"No {PLAN_FILE} at {plan_dir}: run the merge stage first.")
    with path.open("rb") as handle:
        return pickle.load(handle)  # written by this pipeline's merge stage


def run(options: pre.Options) -> dict[str, Any] | None:
    """One stage (or all three in this process) of the chunked engine; the schema when written."""
    rank, count, host = resource_rank(options.resource_config)
    stage = options.stage
    log.info("chunked engine: stage %s on %s (instance %d of %d), %d rows per chunk", stage, host, rank + 1, count,
             options.chunk_rows)
    if stage == "statistics":
        partial = statistics(options, rank, count)
        write_partial(partial, options.output_dir / "statistics", host)
        return None
    if stage == "merge":
        partials = read_partials(options.input_dir if options.statistics_dir is None else options.statistics_dir)
        plan = chunked_merge.merge(partials, options)
        write_plan_outputs(plan, options.output_dir, options.output_dir / "plan")
        return plan.schema
    if stage == "transform":
        plan = read_plan(options.statistics_dir)
        plan = _with_paths(plan, options)
        written = transform(plan, rank, count, options.output_dir)
        log.info("%s wrote train/validation/test = %d/%d/%d rows", host, *written.values())
        return None
    # all: one instance, every stage here, the outputs staged and renamed into place when complete
    partial = statistics(options, 0, 1)
    plan = chunked_merge.merge([partial], options)
    staging = pre.staging_dir(options.output_dir)
    try:
        write_plan_outputs(plan, staging, None)
        written = transform(plan, 0, 1, staging)
        pre.promote(staging, options.output_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log.info("%s problem; %d features; train/validation/test = %d/%d/%d rows", plan.decision.problem_type,
             len(plan.schema["feature_names"]), *written.values())
    return plan.schema


def _with_paths(plan: chunked_merge.Plan, options: pre.Options) -> chunked_merge.Plan:
    """The plan with this instance's input folder (the merge ran elsewhere, with its own paths)."""
    plan.options = replace(plan.options, input_dir=options.input_dir, output_dir=options.output_dir,
                                           chunk_rows=options.chunk_rows)
    return plan
