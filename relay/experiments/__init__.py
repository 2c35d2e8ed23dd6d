"""Experiment results: statistics over per-variation exposure and metric counts (stats.py)."""
