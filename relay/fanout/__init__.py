"""Changes to connected streams: the registry of streams, server-side events, evaluated client-side streams."""
