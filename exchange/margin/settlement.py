"""Settlement: where money moves, and the only place it does.

`Settlement` keeps every account's wallet and positions, the insurance fund,
fees collected and bad debt, and moves money between them: a fill (both
sides, fees, realized PnL, isolated buckets), a fee-free transfer
(auto-deleveraging), a payment to the insurance fund. A balance that would go
negative is covered by the fund (what the fund cannot cover is bad debt); so
no balance is ever negative and the money identity of `exchange.margin.accounts`
holds after every change. The `exchange.margin.ledger.Ledger` that owns it
decides the policy: account commands, the pre-trade check, order margin and
funding.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from exchange.margin.accounts import (
    Account,
    FillEffect,
    Position,
    apply_fill,
)
from exchange.margin.market_margin import MarketMargin
from exchange.messages import (
    BalanceChanged,
    Event,
    InsuranceFundChanged,
    OrderFilled,
    PositionChanged,
)

if TYPE_CHECKING:
    from exchange.markets import Market

__all__ = ["Settlement"]


class Settlement:
    """Every account's money and positions, and the insurance fund and fees."""

    def __init__(self, markets: Iterable[Market]) -> None:
        """Create an empty ledger for ``markets`` (each with its tier table)."""
        self.markets: dict[str, MarketMargin] = {
            market.symbol: MarketMargin(market, market.tier_table())
            for market in markets
        }
        self.accounts: dict[str, Account] = {}
        self.insurance_fund = 0
        self.fees_collected = 0
        self.bad_debt = 0  # losses beyond a wallet that the fund could not cover
        self.deposits = 0
        self.withdrawals = 0
        # Accounts whose wallet or positions changed in the current record: the
        # liquidation check looks at them (and at marks that moved), nothing else.
        self.dirty: dict[str, None] = {}
        # Account -> (symbol, side) of the fills that closed lots of its
        # position since its resting orders were last fitted (`exchange.
        # resting`). A buy's opening part is its whole quantity while the
        # position is flat or long and grows only as a short shrinks (a sell's
        # likewise), and nothing else changes it (leverage only rises while
        # orders rest), so only orders of the side of a fill that closed lots
        # can have come to need more margin than they hold.
        self.moved: dict[str, set[tuple[str, bool]]] = {}
        self.day = 0  # the exchange day (UTC) of the record being applied

    def account(self, name: str) -> Account:
        """Return an account, created empty on first use."""
        account = self.accounts.get(name)
        if account is None:
            account = self.accounts[name] = Account(name, len(self.accounts))
        return account

    def cross_totals(self, account: Account) -> tuple[int, int, int]:
        """Return (cross UPNL, cross initial margin, cross maintenance margin)."""
        upnl = im = mm = 0
        for position in account.positions.values():
            if position.size and position.mode == "cross":
                risk = self.markets[position.symbol]
                notional = risk.notional(position.size)
                upnl += risk.upnl(position)
                im += risk.tiers.initial_margin(notional, position.leverage)
                mm += risk.tiers.maintenance_margin(notional)
        return upnl, im, mm

    def available(self, account: Account) -> int:
        """Return the free balance that new orders, withdrawals and transfers use."""
        return self.cross_backing(account) - account.order_margin

    def cross_backing(self, account: Account) -> int:
        """Return the wallet less the cross positions' losses and initial margin.

        What open orders may hold and fills may take; open orders' margin
        comes off it to give `available`.
        """
        # cross_totals' sums less the maintenance margin, which this never needs
        upnl = im = 0
        markets = self.markets
        for position in account.positions.values():
            if position.size and position.mode == "cross":
                risk = markets[position.symbol]
                upnl += risk.upnl(position)
                im += risk.tiers.initial_margin(
                    risk.notional(position.size), position.leverage
                )
        return account.wallet + min(0, upnl) - im

    def cross_upnl_mm(self, account: Account) -> tuple[int, int, int]:
        """Return (cross UPNL, cross maintenance margin, cross positions held)."""
        upnl = mm = held = 0
        markets = self.markets
        for position in account.positions.values():
            if position.size and position.mode == "cross":
                risk = markets[position.symbol]
                upnl += risk.upnl(position)
                mm += risk.tiers.maintenance_margin(risk.notional(position.size))
                held += 1
        return upnl, mm, held

    def settle(self, seq: int, fill: OrderFilled, events: list[Event]) -> None:
        """Book one fill (already carrying its fees) for both sides."""
        risk = self.markets[fill.symbol]
        value = risk.fill_value(fill.qty, fill.price)
        risk.on_trade(fill.price)
        taker_buys = fill.taker_side == "buy"
        self._settle_side(
            seq,
            risk,
            fill.taker_account,
            taker_buys,
            fill.qty,
            value,
            fill.taker_fee,
            events,
        )
        self._settle_side(
            seq,
            risk,
            fill.maker_account,
            not taker_buys,
            fill.qty,
            value,
            fill.maker_fee,
            events,
        )

    def settle_transfer(
        self,
        seq: int,
        symbol: str,
        ticks: int,
        lots: int,
        *,
        seller: str,
        buyer: str,
        events: list[Event],
    ) -> None:
        """Book a fee-free transfer of ``lots`` at ``ticks`` (auto-deleveraging)."""
        risk = self.markets[symbol]
        value = risk.fill_value(lots, ticks)
        self._settle_side(seq, risk, seller, False, lots, value, 0, events)  # noqa: FBT003
        self._settle_side(seq, risk, buyer, True, lots, value, 0, events)  # noqa: FBT003

    def transfer_to_fund(
        self, seq: int, account: Account, amount: int, reason: str, events: list[Event]
    ) -> None:
        """Move ``amount`` (E8, >= 0) from a cross wallet to the insurance fund."""
        if amount <= 0:
            return
        self.move_wallet(seq, account, -amount, "liquidation", events)
        self.move_fund(seq, amount, reason, events, account.name)

    def _settle_side(
        self,
        seq: int,
        risk: MarketMargin,
        name: str,
        is_buy: bool,
        lots: int,
        value: int,
        fee: int,
        events: list[Event],
    ) -> None:
        """Apply one side of a fill to its position and wallets."""
        account = self.account(name)
        symbol = risk.market.symbol
        position = account.position(symbol)
        self.fees_collected += fee
        effect = apply_fill(position, 1 if is_buy else -1, lots, value)
        if effect.closed:  # it shrank the other side: see `moved`
            moved = self.moved.get(name)
            if moved is None:
                self.moved[name] = {(symbol, is_buy)}
            else:
                moved.add((symbol, is_buy))
        account.book_day(self.day, effect.realized - fee)
        if position.mode == "cross":
            self.move_wallet(seq, account, effect.realized - fee, "trade", events)
        else:
            # A flip's opening part pays its share of the fee from the wallet,
            # as an opening fill does: the closed lots' bucket share only
            # answers for their own fee (else a big flip out of a small
            # position would charge the whole fee to a small bucket).
            open_fee = fee * effect.opened // lots if effect.closed else fee
            self._settle_isolated(
                seq,
                account,
                position,
                effect.realized - (fee - open_fee),
                effect,
                value * effect.opened // lots,
                open_fee,
                events,
            )
        self.report_position(seq, position, effect.realized, fee, events)

    def _settle_isolated(
        self,
        seq: int,
        account: Account,
        position: Position,
        pnl: int,
        effect: FillEffect,
        opened_value: int,
        open_fee: int,
        events: list[Event],
    ) -> None:
        """Move PnL, released margin and new initial margin of an isolated fill.

        Opening or growing: the fee (``open_fee``) is paid from the cross
        wallet and the initial margin moves from it into the bucket. Reducing:
        the closed lots' share of the bucket (pro rata, rounded down) is
        released and ``pnl`` (realized PnL minus the closing part's fee) is
        settled against it; a net gain goes to the wallet, a net loss stays in
        the bucket, so a losing close never draws on the cross wallet
        (isolation) and the lots still open keep their margin. Flat or
        flipped: the whole bucket is settled; a flip then pays its opening
        part's fee and funds the new side from the wallet.
        """
        if not effect.closed:
            self.move_wallet(seq, account, -open_fee, "fee", events)
            self._fund_bucket(
                seq,
                account,
                position,
                opened_value,
                events,
            )
            return
        held = abs(effect.old_size)
        if effect.closed == held:
            share = position.margin
        else:  # the closed lots' share of the bucket, rounded down
            share = position.margin * effect.closed // held
        position.margin -= share
        net = share + pnl
        if net < 0:  # the loss is bigger than the share: the bucket pays the rest
            self.move_bucket(seq, account, position, net, events)
            net = 0
        self.move_wallet(seq, account, net, "isolated_margin", events)
        if opened_value:
            self.move_wallet(seq, account, -open_fee, "fee", events)
            self._fund_bucket(
                seq,
                account,
                position,
                opened_value,
                events,
            )

    def _fund_bucket(
        self,
        seq: int,
        account: Account,
        position: Position,
        opened_value: int,
        events: list[Event],
    ) -> None:
        """Move the initial margin of ``opened_value`` (E8) into an isolated bucket.

        The fill comes first: its initial margin (notional at the fill price /
        leverage, MARGIN.md) leaves the cash wallet before anything else is
        served. The order held that margin until this fill released it
        (`exchange.margin.ledger.Ledger.release`), and what orders hold is kept in the
        wallet's cash (`ExchangeCore` re-fits the reservations of every account a
        record changes), so the margin is there even when the cross positions'
        losses have used up the free balance: they, not the new position, are
        then short of margin and answer for it by liquidation. Only a wallet
        with no cash at all gives the bucket less (it never goes below zero).
        """
        im = self.markets[position.symbol].tiers.initial_margin(
            opened_value, position.leverage
        )
        transfer = min(im, max(account.wallet, 0))
        self.move_wallet(seq, account, -transfer, "isolated_margin", events)
        position.margin += transfer

    def move_wallet(
        self, seq: int, account: Account, amount: int, reason: str, events: list[Event]
    ) -> None:
        """Change a cross wallet and report it; a deficit goes to the fund."""
        if not amount:
            return
        self.dirty[account.name] = None
        account.wallet += amount
        if account.wallet < 0:
            self._cover_shortfall(seq, account.name, -account.wallet, events)
            amount -= account.wallet
            account.wallet = 0
        events.append(
            BalanceChanged(
                seq=seq,
                account=account.name,
                amount=amount,
                wallet=account.wallet,
                reason=reason,
            )
        )

    def move_bucket(
        self,
        seq: int,
        account: Account,
        position: Position,
        amount: int,
        events: list[Event],
    ) -> None:
        """Change an isolated bucket; a deficit goes to the fund (as for wallets)."""
        position.margin += amount
        if position.margin < 0:
            self._cover_shortfall(seq, account.name, -position.margin, events)
            position.margin = 0

    def _cover_shortfall(
        self, seq: int, account: str, amount: int, events: list[Event]
    ) -> None:
        """Pay a bankrupt balance's deficit from the insurance fund (else bad debt)."""
        paid = min(amount, self.insurance_fund)
        self.bad_debt += amount - paid
        self.move_fund(seq, -paid, "shortfall", events, account)

    def move_fund(
        self, seq: int, amount: int, reason: str, events: list[Event], account: str = ""
    ) -> None:
        """Change the insurance fund and report it (with the bad debt left)."""
        self.insurance_fund += amount
        events.append(
            InsuranceFundChanged(
                seq=seq,
                amount=amount,
                balance=self.insurance_fund,
                reason=reason,
                account=account,
                bad_debt=self.bad_debt,
            )
        )

    def report_position(
        self, seq: int, position: Position, realized: int, fee: int, events: list[Event]
    ) -> None:
        """Emit the position's new state."""
        self.dirty[position.account] = None
        events.append(
            PositionChanged(
                seq=seq,
                account=position.account,
                symbol=position.symbol,
                size=position.size,
                cost=position.cost,
                margin=position.margin,
                mode=position.mode,
                leverage=position.leverage,
                realized=realized,
                fee=fee,
            )
        )
