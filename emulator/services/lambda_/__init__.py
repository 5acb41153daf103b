"""Lambda, locally: deployed functions (functions.py), each invocation a process (invoke.py) that
runs the real handler through bootstrap.py."""
