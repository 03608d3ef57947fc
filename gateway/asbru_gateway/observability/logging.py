"""Process logging: one format, and a filter that masks every known secret value in every record.

The gateway never logs a key on purpose; the filter is the belt to those braces, for the day an
exception message from a library quotes a header or a URL. ``register_secret`` is called for each
key value when a config is applied.
"""

from __future__ import annotations

import logging
import threading

_secrets: set[str] = set()
_lock = threading.Lock()
MASK = "***"


def register_secret(value: str) -> None:
    if len(value) >= 6:  # shorter strings would mask ordinary words
        with _lock:
            _secrets.add(value)


def redact(text: str) -> str:
    for secret in tuple(_secrets):
        if secret in text:
            text = text.replace(secret, MASK)
    return text


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if _secrets:
            message = record.getMessage()
            cleaned = redact(message)
            if record.exc_info and record.exc_info[1] is not None:
                record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
                record.exc_info = None
            if cleaned != message or record.args:
                record.msg, record.args = cleaned, None
        return True


def configure(level: str = "INFO") -> None:
    """Root handler with the redacting filter; uvicorn's loggers go through it too."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        # No line per request: `asbru serve` runs uvicorn with access_log=False, and this runs after
        # uvicorn applied that (in each worker's app factory), so it must not switch it back on.
        logging.getLogger(name).propagate = name != "uvicorn.access"
