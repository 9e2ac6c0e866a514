"""Finding and importing the shared standard-stream generator (workload.py).

It lives outside the repository, in the workspace's ``shared/bench``: the
repository's sibling ``../shared`` wherever it is cloned (``/work/main``, a
worktree under ``/work/wt``, a CI clone beside the workspace). It is found by
walking up from the repository root, or given by ``PAPERX_SHARED_BENCH``.
Without it the tests that need it skip and say where they looked, or fail
under ``PAPERX_REQUIRE_SERVICES=1`` (see ``services.py``).
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

from services import missing

REPOSITORY = Path(__file__).resolve().parents[1]


def candidates(root: Path = REPOSITORY) -> list[Path]:
    """Return where to look, in order: the variable, then ``shared/bench`` upward.

    Upward means beside ``root``, then beside each of its parents in turn.
    """
    given = os.environ.get("PAPERX_SHARED_BENCH")
    upward = [parent / "shared" / "bench" for parent in root.parents]
    return [Path(given), *upward] if given else upward


def workload_dir(root: Path = REPOSITORY) -> Path | None:
    """Return the first candidate directory holding workload.py, or None."""
    return next((d for d in candidates(root) if (d / "workload.py").is_file()), None)


def import_workload() -> ModuleType:
    """Import workload.py as module ``workload``, or skip (or fail) the caller."""
    found = workload_dir()
    if found is None:
        looked = ", ".join(str(d) for d in candidates())
        missing(
            f"the standard workload generator is not in {looked}; "
            "set PAPERX_SHARED_BENCH to its directory"
        )
    if "workload" in sys.modules:
        return sys.modules["workload"]
    spec = importlib.util.spec_from_file_location("workload", found / "workload.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["workload"] = module
    spec.loader.exec_module(module)
    return module
