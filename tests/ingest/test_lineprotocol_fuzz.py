"""Property tests of the line-protocol parser: 27,500 generated bodies in all (2,500 valid
batches of 1-8 lines, 20,000 mangled copies of 2,000 more, 5,000 arbitrary byte strings).

Valid lines must come back with the values and times they were written with; anything else may
be refused, but only with an `IngestError` whose status is a 4xx and whose message names a line
of the body (or the body's encoding)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from random import Random

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from safety_nexus.core.errors import IngestError
from safety_nexus.core.types import SignalTable
from safety_nexus.detect.testing import make_table
from safety_nexus.ingest.lineprotocol import PRECISIONS, parse_line_protocol

pytestmark = pytest.mark.slow


def table(*ids: str) -> SignalTable:
    return make_table(len(ids), ids=ids)


# Names may hold every character the protocol escapes, and a double quote (literal outside
# field values); no backslash: "a\" followed by a separator is ambiguous in the protocol itself.
_NAME_CHARS = st.sampled_from(list('abz09-_. ,="é#'))
_NAME = st.text(_NAME_CHARS, min_size=1, max_size=6)
_KEY = st.text(st.sampled_from(list("abz09-_. ,=é")), min_size=1, max_size=6)


def _escape(text: str, specials: str) -> str:
    for c in specials:
        text = text.replace(c, "\\" + c)
    return text


@dataclass(frozen=True)
class Case:
    text: str
    ids: tuple[str, ...]
    columns: list[int]
    values: list[float]
    times: list[float]
    precision: str


_VALUE = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False).map(lambda v: (repr(v), v)),
    st.integers(-(2**63), 2**63 - 1).map(lambda v: (f"{v}i", float(v))),
    st.integers(0, 2**64 - 1).map(lambda v: (f"{v}u", float(v))),
    st.sampled_from([("t", 1.0), ("FALSE", 0.0), ("True", 1.0), ("f", 0.0)]),
)


@st.composite
def _cases(draw: st.DrawFn) -> Case:
    measurements = draw(
        st.lists(_NAME.filter(lambda m: m[0] != "#"), min_size=1, max_size=3, unique=True)
    )
    fields = draw(st.lists(_KEY, min_size=1, max_size=3, unique=True))
    ids = tuple(f"{m}.{f}" for m in measurements for f in fields)
    assume(len(set(ids)) == len(ids))  # "a.b" + "c" and "a" + "b.c" name one signal
    precision = draw(st.sampled_from(sorted(PRECISIONS)))
    lines: list[str] = []
    columns: list[int] = []
    values: list[float] = []
    times: list[float] = []
    for _ in range(draw(st.integers(1, 8))):
        mi = draw(st.integers(0, len(measurements) - 1))
        head = _escape(measurements[mi], ", ")
        for k, v in draw(st.lists(st.tuples(_KEY, _NAME), max_size=2)):
            head += f",{_escape(k, ', =')}={_escape(v, ', =')}"
        chosen = draw(st.lists(st.integers(0, len(fields) - 1), min_size=1, max_size=3))
        parts = []
        for fi in chosen:
            raw, value = draw(_VALUE)
            parts.append(f"{_escape(fields[fi], ', =')}={raw}")
            columns.append(ids.index(f"{measurements[mi]}.{fields[fi]}"))
            values.append(value)
        stamp = draw(st.none() | st.integers(-(10**18), 10**19 - 1))
        line = f"{head} {','.join(parts)}" + ("" if stamp is None else f" {stamp}")
        lines.append(line)
        t = 42.0 if stamp is None else stamp / PRECISIONS[precision]
        times += [t] * len(chosen)
        if draw(st.booleans()):
            lines.append(draw(st.sampled_from(["", "# note", "#", "\r"])))
    return Case("\n".join(lines), ids, columns, values, times, precision)


def _check_refusal(err: IngestError, text: str) -> None:
    assert 400 <= err.status < 500
    message = str(err)
    assert message
    assert message == message.strip()
    if err.reason in ("bad_encoding", "bad_precision"):
        return
    m = re.search(r"line (\d+)", message)
    assert m, message
    assert 1 <= int(m.group(1)) <= text.count("\n") + 1, message


@settings(max_examples=2500, deadline=None, derandomize=True, database=None)
@given(_cases())
def test_valid_batches_round_trip(case: Case) -> None:
    batch = parse_line_protocol(
        case.text.encode(), table(*case.ids), now=42.0, precision=case.precision
    )
    assert batch.columns.tolist() == case.columns
    assert batch.values.tolist() == case.values
    assert batch.times.tolist() == case.times


_MANGLE = [*' ,="\\\n\r#=ti.-eE0', "\x00", "é", "nan", "1e999", ""]
VARIANTS = 10  # mangled texts per generated batch


@settings(
    max_examples=2000,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(_cases(), st.randoms(use_true_random=False))
def test_mangled_batches_are_parsed_or_refused_with_a_line(case: Case, rng: Random) -> None:
    signals = table(*case.ids)
    for _ in range(VARIANTS):
        text = case.text
        for _ in range(rng.randint(1, 4)):  # insert, delete or replace a few characters
            i = rng.randint(0, len(text))
            text = text[:i] + rng.choice(_MANGLE) + text[i + rng.randint(0, 3) :]
        try:
            batch = parse_line_protocol(text.encode(), signals, now=42.0, precision=case.precision)
        except IngestError as err:
            _check_refusal(err, text)
        else:
            assert len(batch.columns) == len(batch.times) == len(batch.values)
            assert all(0 <= c < len(case.ids) for c in batch.columns.tolist())


@settings(max_examples=5000, deadline=None, derandomize=True, database=None)
@given(
    st.binary(max_size=200)
    | st.text(st.sampled_from(list('ab ,=\\"\n#1.-it')), max_size=200).map(str.encode),
    st.sampled_from(["ns", "s", "h", ""]),
)
def test_arbitrary_bytes_never_escape_as_another_exception(body: bytes, precision: str) -> None:
    ids = ("a.b", "a.a", "b.a", "ab.b")
    try:
        batch = parse_line_protocol(body, table(*ids), now=0.0, precision=precision)
    except IngestError as err:
        _check_refusal(err, body.decode("utf-8", "replace"))
    else:
        assert len(batch.columns) == len(batch.values)
