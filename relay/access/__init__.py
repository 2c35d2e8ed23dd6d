"""Who may do what: environments and their keys, secure mode, sealing and personal access tokens."""
