"""A journal of records stamped at known times, and the check of `window_start` on it.

The same check runs on a directory (tests/unit/test_requests_recall.py) and
on a JetStream stream (tests/integration/test_journal_nats.py).
"""

from __future__ import annotations

from exchange.journal import Journal, read_journal
from exchange.journal.payload import journal_payload
from exchange.messages import Record, SetIndexPrice
from exchange.shell.requests import window_start

STAMPS = [10 * (n // 2) * 10**9 for n in range(40)]
"""Record times 10 s apart, two records at each: pairs share a time."""


def write_stamped(journal: Journal) -> None:
    """Append one record at each of `STAMPS`, from seq 1, and close the journal."""
    with journal:
        for seq, ts_ns in enumerate(STAMPS, 1):
            command = SetIndexPrice(symbol="BTC-PERP", price=6 * 10**12)
            journal.append(seq, journal_payload(Record(seq, ts_ns, command), []))


def check_window_starts(source: str) -> None:
    """Assert `window_start` finds the first record at or after each of a few times.

    Before every record (the first seq), on and between the stamps, and after
    every record (the seq after the last).
    """
    reader = read_journal(source)
    for since in (-1, 0, 1, 10**10, 95 * 10**9, 190 * 10**9, 191 * 10**9):
        due = next(
            (seq for seq, ts in enumerate(STAMPS, 1) if ts >= since), len(STAMPS) + 1
        )
        assert window_start(reader, since) == due, since
