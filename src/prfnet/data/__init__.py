"""data (work in progress)."""
