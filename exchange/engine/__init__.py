"""The matching engine: books, matching rules, triggers, order validation and entry.

Pure: no clock, no I/O. The core (`exchange.core`) owns it and feeds it records.
"""
