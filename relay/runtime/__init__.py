"""Process-wide runtime policy: garbage-collector policy and logging."""
