"""The README's Python examples run as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).parents[2] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)


@pytest.mark.parametrize("block", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_readme_example_runs(block: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Each Python block runs and prints what its ``print(...)  # ...`` comments say."""
    exec(compile(block, str(README), "exec"), {})  # noqa: S102 -- our own README
    out = capsys.readouterr().out
    promised = [
        line.split("#", 1)[1].strip().split(":")[0]
        for line in block.splitlines()
        if "print(" in line and "#" in line and "/" not in line.split("#", 1)[1]
    ]
    assert out
    for claim in promised:
        assert claim.removesuffix("...").split(" is not")[0] in out, claim


def test_readme_has_examples() -> None:
    """The README shows Python usage (so the test above is not vacuous)."""
    assert len(BLOCKS) >= 2
