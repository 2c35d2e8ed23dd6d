"""Every byte format relay reads or writes: the JSON codec, change messages, SDK payloads,
client-side and OFREP bodies, SSE framing, and the HTTP/1.1 framing relay writes itself."""
