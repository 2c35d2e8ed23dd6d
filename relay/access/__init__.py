"""Who may do what: environments' keys, secure mode, sealing and personal access tokens."""
