"""The HTTP serving stack of every local container and endpoint: an ASGI app over uvicorn workers."""
