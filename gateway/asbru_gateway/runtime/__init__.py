"""The live gateway (``gateway``: snapshots and how they change) and the request engine (``engine``)."""
