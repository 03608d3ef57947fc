"""Generate the CRD manifests from the pydantic models: ``python -m asbru_operator.crdgen``."""
