"""The management API: usage, remaining limits and the effective config, on a port of its own."""
