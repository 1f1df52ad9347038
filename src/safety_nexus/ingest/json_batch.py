"""JSON telemetry batches, as POSTed to `/api/v1/telemetry`, as a list of samples:

    {"source": "field-gateway",
     "samples": [{"signal": "pump-1.pressure", "time": 1780272000.0, "value": 4.82}, ...]}

or as columns, one entry per sample in each list, with `time` standing for a `times` list that
repeats one timestamp (a snapshot of many signals):

    {"source": "field-gateway",
     "signals": ["pump-1.pressure", "pump-1.flow"],
     "times": [1780272000.0, 1780272000.5],
     "values": [4.82, 31.0]}

The columns take a third of the time to parse (no object per sample) and about 40 % fewer
bytes. A time is epoch seconds or an ISO-8601 string with a time zone. Every rejection names
the sample and the field (`samples[3].value`, `values[3]`), so that a gateway's author can find
the bad value; of several problems in the columnar form, the first bad signal is reported, then
the first bad time, then the first bad value.

Speed (the HTTP ingest target is a million samples a second on two cores): a well-formed batch
takes a fast path, orjson then one list comprehension per field, the signal ids resolved with
one `map` over the index, the types of all values (and times) checked at once as the set of
their Python types, the conversion and the finiteness check done by NumPy. Anything unexpected
on that path (a missing key, an unknown signal, a string where a number belongs, a non-finite
value) abandons it, and the careful loop below goes through the samples one by one to raise
the precise error for the first bad one; both paths accept exactly the same batches. Bodies
orjson refuses are read again with the standard library's `json`, which accepts what orjson
does not (`NaN`, `Infinity`, numbers beyond the double range, lone surrogates, UTF-16/32) so
that those get the same, precise answers as before ("samples[3].value: nan is not a finite
number" rather than a syntax error).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import orjson

from safety_nexus.core.errors import IngestError
from safety_nexus.core.types import SignalTable

MAX_SAMPLES = 100_000
_FIELDS = frozenset({"signal", "time", "value"})
_NUMBERS = frozenset({int, float})  # exact types: bool is an int subclass and must be refused
_NUMBERS_OR_TEXT = frozenset({int, float, str})
_COLUMNS = frozenset({"signals", "times", "time", "values"})
_TOP = frozenset({"source", "samples"}) | _COLUMNS


@dataclass(frozen=True, slots=True)
class ParsedBatch:
    source: str
    columns: np.ndarray
    times: np.ndarray
    values: np.ndarray

    def __len__(self) -> int:
        return int(self.columns.shape[0])


def _time(raw: object, where: str) -> float:
    """A timestamp in epoch seconds; `where` ("samples[3].time", "times[3]") for messages."""
    if isinstance(raw, bool):
        raise IngestError(f"{where}: expected a number or ISO-8601 string", "bad_time")
    if isinstance(raw, int | float):
        try:
            return float(raw)
        except OverflowError:  # an integer beyond the double range (stdlib json keeps them)
            raise IngestError(
                f"{where}: integer beyond the range of a timestamp", "bad_time"
            ) from None
    if isinstance(raw, str):
        try:
            dt = datetime.fromisoformat(raw)
        except ValueError:
            raise IngestError(
                f"{where}: '{raw[:40]}' is not an ISO-8601 timestamp", "bad_time"
            ) from None
        if dt.tzinfo is None:
            raise IngestError(f"{where}: timestamp needs a time zone", "bad_time")
        return dt.timestamp()
    raise IngestError(f"{where}: expected a number or ISO-8601 string", "bad_time")


def _value(raw: object, where: str) -> float:
    """A finite value; `where` ("samples[3].value", "values[3]") for messages."""
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise IngestError(f"{where}: expected a number", "bad_value")
    try:
        v = float(raw)
    except OverflowError:
        raise IngestError(
            f"{where}: integer beyond ±1.8e308 is not a finite number", "non_finite"
        ) from None
    if not math.isfinite(v):
        raise IngestError(f"{where}: {raw} is not a finite number", "non_finite")
    return v


def _load(body: bytes) -> Any:
    """The body as Python objects: orjson, or the standard library where orjson refuses."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as fast_err:
        try:
            return json.loads(body)
        except RecursionError:  # nesting deeper than the interpreter's stack
            raise IngestError(f"body is not valid JSON: {fast_err}", "bad_json") from None
        except (ValueError, UnicodeDecodeError) as err:  # JSONDecodeError is a ValueError
            raise IngestError(f"body is not valid JSON: {err}", "bad_json") from err


def _numbers(raw: list[Any]) -> np.ndarray | None:
    """Finite numbers as float64, or None if any is not (then look at each to say which)."""
    if not set(map(type, raw)) <= _NUMBERS:
        return None
    try:
        values = np.array(raw, dtype=np.float64)
    except OverflowError:  # an integer beyond the double range (from the standard library)
        return None
    return values if np.isfinite(values).all() else None


def _times(raw: list[Any]) -> np.ndarray | None:
    """Numbers or ISO-8601 strings as epoch seconds, or None if any is neither."""
    kinds = set(map(type, raw))
    try:
        if kinds <= _NUMBERS:
            return np.array(raw, dtype=np.float64)
        if kinds <= _NUMBERS_OR_TEXT:
            # A snapshot repeats one timestamp: convert each distinct one once. (1 and 1.0
            # share a key and a value; bool, which would share it too, is excluded above.)
            seconds = {t: _time(t, "time") for t in dict.fromkeys(raw)}
            return np.fromiter(map(seconds.__getitem__, raw), dtype=np.float64, count=len(raw))
    except (OverflowError, IngestError):
        return None
    return None


def _fast(
    samples: list[Any], index: dict[str, int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Columns, times and values of a batch in which nothing is wrong; None as soon as
    anything might be (the careful loop then names the first problem)."""
    n = len(samples)
    try:
        # Every sample has exactly three keys and all three are present: no extras, none missing.
        if n and set(map(len, samples)) != {3}:
            return None
        sids = [s["signal"] for s in samples]
        raw_times = [s["time"] for s in samples]
        raw_values = [s["value"] for s in samples]
        # The index holds only strings: a hit means a known signal id, a miss any other problem.
        columns = np.fromiter(map(index.__getitem__, sids), dtype=np.int64, count=n)
    except (KeyError, TypeError):
        return None
    values = _numbers(raw_values)
    times = _times(raw_times)
    if values is None or times is None:
        return None
    return columns, times, values


def _careful(
    samples: list[Any], index: dict[str, int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One sample at a time, raising the precise error for the first bad one."""
    n = len(samples)
    columns = np.empty(n, dtype=np.int64)
    times = np.empty(n, dtype=np.float64)
    values = np.empty(n, dtype=np.float64)
    for i, s in enumerate(samples):
        if not isinstance(s, dict):
            raise IngestError(f"samples[{i}]: expected an object", "bad_shape")
        extra = set(s) - _FIELDS
        if extra:
            raise IngestError(f"samples[{i}]: unknown field '{sorted(extra)[0]}'", "bad_shape")
        sid = s.get("signal")
        if not isinstance(sid, str):
            raise IngestError(f"samples[{i}].signal: expected a signal id string", "bad_shape")
        col = index.get(sid)
        if col is None:
            raise IngestError(
                f"samples[{i}].signal: unknown signal '{sid[:80]}'",
                "unknown_signal",
                subject=sid[:80],
            )
        if "time" not in s or "value" not in s:
            missing = "time" if "time" not in s else "value"
            raise IngestError(f"samples[{i}].{missing}: field required", "bad_shape")
        columns[i] = col
        times[i] = _time(s["time"], f"samples[{i}].time")
        values[i] = _value(s["value"], f"samples[{i}].value")
    return columns, times, values


def _columnar(
    doc: dict[str, Any], index: dict[str, int], max_samples: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Columns, times and values of the columnar form (see the module docstring)."""
    signals = doc.get("signals")
    if not isinstance(signals, list):
        raise IngestError("signals: expected a list of signal ids", "bad_shape")
    n = len(signals)
    if n > max_samples:
        raise IngestError(
            f"batch of {n} samples exceeds the limit of {max_samples}", "oversized", status=413
        )
    raw_values = doc.get("values")
    if not isinstance(raw_values, list) or len(raw_values) != n:
        raise IngestError(f"values: expected a list of {n} numbers, one per signal", "bad_shape")
    if ("times" in doc) == ("time" in doc):
        raise IngestError(
            "times: expected either 'times' (one per signal) or 'time' (one for all)", "bad_shape"
        )
    raw_times = doc.get("times")
    if "times" in doc and (not isinstance(raw_times, list) or len(raw_times) != n):
        raise IngestError(f"times: expected a list of {n} timestamps, one per signal", "bad_shape")
    try:
        columns = np.fromiter(map(index.__getitem__, signals), dtype=np.int64, count=n)
    except (KeyError, TypeError):
        for i, sid in enumerate(signals):
            if not isinstance(sid, str):
                raise IngestError(
                    f"signals[{i}]: expected a signal id string", "bad_shape"
                ) from None
            if sid not in index:
                raise IngestError(
                    f"signals[{i}]: unknown signal '{sid[:80]}'",
                    "unknown_signal",
                    subject=sid[:80],
                ) from None
        raise  # not reached: the loop finds what the index refused
    if raw_times is None:
        times = np.full(n, _time(doc["time"], "time"), dtype=np.float64)
    else:
        found = _times(raw_times)
        if found is None:
            found = np.array([_time(t, f"times[{i}]") for i, t in enumerate(raw_times)])
        times = found
    values = _numbers(raw_values)
    if values is None:
        values = np.array([_value(v, f"values[{i}]") for i, v in enumerate(raw_values)])
    return columns, times, values


def samples_list(samples: object, max_samples: int) -> list[Any]:
    """A batch's `samples`, checked to be a list of at most `max_samples` (HTTP and MQTT)."""
    if not isinstance(samples, list):
        raise IngestError("samples: expected a list of {signal, time, value}", "bad_shape")
    if len(samples) > max_samples:
        raise IngestError(
            f"batch of {len(samples)} samples exceeds the limit of {max_samples}",
            "oversized",
            status=413,
        )
    return samples


def parse_json_batch(
    body: bytes, table: SignalTable, *, max_samples: int = MAX_SAMPLES
) -> ParsedBatch:
    doc = _load(body)
    if not isinstance(doc, dict):
        raise IngestError(
            "body must be a JSON object with a 'samples' list (or 'signals', 'times', 'values')",
            "bad_shape",
        )
    unknown = set(doc) - _TOP
    if unknown:
        raise IngestError(f"unknown field '{sorted(unknown)[0]}'", "bad_shape")
    source = doc.get("source", "http")
    if not isinstance(source, str) or not source:
        raise IngestError("source: expected a non-empty string", "bad_shape")
    both = sorted(_COLUMNS & set(doc))
    if "samples" not in doc and both:
        columns, times, values = _columnar(doc, table.index, max_samples)
        return ParsedBatch(source=source, columns=columns, times=times, values=values)
    if both:
        raise IngestError(f"{both[0]}: not allowed with 'samples' (use one form)", "bad_shape")
    samples = samples_list(doc.get("samples"), max_samples)
    parsed = _fast(samples, table.index) or _careful(samples, table.index)
    columns, times, values = parsed
    return ParsedBatch(source=source, columns=columns, times=times, values=values)
