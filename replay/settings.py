"""What a rerun may change: ``KEY=VALUE`` settings, parsed against a journal's markets.

Two kinds of setting, applied in two ways:

* **market settings** change the market table, so they go into the new
  journal's header (and its config hash), where a verify of the new journal
  finds them: ``maker_fee``, ``taker_fee``, ``liquidation_fee`` (fractions,
  ``0.0004`` = 0.04%), ``tiers`` (a TOML file of ``[[tiers]]`` rows, as in a
  markets file), ``funding`` and ``partial_liquidation`` (``on`` / ``off``).
  ``KEY=VALUE`` changes every market, ``KEY.SYMBOL=VALUE`` one.
* **account settings** change how commands apply, so they become commands:
  ``margin_mode`` (``isolated``, ``cross``, or ``flip``: the other one of
  what the account had) and ``leverage`` (from 1; the tiers cap it).
  ``KEY=VALUE`` is every account, ``KEY.ACCOUNT=VALUE`` one account in every
  market, ``KEY.SYMBOL=VALUE`` every account in one market, and
  ``KEY.ACCOUNT.SYMBOL=VALUE`` one of each; the most specific rule wins. How
  the rerun turns them into commands is `replay.rerun_changed`'s business.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from exchange.errors import ConfigError
from exchange.margin.tiers import TierTable
from exchange.markets import Market
from exchange.messages import MarginMode

__all__ = ["SETTING_KEYS", "AccountRule", "RerunSettings", "parse_settings"]

_MARKET_KEYS = {
    "maker_fee": "fraction",
    "taker_fee": "fraction",
    "liquidation_fee": "fraction",
    "tiers": "file",
    "funding": "switch",
    "partial_liquidation": "switch",
}
_ACCOUNT_KEYS = ("margin_mode", "leverage")
SETTING_KEYS = (*_ACCOUNT_KEYS, *_MARKET_KEYS)
"""Every key ``--set`` knows."""

_SWITCHES = {"on": True, "true": True, "off": False, "false": False}

ModeValue = Literal["isolated", "cross", "flip"]


@dataclass(frozen=True)
class AccountRule:
    """One account setting: whom it is for (None: everyone) and its value."""

    account: str | None
    symbol: str | None
    value: str | int

    def specificity(self) -> int:
        """Return how specific the rule is: account and symbol 3, none 0."""
        return 2 * (self.account is not None) + (self.symbol is not None)

    def matches(self, account: str, symbol: str) -> bool:
        """Return whether the rule is for ``account`` in ``symbol``."""
        return self.account in {None, account} and self.symbol in {None, symbol}


def _winner(rules: list[AccountRule], account: str, symbol: str) -> AccountRule | None:
    """Return the most specific rule for the pair, or None."""
    found = [r for r in rules if r.matches(account, symbol)]
    return max(found, key=AccountRule.specificity) if found else None


@dataclass
class RerunSettings:
    """Parsed settings: market changes, and margin-mode and leverage rules."""

    texts: list[str] = field(default_factory=list)
    market_changes: dict[str | None, dict[str, Any]] = field(default_factory=dict)
    modes: list[AccountRule] = field(default_factory=list)
    leverages: list[AccountRule] = field(default_factory=list)

    @property
    def changes_accounts(self) -> bool:
        """Return whether any account setting (mode, leverage) is given."""
        return bool(self.modes or self.leverages)

    def markets(self, markets: list[Market]) -> list[Market]:
        """Return ``markets`` with the market settings applied, in their order.

        Raises:
            ConfigError: if a changed market is not valid (e.g. a fee > 100%).
        """
        out = []
        for market in markets:
            table = market.as_mapping()
            for scope in (None, market.symbol):  # the per-market value wins
                table.update(self.market_changes.get(scope, {}))
            try:
                out.append(Market.from_mapping(market.symbol, table))
            except ValueError as exc:
                msg = f"market {market.symbol} with {self.texts}: {exc}"
                raise ConfigError(msg) from exc
        return out

    def mode(self, account: str, symbol: str, had: MarginMode) -> MarginMode:
        """Return the mode ``account`` runs ``symbol`` in, given the recorded one."""
        rule = _winner(self.modes, account, symbol)
        if rule is None:
            return had
        if rule.value == "flip":
            return "cross" if had == "isolated" else "isolated"
        return "cross" if rule.value == "cross" else "isolated"

    def leverage(self, account: str, symbol: str, had: int) -> int:
        """Return ``account``'s leverage in ``symbol``, given the recorded one."""
        rule = _winner(self.leverages, account, symbol)
        return had if rule is None else int(rule.value)


def parse_settings(
    texts: list[str], symbols: list[str], base: Path | None = None
) -> RerunSettings:
    """Parse ``KEY=VALUE`` texts (module doc) for a journal trading ``symbols``.

    ``base`` is the directory relative tier-file paths start from (default:
    the working directory).

    Raises:
        ConfigError: for an unknown key, symbol or value, or a bad tier file.
    """
    settings = RerunSettings(texts=list(texts))
    for text in texts:
        key, sep, value = text.partition("=")
        if not sep or not value:
            msg = (
                f"--set {text!r}: expected KEY=VALUE (keys: {', '.join(SETTING_KEYS)})"
            )
            raise ConfigError(msg)
        name, _, scope = key.strip().partition(".")
        value = value.strip()
        if name in _ACCOUNT_KEYS:
            rule = _account_rule(text, name, scope, value, symbols)
            (settings.modes if name == "margin_mode" else settings.leverages).append(
                rule
            )
        elif name in _MARKET_KEYS:
            if scope and scope not in symbols:
                msg = f"--set {text!r}: unknown symbol {scope!r} (journal: {symbols})"
                raise ConfigError(msg)
            change = settings.market_changes.setdefault(scope or None, {})
            change[name] = _market_value(text, name, value, base)
        else:
            keys = ", ".join(SETTING_KEYS)
            msg = f"--set {text!r}: unknown key {name!r} (keys: {keys})"
            raise ConfigError(msg)
    return settings


def _account_rule(
    text: str, name: str, scope: str, value: str, symbols: list[str]
) -> AccountRule:
    """Return the rule of ``margin_mode`` / ``leverage`` [.ACCOUNT][.SYMBOL]."""
    account: str | None = scope or None
    symbol: str | None = None
    if scope in symbols:
        account, symbol = None, scope
    elif "." in scope:
        head, _, tail = scope.rpartition(".")
        if tail in symbols:
            account, symbol = head, tail
    if name == "margin_mode":
        if value not in {"isolated", "cross", "flip"}:
            msg = f"--set {text!r}: margin_mode is isolated, cross or flip"
            raise ConfigError(msg)
        return AccountRule(account, symbol, value)
    if not value.isdigit() or int(value) < 1:
        msg = f"--set {text!r}: leverage is a whole number from 1 (the tiers cap it)"
        raise ConfigError(msg)
    return AccountRule(account, symbol, int(value))


def _market_value(text: str, name: str, value: str, base: Path | None) -> object:
    """Return a market setting's value as a market table holds it."""
    kind = _MARKET_KEYS[name]
    if kind == "switch":
        if value.lower() not in _SWITCHES:
            msg = f"--set {text!r}: {name} is on or off"
            raise ConfigError(msg)
        return _SWITCHES[value.lower()]
    if kind == "fraction":
        return value  # a decimal string: Market.from_mapping checks it
    path = Path(value) if base is None else base / value
    try:
        rows = tomllib.loads(path.read_text(encoding="utf-8")).get("tiers")
        if not isinstance(rows, list):
            msg = "the file holds no [[tiers]] rows"
            raise TypeError(msg)  # noqa: TRY301 -- reported with the others below
        return TierTable.from_rows(rows).as_rows()
    except (OSError, tomllib.TOMLDecodeError, TypeError, ValueError) as exc:
        msg = f"--set {text!r}: tier file {path}: {exc}"
        raise ConfigError(msg) from exc
