"""Pure renderers: custom resources in, the gateway's config contract and Kubernetes objects out.

Nothing here does I/O or reads a clock implicitly; the handlers fetch, these functions compute, the
handlers write. Same input, same bytes, so every path is testable without a cluster.
"""
