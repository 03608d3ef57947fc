"""Governance: virtual keys, rate limits, budgets and cost, exact across replicas (Redis) or in-process."""
