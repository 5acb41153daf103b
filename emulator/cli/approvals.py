"""`python -m emulator approve|reject [EXECUTION]`: answer the task token an execution waits on at
its approval state (SendTaskSuccess / SendTaskFailure ModelRejected), from any shell, with or
without a running `serve`: the token's record is on disk, the waiting process picks the answer up."""

from __future__ import annotations

import argparse
import getpass
import json

from emulator.cli.errors import CliError
from emulator.services.stepfunctions.tokens import TaskTokens
from emulator.storage.layout import Layout

REJECTED = "ModelRejected"  # the error the training pipeline's approval state catches


def waiting_token(layout: Layout, execution: str | None) -> dict:
    """The one token waiting for ``execution`` (its name or ARN), or the only one waiting at all."""
    waiting = TaskTokens(layout.stepfunctions_records).waiting()
    if execution:
        waiting = [r for r in waiting if execution in (r["executionArn"], r["executionName"])]
    if len(waiting) == 1:
        return waiting[0]
    if not waiting:
        where = f"execution {execution!r}" if execution else f"any execution in {layout.root}"
        raise CliError(f"no task token waits for {where}: is it at its approval state (`aws stepfunctions "
                       f"describe-execution`)? An answered or timed-out approval cannot be answered again.")
    listed = "\n  ".join(f"{r['executionArn']} (state {r['stateName']!r})" for r in waiting)
    raise CliError(f"several executions wait for an answer; name one:\n  {listed}")


def cmd_approve(args: argparse.Namespace) -> int:
    layout = Layout.at(args.state_dir)
    record = waiting_token(layout, args.execution)
    tokens = TaskTokens(layout.stepfunctions_records)
    reviewer = args.reviewer or getpass.getuser()
    if args.command == "approve":
        tokens.send_success(record["token"], json.dumps({"decision": "Approved", "reviewer": reviewer,
                                                         "reason": args.reason or "approved"}))
        print(f"approved: {record['executionArn']} continues from {record['stateName']!r}")
    else:
        tokens.send_failure(record["token"], REJECTED, args.reason or f"rejected by {reviewer}")
        print(f"rejected: {record['executionArn']} fails with {REJECTED}")
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:
    for name, verb in (("approve", "approve the model an execution waits on (SendTaskSuccess)"),
                       ("reject", f"reject it: the execution fails with {REJECTED} (SendTaskFailure)")):
        parser = sub.add_parser(name, help=verb)
        parser.add_argument("execution", nargs="?", help="the execution's name or ARN (default: the only one waiting)")
        parser.add_argument("--reason", help="why (recorded as the cause or in the task's output)")
        parser.add_argument("--reviewer", help="who decided (default: the current user)")
        parser.set_defaults(func=cmd_approve)
