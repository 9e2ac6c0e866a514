"""Stable reject codes: one numeric range per pipeline stage, never renumbered.

Ranges: 1xxx wire and validation, 2xxx auth and signature, 3xxx risk and margin,
4xxx matching and order state, 5xxx account and settings, 9xxx overload and
internal. A retired code stays here as a comment; a number is never reused.
Where Binance USDⓈ-M has an equivalent error, its code is noted beside ours.
"""

from __future__ import annotations

from enum import IntEnum

__all__ = ["Refusal", "RejectCode"]


class RejectCode(IntEnum):
    """Why a command was refused. Both the number and the name go on the wire."""

    # 1xxx: wire and validation (the command is malformed or out of bounds)
    MALFORMED = 1001  # undecodable payload, wrong type, unknown field (-1102)
    UNKNOWN_SYMBOL = 1002  # (-1121)
    INVALID_QUANTITY = 1003  # zero or negative quantity (-4003)
    QTY_OUT_OF_RANGE = 1004  # outside the market's min/max quantity (-4005)
    OFF_LOT = 1005  # not a multiple of the lot size (-1013 LOT_SIZE)
    INVALID_PRICE = 1006  # zero or negative price (-4001)
    PRICE_OUT_OF_RANGE = 1007  # outside the market's min/max price (-4016)
    OFF_TICK = 1008  # not a multiple of the tick size (-1013 PRICE_FILTER)
    PRICE_REQUIRED = 1009  # limit order without a price (-1102)
    PRICE_NOT_ALLOWED = 1010  # market order with a price (-1106)
    TRIGGER_REQUIRED = 1011  # stop / take-profit without a trigger price
    TRIGGER_NOT_ALLOWED = 1012  # trigger price on a plain order (-1106)
    INVALID_FLAGS = 1013  # contradictory flags, e.g. post-only with IOC (-1116)
    INVALID_CLIENT_ORDER_ID = 1014  # empty where required, or too long (-4015)
    TOO_PRECISE = 1015  # more decimals than the exchange's fixed unit (-1111)
    INVALID_ACCOUNT = 1016  # empty or malformed account id
    BATCH_TOO_LARGE = 1017  # a batch holds more commands than allowed (-1130)
    PAYLOAD_TOO_LARGE = 1018  # a wire message longer than the gateway reads

    # 2xxx: auth and signature (the gateway's own checks, before the core)
    SIGNATURE_MISSING = 2001  # an unsigned request (-1022)
    BAD_SIGNATURE = 2002  # the HMAC does not match the account's secret (-1022)
    STALE_TIMESTAMP = 2003  # outside the request's receive window (-1021)
    UNKNOWN_ACCOUNT = 2004  # the account has no API credentials (-2015)

    # 3xxx: risk and margin
    INSUFFICIENT_MARGIN = 3001  # the order's margin exceeds the free balance (-2019)
    REDUCE_ONLY_REJECTED = 3002  # a reduce-only order would not reduce (-2022)
    POSITION_LIMIT = 3003  # the position would exceed its tier at this leverage (-2027)
    INSUFFICIENT_BALANCE = 3004  # withdraw or margin transfer beyond the free balance
    MARGIN_BELOW_INITIAL = 3005  # removing margin would leave less than the IM (-4051)
    ORDER_MARGIN_LIMIT = 3006  # the account's own max-margin-per-order limit
    DAILY_LOSS_LIMIT = 3007  # the account's own daily loss limit was reached

    # 4xxx: matching and order state
    UNKNOWN_ORDER = 4001  # no such open order for this account (-2011)
    FOK_NOT_FILLED = 4002  # fill-or-kill could not fill whole (-5021)
    POST_ONLY_WOULD_TAKE = 4003  # post-only would have taken liquidity (-5022)
    WOULD_TRIGGER_IMMEDIATELY = 4004  # stop already past its trigger (-2021)
    DUPLICATE_CLIENT_ORDER_ID = 4005  # client id in use by an open order (-4116)
    AMEND_NO_CHANGE = 4006  # amend would not change the order (-5027)
    NOT_AMENDABLE = 4007  # only resting limit orders can be amended (-4028)
    MAX_OPEN_ORDERS = 4008  # the account's open orders in a market at its limit (-2025)

    # 5xxx: account and settings
    MODE_CHANGE_WITH_POSITION = 5001  # margin mode change with a position (-4048)
    MODE_CHANGE_WITH_ORDERS = 5002  # margin mode change with open orders (-4047)
    INVALID_LEVERAGE = 5003  # leverage outside 1..the tier's maximum (-4028)
    NO_ISOLATED_POSITION = 5004  # margin adjustment needs an isolated position (-4046)
    INVALID_AMOUNT = 5005  # zero or negative amount where a positive one is needed
    MARGIN_DISABLED = 5006  # this exchange runs without the margin ledger
    LEVERAGE_WITH_ORDERS = 5007  # lowering leverage while orders hold margin

    # 9xxx: overload and internal
    OVERLOADED = 9001  # the exchange's intake queue is full: retry later (-1008)
    INTERNAL = 9002  # a bug in the exchange answered instead of crashing (-1000)
    RATE_LIMITED = 9003  # over the account's request rate: retry after (-1003)
    INJECTED_REJECT = 9004  # refused on purpose by the venue's stress settings


class Refusal:
    """Why a command is refused: a stable code and a reason a human can act on.

    Checks return one instead of raising, so that a refusal is a value the
    core turns into a reject event, having changed nothing.
    """

    __slots__ = ("code", "reason")

    def __init__(self, code: RejectCode, reason: str) -> None:
        """Keep the code and the reason."""
        self.code = code
        self.reason = reason
