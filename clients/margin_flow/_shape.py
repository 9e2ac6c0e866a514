"""The margin workload's shape: the knobs of its accounts, index, takers and makers."""

from __future__ import annotations

import msgspec


class MarginShape(msgspec.Struct, frozen=True, kw_only=True):
    """The knobs of the workload (package doc); every range is inclusive."""

    accounts: int = 2_000
    makers: int = 8
    hours: int = 26
    index_every: int = 25  # flow commands between index updates
    legs: int = 8  # index legs per market over the run
    move_ppm: tuple[int, int] = (20_000, 50_000)  # each leg moves the index 2-5 %
    noise_ppm: int = 100  # index noise per update (standard deviation)
    gap_share: float = 0.35  # legs that jump at once with the makers pulled
    p_isolated: float = 0.5
    leverage: tuple[int, int] = (5, 20)  # takers' effective leverage
    deposit: tuple[int, int] = (100, 2_000)  # takers' deposits, USDT, log-uniform
    activity: float = 0.7  # Zipf exponent of takers' activity
    hold: float = 0.6  # mean holding time, in legs
    p_stop: float = 0.6  # positions opened with a stop-loss
    p_take_profit: float = 0.3  # positions opened with a take-profit
    stop_ppm: tuple[int, int] = (10_000, 40_000)  # stop-loss distance
    p_ioc: float = 0.3  # opening and closing orders sent as IOC limits
    p_partial: float = 0.25  # of actions on an open position: close half
    p_trail: float = 0.35  # move the stop
    p_add_margin: float = 0.1  # add isolated margin
    p_leverage: float = 0.02  # of a flat taker's actions: change leverage
    maker_deposit: int = 50_000_000  # USDT
    maker_leverage: int = 10
    levels: int = 5
    level_notional: int = 200_000  # USDT per maker level
    half_spread_ppm: int = 100
    level_step_ppm: int = 200
    requote_ppm: tuple[int, int] = (300, 1_200)  # makers' re-quote thresholds
    maker_limit: int = 3_000_000  # USDT of the crowd's net a maker fully skews at
    btc_share: float = 0.6  # of positions opened in the first market

    def __post_init__(self) -> None:
        """Refuse a shape the generator cannot honour."""
        if not 0 < self.makers < self.accounts:
            msg = "a margin flow needs at least one maker and one taker"
            raise ValueError(msg)
        if self.index_every <= 0 or self.legs <= 0 or self.hours <= 0:
            msg = "index_every, legs and hours must be positive"
            raise ValueError(msg)
