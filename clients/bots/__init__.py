"""Sample bots on the SDK, each a short example of one way to trade.

* `market_maker`: quotes both sides around the mark, skewed by inventory;
* `trend`: a leveraged trend follower, isolated or cross;
* `noise`: random small market orders, the crowd;
* `lottery`: high-leverage isolated tickets that take profit or are liquidated;
* `hedger`: long one perpetual and short another under cross margin.

Each runs as ``paperx bot NAME --account ACCT --broker mqtt://...`` (the API
key and secret from ``--api-key`` / ``--secret`` or the ``PAPERX_API_KEY`` /
``PAPERX_SECRET`` environment), and each module's ``run`` coroutine takes a
connected `clients.sdk.PaperxClient`, so tests and the demo drive it on
`clients.sdk.LoopbackExchange` or over MQTT alike. What a bot does is logged
under ``clients.bots``.
"""

BOTS = {
    "market-maker": "clients.bots.market_maker",
    "trend": "clients.bots.trend",
    "noise": "clients.bots.noise",
    "lottery": "clients.bots.lottery",
    "hedger": "clients.bots.hedger",
}
"""The module of each bot, by its ``paperx bot NAME``."""
