"""Analysis of finished runs: rebuilding models, spectra and tidy tables (no training here)."""
