"""Market specifications: symbol, tick and lot size, price and quantity limits.

A `Market` holds every size in E8 units (see `units`); the core works in ticks
(multiples of ``tick_size``) and lots (multiples of ``lot_size``). Defaults are
BTC-PERP and ETH-PERP with Binance USDⓈ-M's filters.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any, Literal

import msgspec

from exchange.margin.tiers import BTC_TIERS, DEFAULT_TIERS, TierTable
from exchange.units import PPM, SCALE, e8_str, from_e8, ppm_str, to_e8, to_ppm

__all__ = ["DEFAULT_MARKETS", "Market", "config_hash", "market_table"]


class Market(msgspec.Struct, frozen=True, kw_only=True):
    """One tradable market. Every size is an int of E8 units.

    Limits are inclusive: ``min_price <= price <= max_price`` and
    ``min_qty <= qty <= max_qty``; both are multiples of their tick / lot.
    Fees are ppm of the fill's value (Binance's defaults: maker 0.02%, taker
    0.05%; the liquidation clearance fee 0.5% of the liquidated notional).
    With ``partial_liquidation``, a position liquidated above the first tier
    is first cut down to the tier below, one tier per step, and keeps the
    rest while its margin holds (Binance's rule); without it, liquidation
    always closes the whole position. With ``funding`` off the market pays
    no funding (its windows still close; a what-if run can switch it off).
    With margin, market orders only trade within ``market_band`` of the mark
    (Binance's price protection): a thin book cannot fill them anywhere. One
    tick times one lot must be worth a whole number of E8 units, so every
    fill's value is exact. ``max_open_orders`` (0: no limit) caps each
    account's open orders in the market, as Binance's MAX_NUM_ORDERS filter
    does: an order that would stay open beyond it is refused
    (MAX_OPEN_ORDERS).
    """

    symbol: str
    tick_size: int
    lot_size: int
    min_price: int
    max_price: int
    min_qty: int
    max_qty: int
    maker_fee_ppm: int = 200
    taker_fee_ppm: int = 500
    mark_source: Literal["median", "index", "last"] = "median"
    liquidation_fee_ppm: int = 5000
    tiers: TierTable | None = None  # maintenance-margin tiers; None = the default
    market_band_ppm: int = 50_000  # market orders trade within mark +- 5%
    partial_liquidation: bool = True  # above tier 1: cut to the tier below first
    funding: bool = True  # pay funding every interval (False: never)
    max_open_orders: int = 0  # per account; 0 = no limit

    def __post_init__(self) -> None:
        """Refuse a market whose limits are not on its own grid or out of order."""
        if not self.symbol or self.tick_size <= 0 or self.lot_size <= 0:
            msg = f"{self.symbol!r}: symbol, tick_size and lot_size must be set"
            raise ValueError(msg)
        for name, value, step in (
            ("min_price", self.min_price, self.tick_size),
            ("max_price", self.max_price, self.tick_size),
            ("min_qty", self.min_qty, self.lot_size),
            ("max_qty", self.max_qty, self.lot_size),
        ):
            if value <= 0 or value % step:
                msg = f"{self.symbol}: {name} must be a positive multiple of its step"
                raise ValueError(msg)
        if self.min_price > self.max_price or self.min_qty > self.max_qty:
            msg = f"{self.symbol}: a minimum exceeds its maximum"
            raise ValueError(msg)
        if self.tick_size * self.lot_size % SCALE:
            msg = (
                f"{self.symbol}: one tick x one lot must be worth a whole number "
                "of 1e-8 units"
            )
            raise ValueError(msg)
        if not 0 <= self.maker_fee_ppm <= PPM or not 0 <= self.taker_fee_ppm <= PPM:
            msg = f"{self.symbol}: fees must be between 0 and 100%"
            raise ValueError(msg)
        if type(self.partial_liquidation) is not bool:  # "false" would be truthy
            msg = f"{self.symbol}: partial_liquidation must be true or false"
            raise ValueError(msg)
        if type(self.funding) is not bool:
            msg = f"{self.symbol}: funding must be true or false"
            raise ValueError(msg)
        if type(self.max_open_orders) is not int or self.max_open_orders < 0:
            msg = f"{self.symbol}: max_open_orders must be an integer, 0 or more"
            raise ValueError(msg)

    @classmethod
    def from_decimals(
        cls,
        symbol: str,
        *,
        tick_size: Decimal | str,
        lot_size: Decimal | str,
        min_price: Decimal | str | None = None,
        max_price: Decimal | str = "1000000",
        min_qty: Decimal | str | None = None,
        max_qty: Decimal | str = "1000",
        maker_fee: Decimal | str = "0.0002",
        taker_fee: Decimal | str = "0.0005",
        mark_source: Literal["median", "index", "last"] = "median",
        liquidation_fee: Decimal | str = "0.005",
        tiers: TierTable | None = None,
        market_band: Decimal | str = "0.05",
        partial_liquidation: bool = True,
        funding: bool = True,
        max_open_orders: int = 0,
    ) -> Market:
        """Build a market from decimal sizes and fee fractions.

        Minimums default to one tick / lot; fees are fractions ("0.0002" =
        0.02%) with at most 6 decimals.
        """
        if mark_source not in ("median", "index", "last"):
            msg = f"{symbol}: mark_source must be median, index or last"
            raise ValueError(msg)
        return cls(
            mark_source=mark_source,
            liquidation_fee_ppm=to_ppm(liquidation_fee),
            tiers=tiers,
            market_band_ppm=to_ppm(market_band),
            partial_liquidation=partial_liquidation,
            funding=funding,
            max_open_orders=max_open_orders,
            maker_fee_ppm=to_ppm(maker_fee),
            taker_fee_ppm=to_ppm(taker_fee),
            symbol=symbol,
            tick_size=to_e8(tick_size),
            lot_size=to_e8(lot_size),
            min_price=to_e8(min_price if min_price is not None else tick_size),
            max_price=to_e8(max_price),
            min_qty=to_e8(min_qty if min_qty is not None else lot_size),
            max_qty=to_e8(max_qty),
        )

    @classmethod
    def from_mapping(cls, symbol: str, spec: Mapping[str, Any]) -> Market:
        """Build a market from a TOML table of decimal strings (or numbers)."""
        unknown = set(spec) - {
            "tick_size",
            "lot_size",
            "min_price",
            "max_price",
            "min_qty",
            "max_qty",
            "maker_fee",
            "taker_fee",
            "mark_source",
            "liquidation_fee",
            "tiers",
            "market_band",
            "partial_liquidation",
            "funding",
            "max_open_orders",
        }
        if unknown:
            msg = f"market {symbol}: unknown keys {sorted(unknown)}"
            raise ValueError(msg)
        rows = spec.get("tiers")
        tiers = None if rows is None else TierTable.from_rows(rows)
        decimals = {
            k: str(v)
            for k, v in spec.items()
            if k not in ("tiers", "partial_liquidation", "funding", "max_open_orders")
        }
        # from_decimals validates mark_source itself (a clear ValueError)
        return cls.from_decimals(
            symbol,
            tiers=tiers,
            partial_liquidation=spec.get("partial_liquidation", True),
            funding=spec.get("funding", True),
            max_open_orders=spec.get("max_open_orders", 0),
            **decimals,  # type: ignore[arg-type]
        )

    def tier_table(self) -> TierTable:
        """Return the market's tiers: its own, else the default for its symbol."""
        if self.tiers is not None:
            return self.tiers
        return DEFAULT_TIERS.get(self.symbol, BTC_TIERS)

    def price_decimal(self, ticks: int) -> Decimal:
        """Return a price in ticks as a Decimal."""
        return from_e8(ticks * self.tick_size)

    def qty_decimal(self, lots: int) -> Decimal:
        """Return a quantity in lots as a Decimal."""
        return from_e8(lots * self.lot_size)

    def as_mapping(self) -> dict[str, Any]:
        """Return the TOML-shaped table of decimal strings (inverse of from_mapping)."""
        table: dict[str, Any] = {
            "tick_size": e8_str(self.tick_size),
            "lot_size": e8_str(self.lot_size),
            "min_price": e8_str(self.min_price),
            "max_price": e8_str(self.max_price),
            "min_qty": e8_str(self.min_qty),
            "max_qty": e8_str(self.max_qty),
            "maker_fee": ppm_str(self.maker_fee_ppm),
            "taker_fee": ppm_str(self.taker_fee_ppm),
            "mark_source": self.mark_source,
            "liquidation_fee": ppm_str(self.liquidation_fee_ppm),
            "market_band": ppm_str(self.market_band_ppm),
            "partial_liquidation": self.partial_liquidation,
        }
        if self.tiers is not None:
            table["tiers"] = self.tiers.as_rows()
        if not self.funding:  # only when off: older journals' hashes stay
            table["funding"] = False
        if self.max_open_orders:  # likewise only when set
            table["max_open_orders"] = self.max_open_orders
        return table


DEFAULT_MARKETS: tuple[Market, ...] = (
    Market.from_decimals(
        "BTC-PERP",
        tick_size="0.1",
        lot_size="0.001",
        min_price="0.1",
        max_price="4529764",
        max_qty="1000",
    ),
    Market.from_decimals(
        "ETH-PERP",
        tick_size="0.01",
        lot_size="0.001",
        min_price="0.01",
        max_price="306177",
        max_qty="10000",
    ),
)


def market_table(markets: Iterable[Market]) -> dict[str, dict[str, Any]]:
    """Return markets as a canonical plain table (symbol -> decimal strings)."""
    return {m.symbol: m.as_mapping() for m in sorted(markets, key=lambda m: m.symbol)}


def config_hash(markets: Iterable[Market]) -> str:
    """Return the sha256 hex digest of the canonical market table."""
    return hashlib.sha256(msgspec.msgpack.encode(market_table(markets))).hexdigest()
