"""baselines (work in progress)."""
