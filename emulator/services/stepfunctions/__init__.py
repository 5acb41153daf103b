"""Step Functions, locally: the deployed state machines (machines.py), executions started on
threads through an injected launcher and read back from their records (backend.py), the awsJson1_0
HTTP API (server.py), errors named after the API's codes (exceptions.py)."""
