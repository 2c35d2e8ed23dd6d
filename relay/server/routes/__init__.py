"""The SDK-facing HTTP routes, one module per audience."""
