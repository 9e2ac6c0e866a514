"""Sample bots on the SDK: a market maker, a momentum taker, an over-leveraged long.

Each is ``python -m clients.bots.NAME --account ACCT --broker mqtt://...``
(the API key and secret from ``--api-key`` / ``--secret`` or the
``PAPERX_API_KEY`` / ``PAPERX_SECRET`` environment), and each module's
``run`` coroutine takes a connected `clients.sdk.PaperxClient`, so tests and
demos can drive it on `clients.sdk.LoopbackExchange`.
"""
