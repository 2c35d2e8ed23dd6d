"""Thin HTTP handlers, one module per audience: sdk (server-side), ops (health, status, metrics)."""
