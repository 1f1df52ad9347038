"""Prometheus remote-write 1.0, as Prometheus's `remote_write` POSTs it to
`/api/v1/prom/write?source=<id>`.

The body is a protobuf `prometheus.WriteRequest` compressed in snappy's *block* format (not the
framed stream format):

    message WriteRequest { repeated TimeSeries timeseries = 1; }   // metadata = 3 not read
    message TimeSeries   { repeated Label labels = 1; repeated Sample samples = 2; }
    message Label        { string name = 1; string value = 2; }
    message Sample       { double value = 1; int64 timestamp = 2; }   // timestamp: epoch ms

The message classes are built at import from a descriptor written here, in a private descriptor
pool (no protoc, no generated code, no clash with anyone else's `prometheus` package). What the
descriptor leaves out (metadata, exemplars, native histograms) the parser skips as unknown
fields: a request that carries only metadata is a valid request with no samples. Requests are
read through a view of the same wire format that keeps each label as the raw bytes of its Label
message, so that a series met before costs one dictionary lookup (`SeriesMap.resolve`); a Label
is parsed (and its UTF-8 checked) the first time its label set is met.

Names: a series is named the way Prometheus shows it, `name{label="value",...}`: the metric name
is the `__name__` label, the other labels follow sorted by name, values escaped as in the text
format (backslash, double quote, newline); a label with an empty value is left out, because
Prometheus treats it as absent. Every label is part of the name, `job` and `instance` included:
the same metric from two instances is two series, and an operator lists the exact series in the
source's `map` (copied from Prometheus's UI; spaces after commas and any label order are
accepted there, see `canonical_series`). Only mapped series become samples, so a prometheus
source without a map is refused by the site's validation. Timestamps (ms) become seconds.

What is reported: Prometheus forwards everything it scrapes (hundreds of series of its own and
of every target, `go_*`, `process_*`, `up`, ...), so an unmapped series as such is normal and is
only counted (`nexus_ingest_phantom_total{source}`; keep the noise off the wire with
`write_relabel_configs`). It is reported as a "phantom source" finding when its metric name is
one the map uses for another label set: that is a new instance of a watched quantity, or a
relabelling that broke the mapping, and both mean the site is missing data it thinks it has. At
most `MAX_REPORTED` such series are reported per request; the runtime rate-limits per name.

Values: NaN is a gap (Prometheus's staleness marker is a NaN) and is skipped. ±Inf cannot be
monitored either; those samples are skipped and counted rather than refusing the request,
because Prometheus drops a batch that gets a 4xx and the rest of it would be lost with them.

Refusals (`IngestError`, the reason in brackets): an empty, corrupt or non-snappy body
[bad_encoding], a body that would decompress past `MAX_DECODED` bytes or a request with more
than `max_samples` mapped samples [oversized, 413], content that is not a `WriteRequest`
[bad_payload]. A series with a label name twice, which Prometheus never sends, is not refused: it
matches no map key (a key names each label once), so it is unmapped like any other.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import cramjam
import numpy as np

# protobuf ships no type stubs (types-protobuf is not a dependency)
from google.protobuf import (  # type: ignore[import-untyped]
    descriptor_pb2,
    descriptor_pool,
    message_factory,
)
from google.protobuf.message import DecodeError, Message  # type: ignore[import-untyped]

from safety_nexus.core.errors import ConfigError, ConfigIssue, IngestError
from safety_nexus.core.types import SignalTable
from safety_nexus.ingest.json_batch import MAX_SAMPLES, ParsedBatch
from safety_nexus.site.schema import Site, Source

MAX_DECODED = 32 * 1024 * 1024  # bytes a body may decompress to (Prometheus sends ~100 KiB)
MAX_REPORTED = 20  # unmapped series of a mapped metric reported per request
MAX_REMEMBERED = 50_000  # label sets a source remembers the meaning of (~350 bytes each)
_QUIET, _NEAR = -1, -2  # what `SeriesMap.resolve` says of an unmapped series
_SHOW = 120  # characters of a series name quoted in a message

_F = descriptor_pb2.FieldDescriptorProto
_MESSAGES: dict[str, list[tuple[str, int, int, int, str]]] = {
    # message: [(field, number, type, label, message type of the field)]
    "Label": [
        ("name", 1, _F.TYPE_STRING, _F.LABEL_OPTIONAL, ""),
        ("value", 2, _F.TYPE_STRING, _F.LABEL_OPTIONAL, ""),
    ],
    "Sample": [
        ("value", 1, _F.TYPE_DOUBLE, _F.LABEL_OPTIONAL, ""),
        ("timestamp", 2, _F.TYPE_INT64, _F.LABEL_OPTIONAL, ""),
    ],
    "TimeSeries": [
        ("labels", 1, _F.TYPE_MESSAGE, _F.LABEL_REPEATED, ".prometheus.Label"),
        ("samples", 2, _F.TYPE_MESSAGE, _F.LABEL_REPEATED, ".prometheus.Sample"),
    ],
    "WriteRequest": [
        ("timeseries", 1, _F.TYPE_MESSAGE, _F.LABEL_REPEATED, ".prometheus.TimeSeries"),
    ],
    # The same wire format, read with each label left as the raw bytes of its Label message:
    # a series seen before is recognised by those bytes without building a Python object per
    # label (see `SeriesMap.resolve`); 4-5 times faster on a request of 500 one-sample series.
    "TimeSeriesView": [
        ("labels", 1, _F.TYPE_BYTES, _F.LABEL_REPEATED, ""),
        ("samples", 2, _F.TYPE_MESSAGE, _F.LABEL_REPEATED, ".prometheus.Sample"),
    ],
    "WriteRequestView": [
        ("timeseries", 1, _F.TYPE_MESSAGE, _F.LABEL_REPEATED, ".prometheus.TimeSeriesView"),
    ],
}


def _message_classes() -> dict[str, type[Message]]:
    """The remote-write messages, from a descriptor built here (the schema above)."""
    proto = descriptor_pb2.FileDescriptorProto(
        name="safety_nexus/prometheus_remote_write.proto", package="prometheus", syntax="proto3"
    )
    for name, fields in _MESSAGES.items():
        message = proto.message_type.add(name=name)
        for fname, number, kind, label, type_name in fields:
            added = message.field.add(name=fname, number=number, type=kind, label=label)
            if type_name:
                added.type_name = type_name
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    return {
        name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"prometheus.{name}"))
        for name in _MESSAGES
    }


_CLASSES = _message_classes()
WriteRequest = _CLASSES["WriteRequest"]
TimeSeries = _CLASSES["TimeSeries"]
Label = _CLASSES["Label"]
Sample = _CLASSES["Sample"]
_WriteRequestView = _CLASSES["WriteRequestView"]


# -- names -----------------------------------------------------------------------------------


def _escape(value: str) -> str:
    if "\\" in value or '"' in value or "\n" in value:
        return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return value


def series_name(name: str, labels: Iterable[tuple[str, str]]) -> str:
    """`name{a="1",b="2"}`: the metric name and the other labels (not `__name__`), sorted by
    name, empty values left out; just `name` without labels."""
    pairs = sorted((k, v) for k, v in labels if v and k != "__name__")
    if not pairs:
        return name
    return name + "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in pairs) + "}"


_METRIC = re.compile(r"\s*([a-zA-Z_:][a-zA-Z0-9_:]*)?\s*")
_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*')
_UNESCAPE = {"\\": "\\", '"': '"', "n": "\n"}
_ESCAPED = re.compile(r"\\(.)", re.DOTALL)


def _unescape(raw: str) -> str:
    def one(m: re.Match[str]) -> str:
        c = m.group(1)
        if c not in _UNESCAPE:
            raise ValueError(f"'\\{c}' is not an escape (use \\\\, \\\" or \\n)")
        return _UNESCAPE[c]

    return _ESCAPED.sub(one, raw)


def canonical_series(text: str) -> str:
    """A series as written in a site file's `map` (`up{job="x", instance="y"}`, labels in any
    order, `{__name__="up",...}` too) in the form `series_name` gives it. ValueError says what
    is wrong."""
    m = _METRIC.match(text)
    assert m is not None  # everything in it is optional
    name = m.group(1) or ""
    pos = m.end()
    labels: dict[str, str] = {}
    if pos < len(text):
        if text[pos] != "{":
            raise ValueError(f"unexpected '{text[pos]}' after the metric name")
        pos += 1
        while True:
            if text[pos:].strip() == "}":
                break
            lab = _LABEL.match(text, pos)
            if lab is None:
                raise ValueError(f"expected label=\"value\" at '{text[pos : pos + 20]}'")
            key, value = lab.group(1), _unescape(lab.group(2))
            if key in labels:
                raise ValueError(f"label '{key}' appears twice")
            labels[key] = value
            pos = lab.end()
            if text[pos : pos + 1] == ",":
                pos += 1
            elif text[pos:].strip() != "}":
                raise ValueError("expected ',' or a closing '}' after a label")
    if "__name__" in labels:
        if name:
            raise ValueError("the metric name is given twice (before '{' and as __name__)")
        name = labels.pop("__name__")
    if not name and not any(labels.values()):
        raise ValueError("names no metric and no label")
    return series_name(name, labels.items())


@dataclass(frozen=True, slots=True)
class SeriesMap:
    """A prometheus source's `map` with its keys in canonical form, resolved to signal
    columns; `metrics` holds the metric names the map uses.

    It also remembers what each label set it has met means (by the raw bytes of its Label
    messages: Prometheus encodes a series the same way every time), so that a series costs one
    dictionary lookup after its first request. At most `MAX_REMEMBERED` label sets are kept;
    past that the memory starts again (a Prometheus sending more distinct series than that
    unfiltered only pays the slower first-time path)."""

    source: str
    columns: Mapping[str, int]
    metrics: frozenset[str]
    _seen: dict[tuple[bytes, ...], tuple[int, str]] = field(
        default_factory=dict, compare=False, repr=False
    )

    def resolve(self, raw_labels: tuple[bytes, ...], i: int) -> tuple[int, str]:
        """(column, name) of a series given its labels as raw Label messages: a column >= 0
        when mapped; `_NEAR` for an unmapped series of a mapped metric, `_QUIET` for any other
        (its name not rendered: ""). IngestError when a label is not a Label message."""
        known = self._seen.get(raw_labels)
        if known is not None:
            return known
        pairs: list[tuple[str, str]] = []
        for j, raw in enumerate(raw_labels):
            label = Label()
            try:
                label.ParseFromString(raw)
            except DecodeError as err:
                raise IngestError(
                    f"timeseries[{i}].labels[{j}] is not a Label: {_reason(err)}",
                    "bad_payload",
                ) from None
            pairs.append((label.name, label.value))
        name = next((v for k, v in pairs if k == "__name__"), "")
        if name not in self.metrics:
            found = (_QUIET, "")
        else:
            full = series_name(name, pairs)
            found = (self.columns.get(full, _NEAR), full)
        if len(self._seen) >= MAX_REMEMBERED:
            self._seen.clear()
        self._seen[raw_labels] = found
        return found

    @classmethod
    def of(cls, site: Site, source: Source, table: SignalTable) -> SeriesMap:
        """Raises ConfigError naming the source and the key for a series that is not one, a
        series mapped twice or a target the table does not hold."""
        where = f"sources[{site.sources.index(source)}].map"
        issues: list[ConfigIssue] = []
        columns: dict[str, int] = {}
        metrics: set[str] = set()
        for key, target in source.map.items():
            try:
                name = canonical_series(key)
            except ValueError as err:
                issues.append(ConfigIssue(where, f"'{key}' is not a series 'name{{...}}': {err}"))
                continue
            col = table.index.get(target)
            if col is None:
                issues.append(ConfigIssue(where, f"'{key}' maps to unknown signal '{target}'"))
            elif name in columns:
                issues.append(ConfigIssue(where, f"'{key}' is mapped twice (as '{name}')"))
            else:
                columns[name] = col
                metrics.add(name.partition("{")[0])
        if issues:
            raise ConfigError(issues, source=f"source '{source.id}'")
        return cls(source.id, columns, frozenset(metrics))


# -- decoding --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Decoded:
    """A request's samples of mapped series, and what was left out of them."""

    batch: ParsedBatch
    series: int  # series in the request
    unmapped: int  # of those, not in the map (their samples are dropped)
    near_misses: tuple[str, ...]  # unmapped series of a mapped metric (to report)
    gaps: int  # NaN samples of mapped series skipped (staleness markers included)
    non_finite: int  # ±Inf samples of mapped series skipped


def _show(text: str) -> str:
    return text if len(text) <= _SHOW else text[:_SHOW] + "..."


def _reason(err: DecodeError) -> str:
    """What upb says is wrong, without its "Error parsing message with type ..." preamble."""
    return str(err).rpartition(": ")[2] or "cannot parse"


def decode_body(body: bytes) -> Any:
    """snappy (block format) -> a parsed WriteRequest, labels as raw bytes (`TimeSeriesView`);
    IngestError naming the problem."""
    if not body:
        raise IngestError(
            "body is empty; expected a snappy-compressed WriteRequest", "bad_encoding"
        )
    try:
        size = cramjam.snappy.decompress_raw_len(body)
    except cramjam.DecompressionError as err:
        raise IngestError(
            f"body is not snappy block-compressed data: {err}", "bad_encoding"
        ) from None
    if size > MAX_DECODED:
        raise IngestError(
            f"body would decompress to {size} bytes, more than {MAX_DECODED}", "oversized", 413
        )
    try:
        raw = cramjam.snappy.decompress_raw(body)
    except cramjam.DecompressionError as err:
        raise IngestError(
            f"body is not snappy block-compressed data: {err}", "bad_encoding"
        ) from None
    request = _WriteRequestView()
    try:
        request.ParseFromString(memoryview(raw))
    except DecodeError as err:
        raise IngestError(
            f"body is not a remote-write 1.0 WriteRequest (protobuf): {_reason(err)}",
            "bad_payload",
        ) from None
    return request


def decode_write_request(
    body: bytes, series: SeriesMap, *, max_samples: int = MAX_SAMPLES
) -> Decoded:
    """Decode a request body and keep the samples of mapped series (see the module docstring).

    Python touches every series once (one dictionary lookup of its raw labels, see
    `SeriesMap.resolve`) and the samples of mapped series once; NaN and ±Inf are filtered in
    bulk."""
    request = decode_body(body)
    resolve = series.resolve
    cols: list[int] = []
    counts: list[int] = []
    values: list[float] = []
    stamps: list[int] = []
    near: list[str] = []
    unmapped = 0
    total = 0
    for i, ts in enumerate(request.timeseries):
        col, name = resolve(tuple(ts.labels), i)
        if col < 0:
            unmapped += 1
            if col == _NEAR and len(near) < MAX_REPORTED:
                near.append(name)
            continue
        samples = ts.samples
        n = len(samples)
        if not n:
            continue
        total += n
        if total > max_samples:
            raise IngestError(
                f"request holds more than {max_samples} samples of mapped series"
                f" (at timeseries[{i}])",
                "oversized",
                413,
            )
        for s in samples:
            values.append(s.value)
            stamps.append(s.timestamp)
        cols.append(col)
        counts.append(n)
    value_arr = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(value_arr)
    gaps = int(np.count_nonzero(np.isnan(value_arr)))
    keep = None if finite.all() else finite
    column_arr = np.repeat(np.asarray(cols, dtype=np.int64), np.asarray(counts, dtype=np.int64))
    time_arr = np.asarray(stamps, dtype=np.int64) / 1000.0
    if keep is not None:
        column_arr, time_arr, value_arr = column_arr[keep], time_arr[keep], value_arr[keep]
    batch = ParsedBatch(source=series.source, columns=column_arr, times=time_arr, values=value_arr)
    return Decoded(
        batch=batch,
        series=len(request.timeseries),
        unmapped=unmapped,
        near_misses=tuple(near),
        gaps=gaps,
        non_finite=len(values) - int(np.count_nonzero(finite)) - gaps,
    )
