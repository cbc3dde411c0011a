"""Models: sequence models for irregular time series (A.1) and classifiers (A.2), each behind a registry."""
