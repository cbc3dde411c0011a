"""Plotting helpers shared by every figure script (one style, one palette)."""
