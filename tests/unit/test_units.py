"""Fixed-point units: exact Decimal <-> E8 conversion, never rounding."""

from __future__ import annotations

import math
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exchange.units import SCALE, Precision, ceil_div, e8_str, from_e8, to_e8


class TestToE8:
    """Decimal input to E8 ints."""

    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            (1, SCALE),
            (0, 0),
            (-3, -3 * SCALE),
            ("0.00000001", 1),
            ("1.5", 150_000_000),
            ("-0.25", -25_000_000),
            (Decimal("65000.1"), 6_500_010_000_000),
            ("1e-8", 1),
            ("1.10000000", 110_000_000),
        ],
    )
    def test_exact_values_convert_to_e8(self, value, expected):
        """Ints, decimal strings and Decimals become exact ints of 1e-8."""
        assert to_e8(value) == expected

    @pytest.mark.parametrize("value", ["0.000000001", "1.123456789", Decimal("1e-9")])
    def test_more_than_eight_decimals_raise_precision(self, value):
        """A value finer than 1e-8 is an error, never rounded."""
        with pytest.raises(Precision, match="more than 8 decimals"):
            to_e8(value)

    @pytest.mark.parametrize("value", [1.5, 0.1, True, False])
    def test_floats_and_bools_raise_type_error(self, value):
        """Floats and bools are refused as the wrong type: only exact decimals count."""
        with pytest.raises(TypeError):
            to_e8(value)

    @pytest.mark.parametrize(
        "value", ["abc", "", "NaN", "Infinity", "-inf", "1,5", None]
    )
    def test_non_numbers_raise_precision(self, value):
        """Strings that are not finite decimal numbers are refused."""
        with pytest.raises(Precision):
            to_e8(value)

    def test_precision_is_a_value_error(self):
        """Precision errors can be caught as ValueError."""
        assert issubclass(Precision, ValueError)


class TestFromE8:
    """E8 ints back to decimals."""

    @pytest.mark.parametrize(
        ("value", "text"),
        [
            (1, "0.00000001"),
            (100 * SCALE, "100"),
            (150_000_000, "1.5"),
            (0, "0"),
            (-25_000_000, "-0.25"),
            (4529764 * SCALE, "4529764"),
        ],
    )
    def test_e8_str_prints_plain_decimals_without_trailing_zeros(self, value, text):
        """E8 ints print in plain notation: no exponent, no trailing zeros."""
        assert e8_str(value) == text

    def test_whole_numbers_have_no_exponent(self):
        """100 is Decimal 100, not 1E+2."""
        assert str(from_e8(100 * SCALE)) == "100"

    @given(st.integers(min_value=-(10**20), max_value=10**20))
    def test_from_e8_then_to_e8_is_the_identity(self, value):
        """Every E8 int survives a round trip through Decimal and through text."""
        assert to_e8(from_e8(value)) == value
        assert to_e8(e8_str(value)) == value

    @given(
        st.decimals(
            allow_nan=False,
            allow_infinity=False,
            places=8,
            min_value=-(10**12),
            max_value=10**12,
        )
    )
    def test_to_e8_then_from_e8_keeps_the_value(self, value):
        """A decimal with at most 8 places comes back equal after conversion."""
        assert from_e8(to_e8(value)) == value


class TestCeilDiv:
    """Division rounded up, the core's rounding in the exchange's favour."""

    @given(
        st.integers(min_value=-(10**30), max_value=10**30),
        st.integers(min_value=-(10**15), max_value=10**15).filter(bool),
    )
    def test_ceil_div_is_the_exact_quotient_rounded_up(self, numerator, denominator):
        """For either sign of either argument, the result is ceil(a / b) exactly."""
        assert ceil_div(numerator, denominator) == math.ceil(
            Fraction(numerator, denominator)
        )

    @pytest.mark.parametrize(
        ("numerator", "denominator", "expected"),
        [(7, 2, 4), (-7, 2, -3), (7, -2, -3), (-7, -2, 4), (6, 3, 2), (0, 5, 0)],
    )
    def test_ceil_div_rounds_toward_plus_infinity(
        self, numerator, denominator, expected
    ):
        """Inexact quotients go up to the next integer; exact ones stay as they are."""
        assert ceil_div(numerator, denominator) == expected
