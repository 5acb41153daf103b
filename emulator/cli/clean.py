"""`python -m emulator clean [--keep N] [--older-than DAYS] [--dry-run]`: prune old executions, with
their job folders, job records and run data; what a deployed endpoint, the champion record or a
registered model package uses always stays (app/prune.py)."""

from __future__ import annotations

import argparse
import datetime as dt

from emulator.app.prune import prune
from emulator.app.summary import size_text
from emulator.cli.errors import CliError
from emulator.storage.layout import Layout

DEFAULT_KEEP = 5


def cmd_clean(args: argparse.Namespace) -> int:
    if args.keep < 0:
        raise CliError(f"--keep {args.keep}: give the number of executions to keep per state machine (0 or more)")
    if args.older_than is not None and args.older_than < 0:
        raise CliError(f"--older-than {args.older_than}: give an age in days (0 or more)")
    layout = Layout.at(args.state_dir)
    if not layout.root.is_dir():
        print(f"nothing to clean: {layout.root} does not exist")
        return 0
    layout.check()
    older_than = dt.timedelta(days=args.older_than) if args.older_than is not None else None
    report = prune(layout, keep=args.keep, older_than=older_than, dry_run=args.dry_run)
    verb = "would remove" if args.dry_run else "removed"
    rule = f"the newest {args.keep} per state machine" + (f", and any that ended less than {args.older_than:g} "
                                                           f"day(s) ago" if older_than is not None else "")
    print(f"kept {report.kept_executions} execution(s) ({rule}; {report.running} running)")
    for entry in report.executions:
        print(f"{verb} {entry.machine}/{entry.name}  ({entry.status}, started {entry.started:%Y-%m-%d %H:%M})"
              if entry.started else f"{verb} {entry.machine}/{entry.name}  ({entry.status})")
    print(f"{verb} {len(report.executions)} execution(s), {len(report.jobs)} SageMaker job(s) with their folders, "
          f"{len(report.objects)} object(s) under runs/")
    if report.objects_in_use or report.jobs_in_use:
        print(f"kept in use: {len(report.objects_in_use)} object(s) and {len(report.jobs_in_use)} job(s) a model, "
              f"endpoint, model package or champion record still names")
        for uri in report.objects_in_use[:10]:
            print(f"  {uri}")
    if not args.dry_run:
        print(f"freed {size_text(report.freed)}")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    cln = sub.add_parser("clean", help="prune old executions, their job folders and run data")
    cln.add_argument("--keep", type=int, default=DEFAULT_KEEP,
                     help=f"executions to keep per state machine, newest first (default {DEFAULT_KEEP}); a running one always stays")
    cln.add_argument("--older-than", type=float, metavar="DAYS",
                     help="only remove executions that ended at least this many days ago")
    cln.add_argument("--dry-run", action="store_true", help="say what would go, remove nothing")
    cln.set_defaults(func=cmd_clean)
