"""Per-provider isolation: a bounded pool per provider, and the hot-swappable set of them."""
