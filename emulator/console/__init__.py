"""The local web console: a client of the served AWS APIs (boto3 on the URLs `serve` prints), never of
the emulator's internals, so the page cannot show what the API would not."""
