"""InfluxDB line protocol, as POSTed to `/api/v1/write` (the syntax of InfluxDB's reference):

    <measurement>[,<tag>=<value>...] <field>=<value>[,<field>=<value>...] [<timestamp>]

    pump-1 pressure=4.82,flow=31i 1780272000000000000
    cpu,host=core-a1 usage_user=12.5

Escapes: a backslash before a comma or a space in the measurement, and before a comma, an equals
sign or a space in a tag key, tag value or field key, makes that character literal; a backslash
before any other character is itself literal. Lines starting with `#` and blank lines are skipped.

Field values: floats (`1`, `-2.5`, `1e3`), integers (`12i`), unsigned integers (`12u`) and booleans
(`t`, `true`, `f`, `false` in any of InfluxDB's spellings, read as 1 and 0). String fields
(`"..."`) are rejected, not ignored: every sample of this system is a number, and a gateway that
sends text where a number is expected should hear about it rather than lose data silently.

Timestamps are integers in `precision` units since the epoch (`ns`, the default as in InfluxDB,
`us`, `ms` or `s`; InfluxDB 1.x's `n` and `u` too); a line without one takes the receive time
`now`.

Names: each field of a line is one sample, named `<measurement>.<field>` by default (the
"<asset>.<signal>" signal id; tags are ignored). A site `Source` may map external names to signal
ids with `map: {"cpu,host=core-a1 usage_user": "core-a1.cpu_load"}`: the key is the measurement,
its tags sorted by key, a space and the field, unescaped. A mapped name wins over the default.

Every rejection names the line (1-based, counting blank and comment lines) and the problem; a
batch is taken whole or not at all. Syntax and names are checked line by line, values and then
timestamps afterwards in bulk, so of several problems the one reported is not always the first.
Lines without a backslash or a double quote (nearly all of them) are split with `str` methods; the
others go through a small scanner that honours escapes and quoted strings.

Speed: a body of plain lines (no backslash or quote; blank and comment lines and carriage returns
are dropped first) that all have a timestamp, or all have none, is first tried whole, without a
Python step per line
(`_bulk`): the body's skeleton (its spaces, newlines, commas and equals signs, cut out with
`bytes.translate`) is matched against the shape of such lines, which proves that splitting the
whole text at spaces and newlines puts every line's head, field set and timestamp in the right
slot; field sets are split at once; the usual `<measurement>.<field>` names are built with one
comprehension and resolved with one `map` (and remembered: the next body that names the same
series the same way skips the resolving, see `_SeenNames`); values and timestamps are converted
as below. Anything this path does not like (an unknown name, a bad value, an escape, a string)
sends the body to the line-by-line path, which accepts exactly the same bodies and names the
problem (tests/ingest/test_lineprotocol_bulk.py holds the two paths to that). 5,000 samples as
500 lines of ten fields take about 1 ms this way, 15-20 ms line by line.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Hashable, Mapping
from itertools import repeat
from typing import NoReturn

import numpy as np
from numpy.typing import NDArray

from safety_nexus.core.errors import IngestError
from safety_nexus.core.types import SignalTable
from safety_nexus.ingest.json_batch import MAX_SAMPLES, ParsedBatch

# Timestamp units per second; `n` and `u` are InfluxDB 1.x's spellings of ns and us.
PRECISIONS: dict[str, int] = {"ns": 10**9, "n": 10**9, "us": 10**6, "u": 10**6, "ms": 1000, "s": 1}
_MAX_DIGITS = 24  # longer integers are out of every range here (and slow to convert)

_TRUE = frozenset({"t", "T", "true", "True", "TRUE"})
_FALSE = frozenset({"f", "F", "false", "False", "FALSE"})
_FLOAT = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
_INT = re.compile(r"-?\d+")
_UINT = re.compile(r"\d+")
_TIMESTAMP = re.compile(r"-?\d+")
# Every raw timestamp an integer or absent, one per line.
_STAMPS = re.compile(r"(?:-?\d{1,19})?(?:\n(?:-?\d{1,19})?)*")
# The skeleton of plain lines (see `_bulk`): per line optional tags, one space, one or more
# `key=value` fields, and either a space and a timestamp on every line or on none.
_SKELETON = bytes(sorted(set(range(256)) - set(b" \n,=")))  # what `translate` deletes
_STAMPED = re.compile(rb"(?:(?:,=)* =(?:,=)* \n)*(?:,=)* =(?:,=)* ")
_UNSTAMPED = re.compile(rb"(?:(?:,=)* =(?:,=)*\n)*(?:,=)* =(?:,=)*")
# Characters of a plain decimal float: with only these, `float` accepts what `_FLOAT` does.
_DECIMAL = b"0123456789.eE+-"
_KEY_ESCAPE = re.compile(r"\\([,= ])")
_MEASUREMENT_ESCAPE = re.compile(r"\\([, ])")
# Escape pairs that matter to splitting, and the private-use characters that stand in for them.
_PAIRS = re.compile(r'\\[ ,=\\"]')
_HIDE = {c: chr(0xF8F0 + i) for i, c in enumerate(' ,=\\"')}
_REVEAL = {h: "\\" + c for c, h in _HIDE.items()}
_HIDDEN = re.compile("[\uf8f0-\uf8f4]")
_INT64 = (-(2**63), 2**63 - 1)
_UINT64 = 2**64 - 1
_SHOW = 60  # characters of a bad token quoted in a message


def _show(text: str) -> str:
    return text if len(text) <= _SHOW else text[:_SHOW] + "..."


def _value(raw: str, field: str, lineno: int) -> float:
    """A field value as a float; `field` is only used in messages."""
    if _FLOAT.fullmatch(raw):
        v = float(raw)
        if not math.isfinite(v):
            raise IngestError(
                f"line {lineno}: field '{_show(field)}' value {_show(raw)} is not a finite number",
                "non_finite",
            )
        return v
    last = raw[-1:]
    if last == "i" and len(raw) <= _MAX_DIGITS and _INT.fullmatch(raw, 0, len(raw) - 1):
        n = int(raw[:-1])
        if not _INT64[0] <= n <= _INT64[1]:
            raise IngestError(
                f"line {lineno}: field '{_show(field)}' integer {_show(raw)} is out of range",
                "bad_value",
            )
        return float(n)
    if last == "u" and len(raw) <= _MAX_DIGITS and _UINT.fullmatch(raw, 0, len(raw) - 1):
        n = int(raw[:-1])
        if n > _UINT64:
            raise IngestError(
                f"line {lineno}: field '{_show(field)}' unsigned integer {_show(raw)}"
                " is out of range",
                "bad_value",
            )
        return float(n)
    if raw in _TRUE:
        return 1.0
    if raw in _FALSE:
        return 0.0
    if raw[:1] == '"':
        raise IngestError(
            f"line {lineno}: field '{_show(field)}' is a string; only numbers and booleans"
            " are accepted",
            "bad_value",
        )
    if not raw:
        raise IngestError(f"line {lineno}: field '{_show(field)}' has no value", "bad_line")
    raise IngestError(
        f"line {lineno}: field '{_show(field)}' value '{_show(raw)}' is not a number,"
        " integer (1i), unsigned (1u) or boolean",
        "bad_value",
    )


def _reveal(text: str) -> str:
    """Put back the escape pairs that `_PAIRS` hid."""
    return _HIDDEN.sub(lambda m: _REVEAL[m.group()], text)


def _split(text: str, sep: str, *, quotes: bool = False) -> list[str]:
    """Split on `sep` where it is neither escaped nor (with `quotes`) inside a quoted string.
    Pieces keep their escapes. Only lines with a backslash or a quote get here."""
    if "\\" not in text and not (quotes and '"' in text):
        return text.split(sep)
    if not (quotes and '"' in text) and not _HIDDEN.search(text):
        # Hide each escape pair behind a private-use character, split, and put them back.
        hidden = _PAIRS.sub(lambda m: _HIDE[m.group()[1]], text)
        return [_reveal(piece) for piece in hidden.split(sep)]
    # Quoted strings (or the rare text holding the private-use characters): scan.
    pieces: list[str] = []
    start = 0
    i = 0
    n = len(text)
    quoted = False
    while i < n:
        c = text[i]
        if c == "\\":
            i += 2
            continue
        if quotes and c == '"':
            quoted = not quoted
        elif c == sep and not quoted:
            pieces.append(text[start:i])
            start = i + 1
        i += 1
    pieces.append(text[start:])
    return pieces


def _pair(item: str, what: str, lineno: int, *, escaped: bool) -> tuple[str, str]:
    """`key=value` split at the first (unescaped) equals sign."""
    if escaped:
        parts = _split(item, "=", quotes=False)
        key, value = parts[0], "=".join(parts[1:]) if len(parts) > 1 else None
    else:
        key, eq, rest = item.partition("=")
        value = rest if eq else None
    if value is None:
        raise IngestError(f"line {lineno}: {what} '{_show(item)}' has no '='", "bad_line")
    if not key:
        raise IngestError(f"line {lineno}: {what} '{_show(item)}' has an empty key", "bad_line")
    return key, value


def _tokens(
    line: str, lineno: int
) -> tuple[str, list[tuple[str, str]], list[tuple[str, str]], str | None]:
    """(measurement, tags, fields, timestamp) of one line. Names come back unescaped; field
    values raw."""
    escaped = "\\" in line or '"' in line
    if escaped:
        head, *rest = _split(line, " ", quotes=False)
        # The field section may hold quoted strings with spaces: re-split what follows the head.
        tail = line[len(head) + 1 :] if rest else ""
        sections = [head, *_split(tail, " ", quotes=True)] if rest else [head]
    else:
        sections = line.split(" ")
    if len(sections) < 2:
        raise IngestError(
            f"line {lineno}: no field set (expected '<measurement>[,tags] <field>=<value>')",
            "bad_line",
        )
    if len(sections) > 3 or "" in sections:
        raise IngestError(
            f"line {lineno}: unexpected space (sections are separated by exactly one space;"
            " escape spaces in names as '\\ ')",
            "bad_line",
        )
    head_items = _split(sections[0], ",") if escaped else sections[0].split(",")
    measurement = head_items[0]
    if not measurement:
        raise IngestError(f"line {lineno}: the measurement is empty", "bad_line")
    tags = [_pair(item, "tag", lineno, escaped=escaped) for item in head_items[1:]]
    field_items = _split(sections[1], ",", quotes=True) if escaped else sections[1].split(",")
    fields = [_pair(item, "field", lineno, escaped=escaped) for item in field_items]
    if escaped:
        measurement = _MEASUREMENT_ESCAPE.sub(r"\1", measurement)
        tags = [(_KEY_ESCAPE.sub(r"\1", k), _KEY_ESCAPE.sub(r"\1", v)) for k, v in tags]
        fields = [(_KEY_ESCAPE.sub(r"\1", k), v) for k, v in fields]
    for key, value in tags:
        if not value:
            raise IngestError(f"line {lineno}: tag '{_show(key)}' has an empty value", "bad_line")
    return measurement, tags, fields, sections[2] if len(sections) == 3 else None


def external_name(measurement: str, tags: list[tuple[str, str]], field: str) -> str:
    """The name a site `Source.map` key gives a field: measurement, sorted tags, space, field."""
    head = ",".join([measurement, *(f"{k}={v}" for k, v in sorted(tags))])
    return f"{head} {field}"


def _column(
    index: Mapping[str, int],
    names: Mapping[str, str] | None,
    measurement: str,
    tags: list[tuple[str, str]],
    field: str,
    lineno: int,
) -> int:
    sid = names.get(external_name(measurement, tags, field)) if names else None
    if sid is None:
        sid = f"{measurement}.{field}"
    col = index.get(sid)
    if col is None:
        raise IngestError(
            f"line {lineno}: unknown signal '{_show(sid)}'"
            f" (from measurement '{_show(measurement)}', field '{_show(field)}')",
            "unknown_signal",
            subject=_show(sid),
        )
    return col


def _floats(raws: list[str]) -> NDArray[np.float64] | None:
    """All raw values as floats if every one is a plain, finite decimal float; else None (the
    caller then looks at each value to name the bad one)."""
    try:
        values = np.fromiter(map(float, raws), dtype=np.float64, count=len(raws))
    except ValueError:
        return None
    # `float` also takes "nan", "inf", "1_0", surrounding whitespace and non-ASCII digits; with
    # only these characters it takes exactly what `_FLOAT` does.
    joined = "".join(raws)
    if not joined.isascii() or joined.encode().translate(None, _DECIMAL):
        return None
    if not np.isfinite(values).all():
        return None
    return values


def _seconds(stamps: list[str], per_second: int) -> NDArray[np.float64] | None:
    """Each raw timestamp in seconds, exactly as Python's `int(s) / per_second` gives it; None
    if one is not an integer of at most `_MAX_DIGITS` characters that fits an int64.

    NumPy computes q + r / per_second from the exact quotient and remainder: for 2**29 ≤ |q| <
    2**53 seconds (1987 to far beyond 2100, and the distant past) that is the correctly rounded
    quotient too, because `r / per_second` is off by at most 2**-54 while the true quotient is
    at least 2**(k - 53) / per_second (k = its binary exponent, ≥ 29) from any rounding
    midpoint; other times are divided by Python."""
    joined = "".join(stamps)
    if not joined.isascii() or joined.encode().translate(None, b"0123456789-"):
        return None
    if max(map(len, stamps), default=0) > _MAX_DIGITS:
        return None
    try:
        ints = np.fromiter(map(int, stamps), dtype=np.int64, count=len(stamps))
    except (ValueError, OverflowError):  # a misplaced '-', or beyond the int64 range
        return None
    quotient, remainder = np.divmod(ints, per_second)
    size = np.abs(quotient)
    if stamps and (size.min() < 2**29 or size.max() >= 2**53):
        return np.array([int(s) / per_second for s in stamps], dtype=np.float64)
    return quotient + remainder / per_second


def _line_times(stamps: list[str], per_second: int, now: float) -> NDArray[np.float64] | None:
    """Seconds for each line's raw timestamp ("" = absent: `now`); None if one is not a plain
    integer of at most 19 digits."""
    if all(stamps):
        return _seconds(stamps, per_second)
    given = [i for i, s in enumerate(stamps) if s]
    seconds = _seconds([stamps[i] for i in given], per_second)
    if seconds is None:
        return None
    out = np.full(len(stamps), now, dtype=np.float64)
    out[given] = seconds
    return out


def _resolve(
    head: str, key: str, index: Mapping[str, int], names: Mapping[str, str] | None
) -> int | None:
    """The column of a plain head's field, or None if the head is not well-formed or the name
    unknown (the line-by-line path then says which)."""
    measurement, *items = head.split(",")
    tags = [(k, v) for k, _, v in (item.partition("=") for item in items)]
    if not measurement or not all(k and v for k, v in tags):
        return None
    sid = names.get(external_name(measurement, tags, key)) if names else None
    return index.get(f"{measurement}.{key}" if sid is None else sid)


class _SeenNames:
    """The columns of the series that recent bodies named, by how they named them: a small
    first-in, first-out memory (gateways send the same series batch after batch, and resolving
    thousands of names is a good part of a body's parse). Entries hold the index and name map
    they were resolved with, and only serve those same objects."""

    def __init__(self, size: int = 32) -> None:
        self._size = size
        self._lock = threading.Lock()
        self._entries: dict[Hashable, tuple[object, object, NDArray[np.int64]]] = {}

    def get(
        self, key: Hashable, index: Mapping[str, int], names: Mapping[str, str] | None
    ) -> NDArray[np.int64] | None:
        entry = self._entries.get(key)
        if entry is None or entry[0] is not index or entry[1] is not names:
            return None
        return entry[2].copy()

    def put(
        self,
        key: Hashable,
        index: Mapping[str, int],
        names: Mapping[str, str] | None,
        columns: NDArray[np.int64],
    ) -> None:
        with self._lock:
            while len(self._entries) >= self._size:
                del self._entries[next(iter(self._entries))]
            self._entries[key] = (index, names, columns.copy())


_SEEN = _SeenNames()


def _columns(
    heads: list[str],
    keys: list[str],
    index: Mapping[str, int],
    names: Mapping[str, str] | None,
    *,
    tagged: bool,
) -> NDArray[np.int64] | None:
    """The column of each sample (its line's head, its field key), or None if a head is not
    well-formed or a name unknown."""
    if not names and not tagged:
        try:
            sids = [h + "." + k for h, k in zip(heads, keys, strict=True)]
            return np.fromiter(map(index.__getitem__, sids), dtype=np.int64, count=len(keys))
        except KeyError:
            return None
    cache: dict[tuple[str, str], int | None] = {}
    found: list[int] = []
    for pair in zip(heads, keys, strict=True):
        col = cache.get(pair, -1)
        if col == -1:
            col = cache[pair] = _resolve(pair[0], pair[1], index, names)
        if col is None:
            return None
        found.append(col)
    return np.array(found, dtype=np.int64)


def _bulk(
    body: bytes,
    text: str,
    index: Mapping[str, int],
    names: Mapping[str, str] | None,
    per_second: int,
    now: float,
    max_samples: int,
) -> tuple[NDArray[np.int64], NDArray[np.float64], NDArray[np.float64]] | None:
    """Columns, times and values of a body of plain, well-formed lines with known names and
    valid values, parsed whole; None for anything else (see the module docstring)."""
    if "\\" in text or '"' in text:
        return None  # escapes and strings: line by line
    if "\r" in text or "#" in text or "\n\n" in text or text[:1] == "\n":
        # Carriage returns, comments or blank lines: without them the body means the same (the
        # line numbers change, but this path only ever accepts; refusals come line by line).
        kept = (line.removesuffix("\r") for line in text.split("\n"))
        text = "\n".join(line for line in kept if line and line[0] != "#")
        if "\r" in text:
            return None
        body = text.encode()
    elif text[-1:] == "\n":  # one final newline is usual
        text, body = text[:-1], body[:-1]
    skeleton = body.translate(None, _SKELETON)
    # Usually every line has the same shape: then checking the first line's is enough.
    first = skeleton[: skeleton.find(b"\n") + 1]
    uniform = bool(first) and skeleton == first * skeleton.count(b"\n") + first[:-1]
    shape = first[:-1] if uniform else skeleton
    if _STAMPED.fullmatch(shape):
        step = 3
    elif _UNSTAMPED.fullmatch(shape):
        step = 2
    else:
        return None
    # The skeleton proves every line has `step` space-separated sections, so the flat split
    # puts each line's head, field set (and timestamp) in its slot.
    tokens = text.replace("\n", " ").split(" ")
    heads = tokens[0::step]
    field_sets = tokens[1::step]
    # ... and that every field is one `key=value`: keys and values alternate.
    items = ",".join(field_sets).replace("=", ",").split(",")
    keys, raws = items[0::2], items[1::2]
    n = len(keys)
    if n > max_samples or not all(heads) or not all(keys):  # too many, or an empty name
        return None
    counts: NDArray[np.int64] | None = None
    if n != len(heads):  # several fields on some lines
        if uniform:
            counts = np.full(len(heads), n // len(heads), dtype=np.int64)
        else:
            counts = np.fromiter(map(str.count, field_sets, repeat(",")), np.int64, len(heads))
            counts += 1
    # A gateway sends the same series batch after batch: their columns are remembered by how
    # the body names them (with the skeleton, which fixes each field's line).
    seen_key = (id(index), id(names), skeleton, " ".join(heads), " ".join(keys))
    columns = _SEEN.get(seen_key, index, names)
    if columns is None:
        tagged = skeleton[:1] == b"," or b"\n," in skeleton
        if counts is not None:
            heads = np.repeat(np.array(heads, dtype=object), counts).tolist()
        columns = _columns(heads, keys, index, names, tagged=tagged)
        if columns is None:
            return None
        _SEEN.put(seen_key, index, names, columns)
    values = _floats(raws)
    if values is None:  # integers (12i), booleans, or something wrong
        try:
            values = np.array([_value(raw, "", 0) for raw in raws], dtype=np.float64)
        except IngestError:
            return None
    if step == 3:
        stamps = tokens[2::3]
        line_times = _seconds(stamps, per_second) if all(stamps) else None
        if line_times is None:
            return None
    else:
        line_times = np.full(len(field_sets), now, dtype=np.float64)
    times = line_times if counts is None else np.repeat(line_times, counts)
    return columns, times, values


def parse_line_protocol(
    body: bytes,
    table: SignalTable,
    *,
    now: float,
    precision: str = "ns",
    source: str = "http",
    names: Mapping[str, str] | None = None,
    max_samples: int = MAX_SAMPLES,
) -> ParsedBatch:
    """Parse a line-protocol body into the batch structure the JSON parser produces.

    `now` is the receive time given to lines without a timestamp; `names` maps external names
    (see `external_name`) to signal ids, ahead of the `<measurement>.<field>` default.

    Two passes keep Python's per-sample work small: the first splits lines and resolves names
    (a plain line's raw head and field key are cached, so a repeated series costs one dict
    lookup); the second converts all values at once (`_floats`), then all timestamps (one
    regular-expression match over their joined text). Only when that fails does each value go
    through `_value` again, to name the first bad one and its line. Bodies of plain lines skip
    the first pass (`_bulk`)."""
    names = names or None  # an empty map is no map (and one key for the remembered names)
    per_second = PRECISIONS.get(precision)
    if per_second is None:
        raise IngestError(
            f"precision '{_show(precision)}' is not one of ns, us, ms, s", "bad_precision"
        )
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as err:
        raise IngestError(f"body is not UTF-8 text: {err}", "bad_encoding") from None
    index = table.index
    whole = _bulk(body, text, index, names, per_second, now, max_samples)
    if whole is not None:
        return ParsedBatch(source=source, columns=whole[0], times=whole[1], values=whole[2])
    lines = text.split("\n")
    columns: list[int] = []
    raws: list[str] = []  # raw field values, one per sample
    stamps: list[str] = []  # raw timestamp per line with samples, "" when absent
    stamp_line: list[int] = []  # the number of each of those lines
    counts: list[int] = []  # samples per line
    # (head, field key) -> column, as written on plain lines / with escape pairs hidden.
    plain_cache: dict[tuple[str, str], int] = {}
    hidden_cache: dict[tuple[str, str], int] = {}
    careful: dict[tuple[str, tuple[tuple[str, str], ...], str], int] = {}
    add_column, add_raw = columns.append, raws.append
    plain = "\\" not in text and '"' not in text
    for lineno, line in enumerate(lines, start=1):
        if line[-1:] == "\r":
            line = line[:-1]
        if not line or line[0] == "#":
            continue
        before = len(columns)
        if plain or ("\\" not in line and '"' not in line):
            split, cache = line, plain_cache
        elif '"' not in line and not _HIDDEN.search(line):
            split, cache = _PAIRS.sub(lambda m: _HIDE[m.group()[1]], line), hidden_cache
        else:
            split, cache = "", plain_cache  # quoted strings: the careful path below
        parts = split.split(" ")
        if (
            split
            and 2 <= len(parts) <= 3
            and "" not in parts
            and "=" not in parts[0].partition(",")[0]
        ):
            head = parts[0]
            for j, item in enumerate(parts[1].split(",")):
                key, eq, raw = item.partition("=")
                col = cache.get((head, key))
                if col is None or not eq:
                    measurement, tags, fields, _ = _tokens(line, lineno)  # checks the line
                    col = _column(index, names, measurement, tags, fields[j][0], lineno)
                    cache[(head, key)] = col
                add_column(col)
                add_raw(raw)
            written = parts[2] if len(parts) == 3 else ""
            if cache is hidden_cache:  # put escapes back (they make a value or time invalid)
                raws[before:] = [_reveal(raw) for raw in raws[before:]]
                written = _reveal(written)
            stamps.append(written)
        else:
            measurement, tags, fields, stamp = _tokens(line, lineno)
            tag_key = tuple(tags)
            for key, raw in fields:
                col = careful.get((measurement, tag_key, key))
                if col is None:
                    col = _column(index, names, measurement, tags, key, lineno)
                    careful[(measurement, tag_key, key)] = col
                add_column(col)
                add_raw(raw)
            stamps.append(stamp or "")
        counts.append(len(columns) - before)
        stamp_line.append(lineno)
        if len(columns) > max_samples:
            raise IngestError(
                f"batch exceeds the limit of {max_samples} samples (at line {lineno})",
                "oversized",
                status=413,
            )

    def fail(i: int) -> NoReturn:
        """Raise the message for sample `i`'s bad value, naming its field and line."""
        ends = np.cumsum(counts)
        row = int(np.searchsorted(ends, i, side="right"))
        lineno = stamp_line[row]
        fields = _tokens(lines[lineno - 1].removesuffix("\r"), lineno)[2]
        field = fields[i - (int(ends[row - 1]) if row else 0)][0]
        _value(raws[i], field, lineno)
        raise IngestError(  # not reached: `_value` refuses what the bulk check refused
            f"line {lineno}: field '{_show(field)}' value '{_show(raws[i])}' is invalid",
            "bad_value",
        )

    values = _floats(raws)
    if values is None:
        values = np.empty(len(raws), dtype=np.float64)
        for i, raw in enumerate(raws):
            try:
                values[i] = _value(raw, "", 0)
            except IngestError:
                fail(i)  # the same problem again, now naming its field and line
    per_line = _line_times(stamps, per_second, now)
    if per_line is None:
        for stamp, at in zip(stamps, stamp_line, strict=True):
            if stamp and not (len(stamp) <= _MAX_DIGITS and _TIMESTAMP.fullmatch(stamp)):
                raise IngestError(
                    f"line {at}: timestamp '{_show(stamp)}' is not an integer", "bad_time"
                )
        # integers of 20 to 24 digits: valid, if far from now
        per_line = np.array([int(s) / per_second if s else now for s in stamps], dtype=np.float64)
    return ParsedBatch(
        source=source,
        columns=np.asarray(columns, dtype=np.int64),
        times=np.repeat(per_line, np.asarray(counts, dtype=np.int64)),
        values=values,
    )
