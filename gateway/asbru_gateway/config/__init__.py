"""Configuration contract (``model``), its loaders and sources. Kubernetes-free except ``kube_source``."""
