"""The line-protocol parser's whole-body path (`_bulk`) against its line-by-line path: 6,000
generated plain bodies (valid and mangled) must give the same batch, or the same refusal, both
ways. A comment line with a backslash at the end sends a body down the line-by-line path
without changing what it means. Timestamps are checked against Python's exact `int / int` for
every precision."""

from __future__ import annotations

from random import Random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from safety_nexus.core.errors import IngestError
from safety_nexus.detect.testing import make_table
from safety_nexus.ingest import lineprotocol
from safety_nexus.ingest.json_batch import ParsedBatch
from safety_nexus.ingest.lineprotocol import PRECISIONS, parse_line_protocol

pytestmark = pytest.mark.slow

MEASUREMENTS = ("m", "pump-1", "a.b", "x_2")
FIELDS = ("f", "p", "b.c", "flow_rate")
TABLE = make_table(16, ids=[f"{m}.{f}" for m in MEASUREMENTS for f in FIELDS])
NAMES = {"m,host=h1 f": "pump-1.p", "x_2 p": "a.b.f"}


def _rarely(common: st.SearchStrategy[str], rare: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """`rare` one time in 40 (not at an end of the range, which hypothesis favours): most bodies
    stay valid, so the whole-body path is exercised."""
    return st.integers(0, 39).flatmap(lambda k: rare if k == 17 else common)


_VALUE = _rarely(
    st.one_of(
        st.floats(allow_nan=False, allow_infinity=False).map(repr),
        st.integers(-(2**63), 2**63 - 1).map(lambda v: f"{v}i"),
        st.integers(0, 2**64 - 1).map(lambda v: f"{v}u"),
        st.sampled_from(["t", "false", ".5", "5.", "+1", "-0", "1E5"]),
    ),
    st.sampled_from(["1e999", "nan", "inf", "1_0", "", "-", "0x10", " 1", "١"]),
)
_STAMP = _rarely(
    st.one_of(
        st.integers(-(2**63), 2**63 - 1),
        st.integers(1_500_000_000 * 10**9, 1_900_000_000 * 10**9),  # this century, in ns
    ).map(str),
    st.one_of(
        st.integers(-(10**24), 10**24).map(str),
        st.sampled_from(["", "-", "1-2", "0" * 25 + "1", "0" * 20 + "1", "+5", "١٢"]),
    ),
)
_MEASUREMENT = _rarely(st.sampled_from(MEASUREMENTS), st.sampled_from(["nope", "", "m="]))
_FIELD = _rarely(st.sampled_from(FIELDS), st.sampled_from(["nope", ""]))


@st.composite
def _bodies(draw: st.DrawFn) -> str:
    stamped = draw(st.booleans())
    lines = []
    for _ in range(draw(st.integers(1, 12))):
        head = draw(_MEASUREMENT)
        tag = _rarely(st.sampled_from(["host=h1", "z=q"]), st.sampled_from(["host=", "=q", "z"]))
        for item in draw(st.lists(tag, max_size=2)):
            head += f",{item}"
        keys = draw(st.lists(_FIELD, min_size=1, max_size=4))
        fields = ",".join(f"{k}={draw(_VALUE)}" for k in keys)
        line = f"{head} {fields}"
        if stamped:
            line += f" {draw(_STAMP)}"
        lines.append(line)
    ending = draw(st.sampled_from(["", "\n", "\r\n", "\n\n", "\n# done\n"]))
    separator = draw(st.sampled_from(["\n", "\r\n", "\n# note\n", "\n\n"]))
    return separator.join(lines) + ending


def _outcome(body: bytes, precision: str, names: dict[str, str] | None) -> object:
    try:
        batch = parse_line_protocol(body, TABLE, now=7.5, precision=precision, names=names)
    except IngestError as err:
        return (err.reason, err.status, str(err))
    return _arrays(batch)


def _arrays(batch: ParsedBatch) -> tuple[list[int], list[float], list[float]]:
    return batch.columns.tolist(), batch.times.tolist(), batch.values.tolist()


def _same_both_ways(text: str, precision: str, names: dict[str, str] | None) -> None:
    body = text.encode()
    whole = _outcome(body, precision, names)
    by_line = _outcome(body + b"\n#\\", precision, names)  # a backslash: line by line
    assert whole == by_line, text


@settings(max_examples=3000, deadline=None, derandomize=True, database=None)
@given(_bodies(), st.sampled_from(sorted(PRECISIONS)), st.booleans())
def test_whole_body_and_line_by_line_agree(text: str, precision: str, mapped: bool) -> None:
    _same_both_ways(text, precision, NAMES if mapped else None)


_MANGLE = [
    " ",
    ",",
    "=",
    "\n",
    "\r",
    "\r\n",
    "\n#",
    "-",
    ".",
    "0",
    "e",
    "i",
    "#",
    "\t",
    "é",
    '"',
    "",
]


@settings(max_examples=1000, deadline=None, derandomize=True, database=None)
@given(_bodies(), st.randoms(use_true_random=False))
def test_mangled_bodies_agree_too(text: str, rng: Random) -> None:
    for _ in range(3):
        mangled = text
        for _ in range(rng.randint(1, 3)):
            i = rng.randint(0, len(mangled))
            mangled = mangled[:i] + rng.choice(_MANGLE) + mangled[i + rng.randint(0, 2) :]
        _same_both_ways(mangled, rng.choice(sorted(PRECISIONS)), None)


def test_timestamps_are_exactly_pythons_quotients() -> None:
    rng = np.random.default_rng(11)
    for precision, per_second in PRECISIONS.items():
        stamps = np.concatenate(
            [
                rng.integers(-(2**63), 2**63 - 1, 4000, dtype=np.int64),
                rng.integers(-(2**40), 2**40, 2000, dtype=np.int64),
                rng.integers(1_700_000_000, 1_800_000_000, 4000, dtype=np.int64) * per_second
                + rng.integers(0, per_second, 4000, dtype=np.int64),
            ]
        ).tolist()
        body = "\n".join(f"m f={i} {s}" for i, s in enumerate(stamps)).encode()
        table = make_table(1, ids=["m.f"])
        batch = parse_line_protocol(body, table, now=0.0, precision=precision)
        assert batch.times.tolist() == [s / per_second for s in stamps], precision


def test_a_series_layout_is_resolved_once_per_table_and_map() -> None:
    """The names of a layout seen before are not resolved again, also when the caller passes a
    new empty map each time (as the runtime does without `?source=`); another table or map
    gets its own entry."""
    seen = lineprotocol._SEEN
    seen._entries.clear()  # a full memory would drop one entry for each new one
    body = b"m f=1,p=2 5\npump-1 b.c=3 5"
    before = 0
    first = parse_line_protocol(body, TABLE, now=0.0, names={})
    assert len(seen._entries) == before + 1
    again = parse_line_protocol(body, TABLE, now=0.0, names={})
    assert len(seen._entries) == before + 1
    assert again.columns.tolist() == first.columns.tolist()
    other = make_table(16, ids=[f"{m}.{f}" for m in MEASUREMENTS for f in reversed(FIELDS)])
    moved = parse_line_protocol(body, other, now=0.0)
    assert moved.columns.tolist() != first.columns.tolist()
    renamed = parse_line_protocol(b"x_2 p=1 5", TABLE, now=0.0, names=NAMES)
    assert renamed.columns.tolist() == [TABLE.index["a.b.f"]]
