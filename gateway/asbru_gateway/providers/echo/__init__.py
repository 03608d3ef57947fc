"""The built-in ``echo`` provider: answers in-process, so a new install serves a request offline."""
