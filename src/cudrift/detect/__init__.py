"""Drift detection: the detector, its test policy, corrections and reports."""
