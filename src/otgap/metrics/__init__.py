"""Metrics: forecast errors, chaos diagnostics and statistics across seeds."""
