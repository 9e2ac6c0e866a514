"""Finding and importing the shared standard-stream generator (workload.py).

It lives outside the repository, in the workspace's ``shared/bench``. A
checkout elsewhere (a CI clone in /tmp) finds it through ``PAPERX_SHARED_BENCH``
or the workspace's usual place; without it, the tests that need it skip and
say where they looked.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

import pytest

_CANDIDATES = [
    Path(p) for p in (os.environ.get("PAPERX_SHARED_BENCH"),) if p
] + [
    Path(__file__).resolve().parents[2] / "shared" / "bench",  # <repo>/../shared
    Path("/work/shared/bench"),  # the workspace's fixed location
]


def workload_dir() -> Path | None:
    """Return the first directory holding workload.py, or None."""
    return next((d for d in _CANDIDATES if (d / "workload.py").is_file()), None)


def import_workload() -> ModuleType:
    """Import workload.py as module ``workload``, or skip the calling test."""
    found = workload_dir()
    if found is None:
        looked = ", ".join(str(d) for d in _CANDIDATES)
        pytest.skip(f"the standard workload generator is not in {looked}; "
                    "set PAPERX_SHARED_BENCH to its directory")
    if "workload" in sys.modules:
        return sys.modules["workload"]
    spec = importlib.util.spec_from_file_location("workload", found / "workload.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["workload"] = module
    spec.loader.exec_module(module)
    return module
