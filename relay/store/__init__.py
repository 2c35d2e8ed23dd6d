"""Redis: I/O, the one write path, sync into in-memory rulesets, the embedded Redis."""
