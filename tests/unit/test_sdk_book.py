"""The SDK's local order book: snapshot, seq-numbered deltas, gaps and resync."""

from __future__ import annotations

from decimal import Decimal

from clients.sdk import LocalBook
from exchange.gateway.answers import BookSnapshot, BookUpdate

D = Decimal


def delta(book_seq, bids=(), asks=()):
    """Return a BTC-PERP delta numbered ``book_seq``."""
    return BookUpdate(
        seq=book_seq,
        ts_ns=0,
        symbol="BTC-PERP",
        book_seq=book_seq,
        bids=[(D(p), D(q)) for p, q in bids],
        asks=[(D(p), D(q)) for p, q in asks],
    )


def snapshot(book_seq, bids=(), asks=()):
    """Return a BTC-PERP snapshot as of ``book_seq``."""
    return BookSnapshot(
        seq=book_seq,
        symbol="BTC-PERP",
        book_seq=book_seq,
        bids=[(D(p), D(q)) for p, q in bids],
        asks=[(D(p), D(q)) for p, q in asks],
    )


def test_deltas_after_a_snapshot_build_the_book_best_first():
    """Consecutive deltas add, change and remove levels; top() sorts best first."""
    book = LocalBook("BTC-PERP")
    assert book.apply_snapshot(snapshot(3, bids=[("100", "1")], asks=[("101", "2")]))
    assert book.apply_delta(delta(4, bids=[("99", "5")]))
    assert book.apply_delta(delta(5, asks=[("101", "0"), ("102", "1")]))
    assert book.top() == ([[D(100), D(1)], [D(99), D(5)]], [[D(102), D(1)]])
    assert book.book_seq == 5


def test_deltas_before_the_first_snapshot_are_buffered_and_replayed():
    """Deltas that arrive before the snapshot apply on top of it if newer."""
    book = LocalBook("BTC-PERP")
    assert not book.apply_delta(delta(1, bids=[("100", "1")]))
    assert not book.apply_delta(delta(2, bids=[("99", "1")]))
    book.apply_snapshot(snapshot(1, bids=[("100", "1")]))
    assert book.synced
    assert book.top() == ([[D(100), D(1)], [D(99), D(1)]], [])


def test_a_gap_puts_the_book_out_of_sync_until_a_newer_snapshot():
    """A skipped book_seq is a gap; the next snapshot and later deltas resync."""
    book = LocalBook("BTC-PERP")
    book.apply_snapshot(snapshot(0))
    book.apply_delta(delta(1, bids=[("100", "1")]))
    assert not book.apply_delta(delta(3, bids=[("98", "1")]))  # 2 was lost
    assert (book.synced, book.gaps) == (False, 1)
    assert not book.apply_delta(delta(4, bids=[("97", "1")]))
    book.apply_snapshot(snapshot(3, bids=[("100", "1"), ("99", "1"), ("98", "1")]))
    assert book.synced
    assert book.book_seq == 4
    assert [p for p, _ in book.top()[0]] == [D(100), D(99), D(98), D(97)]


def test_a_snapshot_that_buffered_deltas_do_not_continue_stays_out_of_sync():
    """If deltas between a snapshot and the buffer were lost, it waits for another."""
    book = LocalBook("BTC-PERP")
    book.apply_delta(delta(5, bids=[("100", "1")]))
    book.apply_snapshot(snapshot(3))
    assert not book.synced


def test_stale_snapshots_and_deltas_are_ignored():
    """A snapshot or delta older than the synced book changes nothing."""
    book = LocalBook("BTC-PERP")
    book.apply_snapshot(snapshot(5, bids=[("100", "1")]))
    assert not book.apply_snapshot(snapshot(4, bids=[("1", "1")]))
    assert not book.apply_delta(delta(5, bids=[("2", "1")]))
    assert book.top() == ([[D(100), D(1)]], [])
