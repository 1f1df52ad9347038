"""Every rejected case: one `*.bad.yaml` per kind of error, its expectation in its first lines.

A fixture starts with one or more `# expect: line N: fragment` comments (the line may be left out
when it is not known). The loader must report exactly those issues: each fragment in the message
of an issue on that line, and nothing else.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from safety_nexus.core.errors import ConfigError
from safety_nexus.site.load import load, load_file

FIXTURES = Path(__file__).resolve().parent / "fixtures"
_EXPECT = re.compile(r"^# expect: (?:line (\d+): )?(.+)$")
BAD = sorted(FIXTURES.glob("*.bad.yaml"))


def _expectations(path: Path) -> list[tuple[int | None, str]]:
    found = []
    for line in path.read_text(encoding="utf-8").splitlines():
        match = _EXPECT.match(line)
        if not match:
            break
        found.append((int(match.group(1)) if match.group(1) else None, match.group(2)))
    return found


def test_there_is_a_fixture_per_kind_of_error() -> None:
    assert len(BAD) >= 40


@pytest.mark.parametrize("path", BAD, ids=[p.name.removesuffix(".bad.yaml") for p in BAD])
def test_bad_fixture_is_rejected_with_its_message_and_line(path: Path) -> None:
    expected = _expectations(path)
    assert expected, f"{path.name} has no '# expect: line N: message' first line"

    with pytest.raises(ConfigError) as caught:
        load_file(path)

    issues = caught.value.issues
    assert caught.value.source == str(path)
    shown = "\n".join(str(issue) for issue in issues)
    assert len(issues) == len(expected), f"expected {len(expected)} issue(s), got:\n{shown}"
    for issue, (line, fragment) in zip(issues, expected, strict=True):
        assert fragment in issue.message, shown
        if line is not None:
            assert issue.line == line, shown
        assert issue.message == issue.message.strip()
        assert issue.message[:1] == issue.message[:1].lower(), "messages start lower-case"


def test_the_good_fixture_loads() -> None:
    site = load_file(FIXTURES / "tiny.good.yaml")
    assert [a.id for a in site.assets] == ["feeder-1", "pump-1", "pump-2"]


def test_every_bad_fixture_is_the_good_one_broken_or_a_yaml_case() -> None:
    # Guards the table itself: a fixture that fails for a reason other than the one it states
    # would still pass above if its fragment happened to match, so check each differs from the
    # good site in a few lines only.
    good = (FIXTURES / "tiny.good.yaml").read_text(encoding="utf-8").splitlines()[1:]
    for path in BAD:
        lines = [
            line
            for line in path.read_text(encoding="utf-8").splitlines()
            if not line.startswith("# expect:")
        ]
        if len(lines) < 10:
            continue  # the handful of whole-document cases (empty, not a mapping, no assets)
        changed = len(set(lines) ^ set(good))
        assert changed <= 8, f"{path.name} differs from tiny.good.yaml in {changed} lines"


def test_load_from_a_string_names_the_source() -> None:
    with pytest.raises(ConfigError) as caught:
        load("version: 1\n", "inline")
    assert caught.value.source == "inline"
    assert {i.message for i in caught.value.issues} >= {
        "missing required field 'site'",
        "missing required field 'subsystems'",
        "missing required field 'assets'",
    }
