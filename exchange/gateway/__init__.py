"""The gateway: the wire format, request signing and the transport-neutral session.

`Session` decodes, authenticates and validates what a bot sends and maps it to
core commands; it maps the core's events back to per-account answers and
public market data. Transports (MQTT now, a Binance-compatible REST and
WebSocket API next) are thin adapters on it.
"""
