"""Plugins: the hook protocols (``base``), the ordering contract (``pipeline``), built-ins."""
