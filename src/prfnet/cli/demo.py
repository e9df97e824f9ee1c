"""Placeholder: commands are registered here by the work in progress."""
