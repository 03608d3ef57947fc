"""Pydantic models of the custom resources: the one source of truth for the CRD schemas.

``asbru_operator.crdgen`` turns them into structural OpenAPI v3 schemas (crds/*.yaml); the
renderers parse custom resources with the same models, so the schema the API server enforces and
the shape the operator reads cannot drift apart.
"""
