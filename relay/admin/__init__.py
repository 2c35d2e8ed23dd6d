"""The admin listener (`admin_listen`, 127.0.0.1:8031 by default): /api/v1 behind personal access tokens.

Layer "admin", above "server": routes/ (one module per resource), auth (bearer tokens, the per-node cache kept
current by pub/sub, the failed-auth limit), patch (RFC 7396 and RFC 6902), app (`create_admin_app`). Every
write goes through the write path (relay.store.writes), audited with the token's owner and id.
"""
