"""`python -m emulator report [--stack NAME] [--run NAME] [--confidence-threshold T]`: draw the endpoint's
capture report (app/capture_report.py) into s3://<bucket>/reports/capture/<run>/ (run: a UTC timestamp)."""

from __future__ import annotations

import argparse

from emulator.app.capture_report import ReportUnavailable, draw_capture_report
from emulator.cli.errors import CliError


def cmd_report(args: argparse.Namespace) -> int:
    try:
        drawn = draw_capture_report(args.state_dir, stack=args.stack, run=args.run, threshold=args.confidence_threshold)
    except ReportUnavailable as error:
        raise CliError(str(error)) from None
    report = drawn.report
    print(f"capture report: {report['capture_lines']} requests, {report['records']} records, "
          f"{report['low_confidence']} low-confidence ({report['rule']}) over {len(report['hours'])} hour(s)")
    print(f"  {drawn.uri}report.png, report.html, report.json")
    print(f"  open {drawn.html}")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("report", help="draw the endpoint's capture report (requests, predictions, confidence, "
                                           "features over time)")
    parser.add_argument("--stack", help="the use case's stack (default: the only one deployed)")
    parser.add_argument("--run", help="the report's folder name (default: the UTC time)")
    parser.add_argument("--confidence-threshold", type=float, default=None, help="a classifier's low-confidence bar "
                                                                               "(default 0.7)")
    parser.set_defaults(func=cmd_report)
