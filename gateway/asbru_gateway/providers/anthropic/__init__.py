"""Anthropic Messages API, translated both ways."""
