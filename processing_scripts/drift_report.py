"""The drift analysis as one self-contained HTML page: inline CSS and SVG, no script, no network asset."""

from __future__ import annotations

import html
from typing import Any

STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:24px;color:#222;max-width:1100px}
h1{font-size:20px}h2{font-size:16px;margin-top:28px}
table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ddd;padding:4px 8px;text-align:left;
vertical-align:top}th{background:#f4f4f4}.bad{color:#b00020;font-weight:600}.ok{color:#1b5e20}
.num{text-align:right;font-variant-numeric:tabular-nums}svg{display:block}.legend span{display:inline-block;
width:10px;height:10px;margin:0 4px 0 12px}
"""
BASE, LIVE = "#90a4ae", "#e65100"


def _e(value: Any) -> str:
    return html.escape(str(value))


def _num(value: Any, digits: int = 4) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return _e(value)


def bars(baseline: list[float], live: list[float], labels: list[str], width: int = 320, height: int = 70) -> str:
    """Paired bars per bin: the baseline's share (grey) and the live share (orange)."""
    bins = len(baseline)
    if not bins:
        return ""
    top = max(max(baseline), max(live), 1e-9)
    slot = width / bins
    bar = max(slot / 2 - 1, 1)
    parts = [f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img">']
    for i, (b, a) in enumerate(zip(baseline, live)):
        x = i * slot
        for offset, share, colour in ((0, b, BASE), (bar, a, LIVE)):
            h = (height - 2) * share / top
            parts.append(f'<rect x="{x + offset:.1f}" y="{height - h:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                         f'fill="{colour}"><title>{_e(labels[i])}: {share:.1%}</title></rect>')
    parts.append("</svg>")
    return "".join(parts)


def _bin_labels(entry: dict[str, Any]) -> list[str]:
    found = entry.get("bins") or {}
    if "categories" in found:
        return [str(c) for c in found["categories"]]
    edges = found.get("edges", [])
    bounds = ["-inf", *[f"{e:.4g}" for e in edges], "inf"]
    return [f"({bounds[i]}, {bounds[i + 1]}]" for i in range(len(bounds) - 1)]


def render(summary: dict[str, Any], violations: list[dict[str, str]], columns: list[str]) -> str:
    thresholds = summary.get("thresholds", {})
    rows = []
    for name, entry in summary["features"].items():
        found = entry.get("bins") or {}
        chart = bars(found.get("baseline", []), found.get("live", []), _bin_labels(entry)) if found else ""
        pvalue = entry.get("ks_pvalue") if entry["kind"] == "numeric" else entry.get("chi2_pvalue")
        test = "KS" if entry["kind"] == "numeric" else "chi²"
        state = '<span class="bad">drifted</span>' if entry["drifted"] else '<span class="ok">stable</span>'
        completeness = entry.get("completeness") or {}
        rows.append(
            f"<tr><td>{_e(name)}<br><small>{_e(entry['inferred_type'])}</small></td><td>{state}</td>"
            f'<td class="num">{_num(entry.get("psi"), 3)}</td><td class="num">{test} {_num(pvalue, 2)}</td>'
            f'<td class="num">{_num(completeness.get("live"), 4)} / {_num(completeness.get("baseline"), 4)}</td>'
            f"<td>{chart}</td></tr>")
    listed = "".join(f"<tr><td>{_e(v['feature_name'])}</td><td>{_e(v['constraint_check_type'])}</td>"
                     f"<td>{_e(v['description'])}</td></tr>" for v in violations)
    quality = summary.get("live_quality")
    if quality:
        interval = quality.get("interval") or [None, None]
        verdict = '<span class="bad">degraded</span>' if summary.get("quality_degraded") else '<span class="ok">ok</span>'
        quality_html = (f"<p>{_e(quality['metric'])} on {quality['records']} labelled rows: "
                        f"<b>{_num(quality['value'])}</b> (99% interval {_num(interval[0])} – {_num(interval[1])}); "
                        f"champion {_num(quality['champion_value'])}; bar {_num(quality['bar'])}: {verdict}. "
                        f"{quality['unmatched_records']} labelled records did not match their answer's row count, "
                        f"{quality['unknown_labels']} labels were not the model's classes.</p>")
    else:
        quality_html = "<p>No ground truth joined the captured predictions in this window.</p>"
    settings = ", ".join(f"{_e(k)} {_num(v)}" for k, v in thresholds.items())
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Drift report</title><style>{STYLE}</style></head><body>
<h1>Drift and quality report</h1>
<p>{summary['record_count']} capture records, {summary['row_count']} rows ({summary.get('malformed_rows', 0)} malformed)
against the training baseline of {len(columns)} columns.
Drifted features: <b>{len(summary.get('drifted_features', []))}</b> of {len(summary['features'])}
(share {_num(summary['drifted_feature_share'], 3)}); max PSI {_num(summary['max_psi'], 3)}.</p>
<p><small>Settings: {settings}. A feature drifts when its PSI exceeds the threshold and its KS (numeric) or
chi-square (categorical) test is significant at the level.</small></p>
<h2>Violations ({len(violations)})</h2>
{f'<table><tr><th>feature</th><th>check</th><th>description</th></tr>{listed}</table>' if violations else '<p class="ok">None.</p>'}
<h2>Model quality</h2>
{quality_html}
<h2>Features</h2>
<p class="legend"><span style="background:{BASE}"></span>baseline<span style="background:{LIVE}"></span>live</p>
<table><tr><th>feature</th><th>state</th><th>PSI</th><th>test p</th><th>completeness live / baseline</th>
<th>distribution</th></tr>{''.join(rows)}</table>
</body></html>
"""
