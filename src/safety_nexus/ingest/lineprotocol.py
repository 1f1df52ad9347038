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
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import NoReturn

import numpy as np

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
# Every raw value a plain float / every raw timestamp an integer or absent, one per line.
_FLOATS = re.compile(
    r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?(?:\n[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)*"
)
_STAMPS = re.compile(r"(?:-?\d{1,19})?(?:\n(?:-?\d{1,19})?)*")
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
        )
    return col


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
    lookup); the second checks all values, then all timestamps, with one regular-expression
    match over their joined text and converts them in bulk. Only when that check fails does
    each value go through `_value` again, to name the first bad one and its line."""
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

    if not raws:
        values = np.empty(0, dtype=np.float64)
    elif _FLOATS.fullmatch("\n".join(raws)):
        values = np.array([float(raw) for raw in raws], dtype=np.float64)
        finite = np.isfinite(values)
        if not finite.all():
            fail(int(np.flatnonzero(~finite)[0]))
    else:
        values = np.empty(len(raws), dtype=np.float64)
        for i, raw in enumerate(raws):
            try:
                values[i] = _value(raw, "", 0)
            except IngestError:
                fail(i)  # the same problem again, now naming its field and line
    if not _STAMPS.fullmatch("\n".join(stamps)):
        for stamp, at in zip(stamps, stamp_line, strict=True):
            if stamp and not (len(stamp) <= _MAX_DIGITS and _TIMESTAMP.fullmatch(stamp)):
                raise IngestError(
                    f"line {at}: timestamp '{_show(stamp)}' is not an integer", "bad_time"
                )
    per_line = np.array([int(s) / per_second if s else now for s in stamps], dtype=np.float64)
    return ParsedBatch(
        source=source,
        columns=np.asarray(columns, dtype=np.int64),
        times=np.repeat(per_line, np.asarray(counts, dtype=np.int64)),
        values=values,
    )
