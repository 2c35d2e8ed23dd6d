"""Every touch of uvicorn's private internals, and nowhere else."""
