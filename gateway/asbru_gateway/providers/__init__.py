"""Providers: pure translators per provider type, one registry, one shared HTTP execution path."""
