"""Synthesize the CDK app when cdk.out is stale, and deploy the cloud assembly into the state folder."""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from emulator.aws.arns import DEFAULT_REGION
from emulator.cli.errors import CliError
from emulator.cli.progress import clip
from emulator.cloud.deploy import deploy
from emulator.cloud.deployment import Deployment

log = logging.getLogger("emulator.cli")

# Files and folders whose changes make cdk.out stale.
SYNTH_SOURCES = ("app.py", "cdk.json", "stacks", "lambdas", "processing_scripts", "containers")
SYNTH_STAMP = ".emulator-synth.json"
DEFAULT_STACK = "MlPipeline"  # cdk.json's stack_name
def parse_context(pairs: list[str] | None) -> dict[str, str]:
    context = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise CliError(f"-c {pair!r}: expected key=value (e.g. -c pipeline.target_column=rings)")
        context[key] = value
    return context


def _newest_source(project: Path) -> float:
    newest = 0.0
    for name in SYNTH_SOURCES:
        path = project / name
        if path.is_file():
            newest = max(newest, path.stat().st_mtime)
        elif path.is_dir():
            for file in path.rglob("*"):
                if file.is_file() and "__pycache__" not in file.parts and file.suffix != ".pyc":
                    newest = max(newest, file.stat().st_mtime)
    return newest


def outdir_for(context: dict[str, str]) -> str:
    """Each use case (stack) has its own cloud assembly: cdk.out for the default stack, cdk.out.<name>
    for one synthesized with ``-c stack_name=<name>``."""
    stack = context.get("stack_name")
    return f"cdk.out.{stack}" if stack and stack != DEFAULT_STACK else "cdk.out"


def _fingerprint(manifest: Path) -> list[int]:
    stat = manifest.stat()
    return [stat.st_mtime_ns, stat.st_size]


def staleness(project: Path, context: dict[str, str], outdir: str = "cdk.out") -> str | None:
    """Why the cloud assembly must be synthesized again, or None when it is current: missing,
    synthesized with other -c context (or by someone else, context unknown), older than a source."""
    manifest = project / outdir / "manifest.json"
    if not manifest.is_file():
        return f"no {outdir}/ yet"
    stamp_file = project / outdir / SYNTH_STAMP
    stamp = json.loads(stamp_file.read_text()) if stamp_file.is_file() else {}
    if stamp.get("manifest") != _fingerprint(manifest):
        return f"{outdir}/ was synthesized outside the emulator, with context it cannot know"
    if stamp.get("context") != context:
        return f"{outdir}/ was synthesized with other context ({stamp.get('context') or 'none'})"
    if manifest.stat().st_mtime < _newest_source(project):
        return "a source file changed since the last synth"
    return None


def is_stale(project: Path, context: dict[str, str], outdir: str = "cdk.out") -> bool:
    return staleness(project, context, outdir) is not None


def synth(project: Path, context: dict[str, str], *, outdir: str = "cdk.out") -> Path:
    """Run `npx cdk synth --quiet` in ``project`` with this interpreter's bin folder first on PATH."""
    npx = shutil.which("npx")
    if npx is None:
        raise CliError("npx not found: install Node.js (18+) and run `make setup` to get the pinned CDK CLI")
    # the app's jsii runtime otherwise prints a Node-version banner on every synth
    env = dict(os.environ, JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION="1",
               JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=os.environ.get("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20"))
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    command = [npx, "cdk", "synth", "--quiet", "--output", outdir]
    for key, value in context.items():
        command += ["-c", f"{key}={value}"]
    print(f"synth: {' '.join(command[1:])}", flush=True)
    started = time.monotonic()
    completed = subprocess.run(command, cwd=project, env=env, check=False)
    if completed.returncode != 0:
        raise CliError(f"`cdk synth` failed (exit {completed.returncode}); its output is above")
    stamp = {"context": context, "manifest": _fingerprint(project / outdir / "manifest.json")}
    (project / outdir / SYNTH_STAMP).write_text(json.dumps(stamp))
    print(f"synth: done in {time.monotonic() - started:.1f}s", flush=True)
    return project / outdir


def _region(project: Path, context: dict[str, str]) -> str:
    if "region" in context:
        return context["region"]
    cdk_json = project / "cdk.json"
    if cdk_json.is_file():
        region = (json.loads(cdk_json.read_text()).get("context") or {}).get("region")
        if isinstance(region, str):
            return region
    return os.environ.get("CDK_DEFAULT_REGION", DEFAULT_REGION)


def prepare(args: argparse.Namespace, context: dict[str, str]) -> Deployment:
    """Synth when stale (unless --assembly names a ready cloud assembly), then deploy locally."""
    project = args.project
    if args.assembly:
        assembly = Path(args.assembly).resolve()
    else:
        outdir = outdir_for(context)
        assembly = project / outdir
        why = staleness(project, context, outdir)
        if why:
            print(f"synth: {why}", flush=True)
            synth(project, context, outdir=outdir)
    region = _region(project, context)
    deployment = deploy(assembly, args.state_dir, region=region)
    print(f"deploy: {len(deployment.buckets)} bucket(s), {len(deployment.functions)} function(s), "
          f"{len(deployment.state_machines)} state machine(s), {len(deployment.rules)} rule(s), "
          f"{len(deployment.topics)} topic(s) -> {deployment.state_dir}", flush=True)
    print(clip(f"deploy: {deployment.not_emulated_line()}"), flush=True)
    local = f"python{sys.version_info.major}.{sys.version_info.minor}"
    others = sorted({fn.runtime for fn in deployment.functions if fn.runtime != local})
    if others:
        log.info("Lambda functions declare %s; they run locally on %s", ", ".join(others), local)
    return deployment
