"""Provider translator tests: bytes in, bytes out (plus the fakes checked against official SDKs)."""
