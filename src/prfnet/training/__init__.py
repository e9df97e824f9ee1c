"""training (work in progress)."""
