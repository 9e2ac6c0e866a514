"""Shared fixtures and the hypothesis profile of the test suite."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# Test modules import the harness as a plain module, whatever pytest's import mode.
sys.path.insert(0, str(Path(__file__).parent))

from harness import Harness

# No deadline: a property example runs a long stream, and its time depends on the
# machine. Each property test sets its own (modest) example count.
settings.register_profile(
    "paperx",
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "paperx"))


@pytest.fixture
def ex() -> Harness:
    """A fresh core over the two test markets X and Y (tick 1, lot 1)."""
    return Harness()
