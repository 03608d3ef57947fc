"""Serving the ASGI app: uvicorn with Asbru's HTTP protocol limits and its worker supervisor."""
