"""JSON payloads of MQTT messages: one reading, or a Nexus batch.

    4.82                                        one reading, at the time it is received
    {"value": 4.82}                             the same
    {"time": 1780272000.5, "value": 4.82}       one reading at a time (epoch seconds, or an
    {"time": "2026-06-01T00:00:00Z", ...}       ISO-8601 string with a time zone)
    {"samples": [{"signal": "pump-1.pressure", "time": ..., "value": ...}, ...]}
                                                a batch, as POSTed to /api/v1/telemetry (an
                                                optional "source" is allowed and ignored)

A reading's signal is the one its topic is mapped to (the source's `map`); a batch names its
signals itself, whatever the topic. `parse_message` only reads the payload; which signal a name
stands for, and whether the source may send it, is the source's business (`ingest.mqtt`).

Booleans are not numbers here (as in the HTTP batch format): a device that sends `true` where a
measurement is expected should hear about it. Every rejection is an `IngestError` naming the
field (and the sample of a batch) and the problem.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

import orjson

from safety_nexus.core.errors import IngestError
from safety_nexus.ingest.json_batch import MAX_SAMPLES, samples_list

NAN = float("nan")
_SHOW = 40


@dataclass(frozen=True, slots=True)
class Samples:
    """A batch message: signal ids, times (epoch seconds) and values, one per sample."""

    signals: list[str]
    times: list[float]
    values: list[float]


def _show(raw: object) -> str:
    text = repr(raw) if not isinstance(raw, str) else raw
    return text if len(text) <= _SHOW else text[:_SHOW] + "..."


def _time(raw: object, where: str) -> float:
    kind = type(raw)
    if kind is float or kind is int:  # orjson: 64-bit integers, finite floats
        t = float(raw)  # type: ignore[arg-type]
        if not math.isfinite(t):
            raise IngestError(f"{where}time: {_show(raw)} is not a timestamp", "bad_time")
        return t
    if kind is str:
        assert isinstance(raw, str)
        try:
            dt = datetime.fromisoformat(raw)
        except ValueError:
            raise IngestError(
                f"{where}time: '{_show(raw)}' is not an ISO-8601 timestamp", "bad_time"
            ) from None
        if dt.tzinfo is None:
            raise IngestError(f"{where}time: '{_show(raw)}' needs a time zone", "bad_time")
        try:
            return dt.timestamp()
        except (OverflowError, ValueError, OSError):  # the edges of the calendar
            raise IngestError(f"{where}time: '{_show(raw)}' is out of range", "bad_time") from None
    raise IngestError(f"{where}time: expected epoch seconds or an ISO-8601 string", "bad_time")


def _value(raw: object, where: str) -> float:
    kind = type(raw)
    if kind is not float and kind is not int:
        what = "a boolean" if kind is bool else f"a {type(raw).__name__}"
        raise IngestError(f"{where}value: expected a number, got {what}", "bad_value")
    v = float(raw)  # type: ignore[arg-type]
    if not math.isfinite(v):
        raise IngestError(f"{where}value: {_show(raw)} is not a finite number", "non_finite")
    return v


def _batch(raw: object, max_samples: int) -> Samples:
    samples = samples_list(raw, max_samples)
    signals: list[str] = []
    times: list[float] = []
    values: list[float] = []
    for i, s in enumerate(samples):
        where = f"samples[{i}]."
        if not isinstance(s, dict):
            raise IngestError(f"samples[{i}]: expected an object", "bad_shape")
        if len(s) != 3 or "signal" not in s or "time" not in s or "value" not in s:
            extra = sorted(set(s) - {"signal", "time", "value"})
            if extra:
                why = f"unknown field '{_show(extra[0])}'"
            else:
                missing = [k for k in ("signal", "time", "value") if k not in s]
                why = f"field '{missing[0]}' required"
            raise IngestError(f"samples[{i}]: {why}", "bad_shape")
        sid = s["signal"]
        if type(sid) is not str or not sid:
            raise IngestError(f"{where}signal: expected a signal id string", "bad_shape")
        signals.append(sid)
        times.append(_time(s["time"], where))
        values.append(_value(s["value"], where))
    return Samples(signals, times, values)


def parse_message(
    payload: bytes | bytearray, *, max_samples: int = MAX_SAMPLES
) -> tuple[float, float] | Samples:
    """One message: `(time, value)` for a reading (time NaN when the payload has none: the
    receive time is used), or `Samples` for a batch."""
    try:
        doc = orjson.loads(payload)
    except orjson.JSONDecodeError as err:
        raise IngestError(f"payload is not valid JSON: {err}", "bad_json") from None
    kind = type(doc)
    if kind is float or kind is int:
        return NAN, _value(doc, "")
    if kind is not dict:
        what = "a boolean" if kind is bool else f"a {kind.__name__}"
        raise IngestError(
            f"payload: expected a number, a {{time, value}} object or a {{samples}} batch,"
            f" got {what}",
            "bad_shape",
        )
    if "samples" in doc:
        extra = sorted(set(doc) - {"samples", "source"})
        if extra:
            raise IngestError(f"batch: unknown field '{_show(extra[0])}'", "bad_shape")
        return _batch(doc["samples"], max_samples)
    if "value" not in doc:
        raise IngestError("payload: a reading needs a 'value'", "bad_shape")
    extra = sorted(set(doc) - {"time", "value"})
    if extra:
        raise IngestError(f"reading: unknown field '{_show(extra[0])}'", "bad_shape")
    value = _value(doc["value"], "")
    raw = doc.get("time")
    return (NAN if raw is None and "time" not in doc else _time(raw, "")), value
