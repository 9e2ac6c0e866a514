"""The margin ledger: tiers, accounts, settlement, mark, funding and liquidation.

Pure: no clock, no I/O. The core (`exchange.core`) owns it and feeds it fills.
"""
