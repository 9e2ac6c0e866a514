"""The README's Python examples run as written and print what they promise.

Each ``print(...)`` in a README Python block carries a comment saying what it
prints: the whole line, with ``...`` standing for any text. A block must print
exactly one line per ``print`` call, in order, each matching its promise.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).parents[2] / "README.md"
BLOCKS = re.findall(
    r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.DOTALL
)
PRINT = re.compile(r"^\s*print\(.*\)\s+# (?P<promise>.+)$")


def promises(block: str) -> list[str]:
    """Return each ``print`` line's promise in order ("" for a print without one)."""
    found = []
    for line in block.splitlines():
        if "print(" in line:
            match = PRINT.match(line)
            found.append(match["promise"].strip() if match else "")
    return found


def broken_promises(block: str, output: str) -> list[str]:
    """Return what differs between the block's promises and its printed lines."""
    promised = promises(block)
    lines = output.splitlines()
    problems = [f"{len(promised)} prints but {len(lines)} lines printed"]
    if len(lines) == len(promised):
        problems = []
    for promise, line in zip(promised, lines, strict=False):
        pattern = ".*".join(re.escape(part) for part in promise.split("..."))
        if not promise:
            problems.append(f"a print has no `# what it prints` comment: {line!r}")
        elif not re.fullmatch(pattern, line):
            problems.append(f"promised {promise!r}, printed {line!r}")
    return problems


@pytest.mark.parametrize("block", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_readme_example_prints_what_its_comments_promise(
    block: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each Python block runs and prints, line by line, what its comments say."""
    exec(compile(block, str(README), "exec"), {})  # noqa: S102 -- our own README
    assert broken_promises(block, capsys.readouterr().out) == []


def test_readme_has_examples_that_promise_output() -> None:
    """The README shows Python usage with promised output (the test above is real)."""
    assert len(BLOCKS) >= 2
    assert all(promises(block) for block in BLOCKS)


@pytest.mark.parametrize(
    ("block", "output", "problem"),
    [
        ("print(1)  # 2\n", "1\n", "promised '2', printed '1'"),
        ("print(1)  # 1...\n", "21\n", "promised '1...', printed '21'"),
        ("print(1)\n", "1\n", "a print has no `# what it prints` comment: '1'"),
        ("print(1)  # 1\n", "1\n2\n", "1 prints but 2 lines printed"),
    ],
)
def test_a_broken_promise_is_reported(block: str, output: str, problem: str) -> None:
    """A wrong line, a missing comment or an extra line is each reported."""
    assert broken_promises(block, output) == [problem]


def test_an_elided_promise_matches_any_text_in_its_place() -> None:
    """``...`` in a promise stands for any text, at the start, middle or end."""
    block = "print(a)  # {..., 'x': 1, ...}\nprint(b)  # [1008 OFF_TICK] price ...\n"
    output = "{'w': 0, 'x': 1, 'y': 2}\n[1008 OFF_TICK] price 1.5 is off\n"
    assert broken_promises(block, output) == []
