"""Benchmarks of the operator against the Job controller and the API server ceiling."""
