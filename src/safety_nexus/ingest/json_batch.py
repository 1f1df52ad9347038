"""JSON telemetry batches, as POSTed to `/api/v1/telemetry`.

    {"source": "field-gateway",
     "samples": [{"signal": "pump-1.pressure", "time": 1780272000.0, "value": 4.82}, ...]}

`time` is epoch seconds or an ISO-8601 string with a time zone. Every rejection names the sample
and the field, so that a gateway's author can find the bad value.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from safety_nexus.core.errors import IngestError
from safety_nexus.core.types import SignalTable

MAX_SAMPLES = 100_000


@dataclass(frozen=True, slots=True)
class ParsedBatch:
    source: str
    columns: np.ndarray
    times: np.ndarray
    values: np.ndarray

    def __len__(self) -> int:
        return int(self.columns.shape[0])


def _time(raw: object, i: int) -> float:
    if isinstance(raw, bool):
        raise IngestError(f"samples[{i}].time: expected a number or ISO-8601 string", "bad_time")
    if isinstance(raw, int | float):
        return float(raw)
    if isinstance(raw, str):
        try:
            dt = datetime.fromisoformat(raw)
        except ValueError:
            raise IngestError(
                f"samples[{i}].time: '{raw[:40]}' is not an ISO-8601 timestamp", "bad_time"
            ) from None
        if dt.tzinfo is None:
            raise IngestError(f"samples[{i}].time: timestamp needs a time zone", "bad_time")
        return dt.timestamp()
    raise IngestError(f"samples[{i}].time: expected a number or ISO-8601 string", "bad_time")


def _value(raw: object, i: int) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise IngestError(f"samples[{i}].value: expected a number", "bad_value")
    v = float(raw)
    if not math.isfinite(v):
        raise IngestError(f"samples[{i}].value: {raw} is not a finite number", "non_finite")
    return v


def parse_json_batch(
    body: bytes, table: SignalTable, *, max_samples: int = MAX_SAMPLES
) -> ParsedBatch:
    try:
        doc = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise IngestError(f"body is not valid JSON: {err}", "bad_json") from err
    if not isinstance(doc, dict):
        raise IngestError("body must be a JSON object with a 'samples' list", "bad_shape")
    unknown = set(doc) - {"source", "samples"}
    if unknown:
        raise IngestError(f"unknown field '{sorted(unknown)[0]}'", "bad_shape")
    source = doc.get("source", "http")
    if not isinstance(source, str) or not source:
        raise IngestError("source: expected a non-empty string", "bad_shape")
    samples = doc.get("samples")
    if not isinstance(samples, list):
        raise IngestError("samples: expected a list of {signal, time, value}", "bad_shape")
    if len(samples) > max_samples:
        raise IngestError(
            f"batch of {len(samples)} samples exceeds the limit of {max_samples}",
            "oversized",
            status=413,
        )
    n = len(samples)
    columns = np.empty(n, dtype=np.int64)
    times = np.empty(n, dtype=np.float64)
    values = np.empty(n, dtype=np.float64)
    index = table.index
    for i, s in enumerate(samples):
        if not isinstance(s, dict):
            raise IngestError(f"samples[{i}]: expected an object", "bad_shape")
        extra = set(s) - {"signal", "time", "value"}
        if extra:
            raise IngestError(f"samples[{i}]: unknown field '{sorted(extra)[0]}'", "bad_shape")
        sid = s.get("signal")
        if not isinstance(sid, str):
            raise IngestError(f"samples[{i}].signal: expected a signal id string", "bad_shape")
        col = index.get(sid)
        if col is None:
            raise IngestError(f"samples[{i}].signal: unknown signal '{sid[:80]}'", "unknown_signal")
        if "time" not in s or "value" not in s:
            missing = "time" if "time" not in s else "value"
            raise IngestError(f"samples[{i}].{missing}: field required", "bad_shape")
        columns[i] = col
        times[i] = _time(s["time"], i)
        values[i] = _value(s["value"], i)
    return ParsedBatch(source=source, columns=columns, times=times, values=values)
