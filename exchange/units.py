"""Fixed-point units: where Decimal meets the core's ints.

Outside the core, values are Decimal (or decimal strings). Commands carry them
as ints of the exchange's fixed unit, ``SCALE`` = 10**8 per whole unit ("E8");
the core turns those into ticks and lots of a market and back. Nothing is ever
rounded here: a value with more than 8 decimals is an error the caller turns
into a `RejectCode.TOO_PRECISE` reject.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from exchange.codes import Refusal, RejectCode
from exchange.errors import Precision

__all__ = [
    "PPM",
    "SCALE",
    "Precision",
    "ceil_div",
    "checked_e8",
    "e8_str",
    "from_e8",
    "ppm_str",
    "to_e8",
    "to_ppm",
]

SCALE = 10**8
PPM = 1_000_000  # parts per million: rates, fees and bands are ints of 1e-6
_SCALE_DECIMAL = Decimal(SCALE)


def ceil_div(numerator: int, denominator: int) -> int:
    """Return numerator / denominator rounded up (toward +infinity).

    Exact for either sign of either argument; ``denominator`` is not zero.
    """
    return -(-numerator // denominator)


def to_e8(value: Decimal | str | int) -> int:
    """Return ``value`` as an exact int of 1e-8 units.

    Raises:
        TypeError: for a float or bool (a float may not be the decimal you meant).
        Precision: if ``value`` is not a finite decimal or has more than 8 decimals
            (it is never rounded).
    """
    if isinstance(value, int) and not isinstance(value, bool):
        return value * SCALE
    if isinstance(value, float | bool):
        msg = (
            f"{value!r}: pass a Decimal or a decimal string, not {type(value).__name__}"
        )
        raise TypeError(msg)
    try:
        scaled = Decimal(value) * _SCALE_DECIMAL
    except (InvalidOperation, TypeError) as exc:
        msg = f"{value!r} is not a decimal number"
        raise Precision(msg) from exc
    if not scaled.is_finite() or scaled != scaled.to_integral_value():
        msg = f"{value} has more than 8 decimals"
        raise Precision(msg)
    return int(scaled)


# What a command (and the journal's msgpack) can carry: a signed 64-bit int.
_COMMAND_INTS = range(-(2**63), 2**63)


def checked_e8(name: str, value: Decimal | str | int) -> int | Refusal:
    """Return an edge value as E8 units for a command, or why it cannot be one.

    The refusal names the field: MALFORMED for a float, a bool, something that
    is not a finite decimal, or a value too large for a command's int;
    TOO_PRECISE for more than 8 decimals (never rounded).
    """
    try:
        scaled = to_e8(value)
    except TypeError as exc:
        return Refusal(RejectCode.MALFORMED, f"{name}: {exc}")
    except Precision as exc:
        finite = isinstance(value, Decimal | str | int) and _is_finite(value)
        code = RejectCode.TOO_PRECISE if finite else RejectCode.MALFORMED
        return Refusal(code, f"{name}: {exc}")
    if scaled not in _COMMAND_INTS:
        return Refusal(RejectCode.MALFORMED, f"{name}: {value} is too large")
    return scaled


def _is_finite(value: Decimal | str | int) -> bool:
    """Return True if ``value`` reads as a finite decimal number."""
    try:
        return Decimal(value).is_finite()
    except (InvalidOperation, TypeError):
        return False


def from_e8(value: int) -> Decimal:
    """Return an int of 1e-8 units as an exact Decimal, without trailing zeros."""
    result = Decimal(value).scaleb(-8)
    normal = result.normalize()
    # normalize() turns 100 into 1E+2; keep plain notation for whole numbers.
    return (
        normal.quantize(Decimal(1)) if normal == normal.to_integral_value() else normal
    )


def e8_str(value: int) -> str:
    """Return an int of 1e-8 units as a plain decimal string ("0.00000001", "100")."""
    return format(from_e8(value), "f")


def to_ppm(fraction: Decimal | str | int) -> int:
    """Return a decimal fraction ("0.0005" = 0.05%) as exact parts per million.

    Raises:
        Precision: if it has more than 6 decimals (it is never rounded).
    """
    scaled = to_e8(fraction)
    if scaled % 100:
        msg = f"{fraction} has more than 6 decimals (the finest rate is 1 ppm)"
        raise Precision(msg)
    return scaled // 100


def ppm_str(ppm: int) -> str:
    """Return parts per million as a plain decimal fraction string ("0.0005")."""
    return e8_str(ppm * 100)
