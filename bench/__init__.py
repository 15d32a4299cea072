"""Benchmarks: each compares this project's path with the original workshop's, side by side."""
