"""The shell around the pure core: sequencer, facade, views, config and logging.

Everything here may do I/O and read clocks; nothing in `exchange.core`,
`exchange.engine` or `exchange.margin` imports it.
"""
