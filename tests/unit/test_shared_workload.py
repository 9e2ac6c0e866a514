"""The test suite finds the shared workload wherever the repository is cloned."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from services import REQUIRE_ENV, missing, services_required
from shared_workload import REPOSITORY, candidates, workload_dir

if TYPE_CHECKING:
    from pathlib import Path


def workspace(tmp_path: Path, clone: str) -> Path:
    """Make a workspace with ``shared/bench/workload.py``; return the clone's root."""
    bench = tmp_path / "shared" / "bench"
    bench.mkdir(parents=True)
    (bench / "workload.py").write_text("", encoding="utf-8")
    root = tmp_path / clone
    (root / "tests").mkdir(parents=True)
    return root


class TestFindingTheWorkload:
    """``../shared/bench`` is found by walking up from the repository root."""

    @pytest.mark.parametrize("clone", ["main", "wt/debts", "ci/run/7/paperx"])
    def test_shared_bench_is_found_from_any_depth_below_the_workspace(
        self, tmp_path: Path, clone: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A clone beside ``shared`` or deeper below it finds the same directory."""
        monkeypatch.delenv("PAPERX_SHARED_BENCH", raising=False)
        root = workspace(tmp_path, clone)
        assert workload_dir(root) == tmp_path / "shared" / "bench"

    def test_the_variable_comes_before_the_walk(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """``PAPERX_SHARED_BENCH`` names the directory to use when it holds one."""
        root = workspace(tmp_path, "main")
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        (elsewhere / "workload.py").write_text("", encoding="utf-8")
        monkeypatch.setenv("PAPERX_SHARED_BENCH", str(elsewhere))
        assert workload_dir(root) == elsewhere

    def test_the_nearest_shared_bench_wins(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A ``shared/bench`` beside the clone comes before one further up."""
        monkeypatch.delenv("PAPERX_SHARED_BENCH", raising=False)
        root = workspace(tmp_path, "wt/debts")
        near = tmp_path / "wt" / "shared" / "bench"
        near.mkdir(parents=True)
        (near / "workload.py").write_text("", encoding="utf-8")
        assert candidates(root)[:2] == [near, tmp_path / "shared" / "bench"]
        assert workload_dir(root) == near

    def test_the_repository_root_is_the_directory_holding_tests(self) -> None:
        """The walk starts at the repository root, which holds pyproject.toml."""
        assert (REPOSITORY / "pyproject.toml").is_file()
        assert (REPOSITORY / "tests" / "shared_workload.py").is_file()


class TestMissing:
    """Something outside the repository is missing: skip, or fail in CI."""

    @pytest.mark.parametrize("value", [None, "", "0", "false", "no"])
    def test_missing_skips_by_default(
        self, monkeypatch: pytest.MonkeyPatch, value: str | None
    ) -> None:
        """Without the variable (or with it off), a missing prerequisite skips."""
        if value is None:
            monkeypatch.delenv(REQUIRE_ENV, raising=False)
        else:
            monkeypatch.setenv(REQUIRE_ENV, value)
        assert not services_required()
        with pytest.raises(pytest.skip.Exception, match="gone"):
            missing("gone")

    @pytest.mark.parametrize("value", ["1", "yes", "true"])
    def test_missing_fails_when_services_are_required(
        self, monkeypatch: pytest.MonkeyPatch, value: str
    ) -> None:
        """With ``PAPERX_REQUIRE_SERVICES`` set, a missing prerequisite fails."""
        monkeypatch.setenv(REQUIRE_ENV, value)
        with pytest.raises(
            pytest.fail.Exception, match=f"{REQUIRE_ENV} is set and gone"
        ):
            missing("gone")
