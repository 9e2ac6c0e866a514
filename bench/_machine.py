"""What a benchmark reports besides throughput: machine, memory, latency percentiles."""

from __future__ import annotations

import math
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = [
    "current_rss_mb",
    "fsync_ms",
    "git_commit",
    "machine_info",
    "peak_rss_mb",
    "percentile",
]


def machine_info() -> dict[str, str | int]:
    """Return the CPU model, logical cores, OS and Python the run used."""
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count() or 0,
        "os": f"{platform.system()} {platform.release()}",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
    }


def _cpu_model() -> str:
    """Return ``model name`` from /proc/cpuinfo, else what `platform` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def peak_rss_mb() -> float:
    """Return this process's peak resident set size in MiB (getrusage)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return peak / (1 << 20) if sys.platform == "darwin" else peak / 1024


def current_rss_mb() -> float:
    """Return the current resident set size in MiB (0 where /proc is missing)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return 0.0
    return pages * os.sysconf("SC_PAGE_SIZE") / (1 << 20)


def percentile(sorted_values: Sequence[int], fraction: float) -> int:
    """Return the nearest-rank percentile of already sorted values (0 if empty)."""
    if not sorted_values:
        return 0
    rank = max(math.ceil(fraction * len(sorted_values)), 1)  # nearest rank, 1-based
    return sorted_values[min(rank, len(sorted_values)) - 1]


def git_commit() -> str:
    """Return ``git describe --always --dirty`` of the checkout, or "unknown"."""
    try:
        done = subprocess.run(
            ["git", "describe", "--always", "--dirty"],  # noqa: S607 -- git from PATH
            capture_output=True,
            text=True,
            check=False,
            timeout=5,
            cwd=Path(__file__).resolve().parent,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return done.stdout.strip() or "unknown"


def fsync_ms(directory: Path, count: int = 100) -> tuple[float, float]:
    """Return p50 and p99 (ms) of ``count`` fsyncs of a small write in ``directory``.

    The journal's group commit waits for one such fsync before acks go out,
    so it bounds the end-to-end ack latency under fsync "batch".
    """
    directory.mkdir(parents=True, exist_ok=True)
    samples = []
    # A named file, as the journal's segments are (an unlinked one can skip work).
    with tempfile.NamedTemporaryFile(dir=directory, prefix="fsync-") as f:
        for _ in range(count):
            f.write(b"x" * 100)
            f.flush()
            started = time.perf_counter_ns()
            os.fsync(f.fileno())
            samples.append(time.perf_counter_ns() - started)
    samples.sort()
    return percentile(samples, 0.5) / 1e6, percentile(samples, 0.99) / 1e6
