"""The client-facing HTTP API: raw ASGI handlers, one module per resource.

Raw ASGI rather than FastAPI on purpose, measured on this machine (wrk, one core, same mock):
raw ASGI + aiohttp 2,860 JSON RPS at c=16, FastAPI + aiohttp 1,667 (58%), FastAPI + pydantic
models 1,029. The gateway's target is >= 70% of the raw floor, which FastAPI alone rules out.
"""
