"""Asbru's Kubernetes operator: custom resources in, gateway config and Deployments out."""
