"""Offline runtime: runs the state machine `cdk synth` wrote, with every job executed locally."""
