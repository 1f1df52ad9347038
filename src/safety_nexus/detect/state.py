"""Detector state on disk, so that a restart does not open a new warm-up blind period.

A bank's state is everything its detectors and baselines have learned: what they would pickle
(`ScratchState.__getstate__`: per-row scratch excluded), walked generically, so that a newly
registered detector needs no code here. Arrays go into an `.npz` archive under generated names;
an array that several objects share is saved once and comes back shared; everything else
(counters, flags, small dicts of pending events) into a JSON header stored in the same archive,
tagged so that tuples, dicts with integer keys and NumPy scalars come back as they were.
Nothing is unpickled: `np.load(allow_pickle=False)` and `json.loads` cannot run code, so a
tampered state file can at worst be refused (pickle would have been the one-line solution, and a
file in the data directory that executes code when the service starts is not acceptable).

Restoring rebuilds a fresh bank from the running table and config and pours the saved values
into it (`__setstate__`, as unpickling would), checking that every object has the class, the
fields and the array dtypes it was saved with; only when all of it fits does the bank take the
restored state over. The file carries a fingerprint of what the state is only valid for: the
signal table (ids, periods, limits, kinds), the detector list and the DetectConfig. Restoring
into anything else is a `DetectError` that names what differs, and nothing is carried over: a
state is a whole (shards are contiguous blocks of columns, a baseline learned for one signal
layout says nothing reliable about another), and starting fresh on a changed site is the honest
answer.

Writes are atomic: a temporary file in the same directory, fsync, `os.replace`, fsync of the
directory. A crash leaves either the old state or the new one, never half of one.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import zipfile
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import BaseModel

from safety_nexus.core.errors import DetectError
from safety_nexus.core.types import SignalTable
from safety_nexus.detect.base import F64, ActiveSet, ScratchState

if TYPE_CHECKING:
    from safety_nexus.detect.config import DetectConfig

FORMAT = "safety-nexus/detector-state"
VERSION = 1
_HEADER = "header"

Json = Any  # what json.dumps accepts


def _digest(*parts: bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(len(part).to_bytes(8, "little"))
        h.update(part)
    return h.hexdigest()


def fingerprint(
    table: SignalTable,
    config: DetectConfig,
    detectors: list[str],
    design: tuple[F64, ...] | None = None,
) -> dict[str, str]:
    """What a saved state is valid for. Hashes for the table (it may hold a million signals)
    and for a per-signal CUSUM design, the config in full (so that a mismatch can name the
    field)."""
    kinds = getattr(table, "counter", np.empty(0, dtype=np.bool_))
    cross = [
        np.ascontiguousarray(getattr(table, name)).tobytes()
        for name in ("forecast_of", "horizon", "measures")
        if hasattr(table, name)
    ]
    cross.append("\n".join(getattr(table, "quantities", ())).encode())
    return {
        "signals": _digest("\n".join(table.ids).encode()),
        "periods": _digest(np.ascontiguousarray(table.period, dtype=np.float64).tobytes()),
        "limits": _digest(
            np.ascontiguousarray(table.limit_lo, dtype=np.float64).tobytes(),
            np.ascontiguousarray(table.limit_hi, dtype=np.float64).tobytes(),
        ),
        "kinds": _digest(np.ascontiguousarray(kinds, dtype=np.bool_).tobytes()),
        "cross": _digest(*cross),
        "detectors": ",".join(detectors),
        "design": "none"
        if design is None
        else _digest(*(np.ascontiguousarray(a, dtype=np.float64).tobytes() for a in design)),
        "config": config.model_dump_json(),
    }


_WHAT = {
    "signals": "signal ids",
    "periods": "sample periods",
    "limits": "hard limits",
    "kinds": "signal kinds (gauge/counter)",
    "cross": "forecast and redundant-sensor declarations",
    "design": "per-signal CUSUM design (allowances and thresholds)",
}


def mismatch(saved: dict[str, str], now: dict[str, str]) -> str | None:
    """What differs between two fingerprints, in words; None if nothing does."""
    for key, what in _WHAT.items():
        if saved.get(key) != now.get(key):
            return f"it was saved for a different site: the {what} differ"
    if saved.get("detectors") != now.get("detectors"):
        return (
            f"it was saved with detectors [{saved.get('detectors')}], "
            f"the bank runs [{now.get('detectors')}]"
        )
    if saved.get("config") != now.get("config"):
        try:
            old = json.loads(saved.get("config") or "{}")
            new = json.loads(now.get("config") or "{}")
        except json.JSONDecodeError:
            return "its detect config differs"
        fields = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        if fields:
            f = fields[0]
            more = f" (and {len(fields) - 1} more)" if len(fields) > 1 else ""
            return (
                f"its detect config differs: field '{f}' was {old.get(f)!r}, "
                f"is {new.get(f)!r}{more}"
            )
        return "its detect config differs"
    return None


# -- encoding ---------------------------------------------------------------------------------


def _fields(obj: object) -> dict[str, Any]:
    """The persistent fields of a stateful object (what pickle would save)."""
    if isinstance(obj, ScratchState):
        return obj.__getstate__()
    if dataclasses.is_dataclass(obj):
        return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    return dict(vars(obj))


def _is_object(value: object) -> bool:
    """A stateful object of ours: a ScratchState, or any instance (plain class or dataclass)
    of a class defined in this package (a cross-signal detector and its helpers)."""
    if isinstance(value, type | Enum):
        return False
    if isinstance(value, ScratchState | ActiveSet):
        return True
    if not type(value).__module__.startswith("safety_nexus."):
        return False
    return dataclasses.is_dataclass(value) or hasattr(value, "__dict__")


class _Encoder:
    def __init__(self) -> None:
        self.arrays: dict[str, np.ndarray[Any, Any]] = {}
        self._keys: dict[int, str] = {}  # an array shared by several objects is saved once

    def encode(self, value: object, path: str) -> Json:
        if isinstance(value, np.ndarray):
            if value.dtype.hasobject:
                raise DetectError(f"cannot save detector state: {path} is an object array")
            key = self._keys.get(id(value))
            if key is None:
                key = self._keys[id(value)] = f"a{len(self.arrays)}"
                self.arrays[key] = value
            return {"$array": key}
        if isinstance(value, BaseModel | SignalTable | type):
            # The config, the table, a detector class: the running version's own (the
            # fingerprint has checked that they are the ones the state was saved with).
            return {"$fixed": getattr(value, "__qualname__", type(value).__name__)}
        if _is_object(value):
            cls = type(value)
            state = {name: self.encode(v, f"{path}.{name}") for name, v in _fields(value).items()}
            return {"$object": f"{cls.__module__}.{cls.__qualname__}", "state": state}
        if isinstance(value, Enum):
            return {"$enum": value.value}
        if isinstance(value, np.generic):
            return {"$scalar": value.dtype.str, "value": value.item()}
        if value is None or isinstance(value, bool | int | float | str):
            return value
        if isinstance(value, list):
            return [self.encode(v, f"{path}[{i}]") for i, v in enumerate(value)]
        if isinstance(value, tuple):
            return {"$tuple": [self.encode(v, f"{path}[{i}]") for i, v in enumerate(value)]}
        if isinstance(value, dict):
            return {
                "$dict": [
                    [self.encode(k, f"{path}.key"), self.encode(v, f"{path}[{k!r}]")]
                    for k, v in value.items()
                ]
            }
        raise DetectError(
            f"cannot save detector state: {path} is a {type(value).__name__} (store state in"
            " arrays, numbers, strings, lists, tuples or dicts of those)"
        )


class _Decoder:
    def __init__(self, arrays: dict[str, np.ndarray[Any, Any]]) -> None:
        self.arrays = arrays
        self._done: dict[str, np.ndarray[Any, Any]] = {}  # shared arrays stay shared

    def decode(self, enc: Json, current: object, path: str) -> object:
        """`enc` decoded; `current` is the fresh bank's value at the same place (a template)."""
        if isinstance(enc, dict):
            if "$array" in enc:
                arr = self.arrays.get(enc["$array"])
                if arr is None:
                    raise DetectError(f"{path}: array '{enc['$array']}' is missing from the file")
                if isinstance(current, np.ndarray) and (
                    arr.dtype != current.dtype or arr.ndim != current.ndim
                ):
                    raise DetectError(
                        f"{path}: saved as {arr.dtype}[{arr.ndim}d], the running version holds"
                        f" {current.dtype}[{current.ndim}d]"
                    )
                if enc["$array"] not in self._done:
                    self._done[enc["$array"]] = np.array(arr, copy=True)
                return self._done[enc["$array"]]
            if "$fixed" in enc:
                if current is None:
                    raise DetectError(f"{path}: the running version holds no {enc['$fixed']} here")
                return current
            if "$object" in enc:
                return self.restore(current, enc, path)
            if "$enum" in enc:
                if not isinstance(current, Enum):
                    raise DetectError(f"{path}: the running version holds no enum here")
                return type(current)(enc["$enum"])
            if "$scalar" in enc:
                return np.dtype(enc["$scalar"]).type(enc["value"])
            if "$tuple" in enc:
                items: list[Json] = enc["$tuple"]
                like = current if isinstance(current, tuple) else ()
                return tuple(self._items(items, list(like), path))
            if "$dict" in enc:
                like_d = current if isinstance(current, dict) else {}
                out: dict[Any, object] = {}
                for k_enc, v_enc in enc["$dict"]:
                    k = self.decode(k_enc, None, f"{path}.key")
                    out[k] = self.decode(v_enc, like_d.get(k), f"{path}[{k!r}]")
                return out
            raise DetectError(f"{path}: unreadable entry")
        if isinstance(enc, list):
            return self._items(enc, current if isinstance(current, list) else [], path)
        return enc

    def _items(self, items: list[Json], like: list[Any], path: str) -> list[object]:
        """Decode a sequence; where the running version has one of the same length, its items
        are the templates (a list of detectors is restored into the fresh detectors)."""
        if len(like) != len(items):
            if any(isinstance(v, dict) and "$object" in v for v in items):
                raise DetectError(
                    f"{path}: {len(items)} entries saved, the running version has {len(like)}"
                )
            like = []  # plain values (a list of numbers) may change length
        return [
            self.decode(v, like[i] if like else None, f"{path}[{i}]") for i, v in enumerate(items)
        ]

    def restore(self, target: object, enc: dict[str, Any], path: str) -> object:
        """Pour the saved fields into `target` (a fresh object of the same class)."""
        if target is None or not _is_object(target):
            raise DetectError(f"{path}: the running version holds no detector state here")
        cls = type(target)
        name = f"{cls.__module__}.{cls.__qualname__}"
        if enc["$object"] != name:
            raise DetectError(f"{path}: saved as {enc['$object']}, the running version has {name}")
        template = _fields(target)
        saved: dict[str, Any] = enc["state"]
        if set(saved) != set(template):
            extra = sorted(set(saved) ^ set(template))
            raise DetectError(f"{path}: fields differ from the running version ({extra[0]})")
        state = {k: self.decode(saved[k], template[k], f"{path}.{k}") for k in template}
        if isinstance(target, ScratchState):
            target.__setstate__(state)
        elif dataclasses.is_dataclass(target):
            for k, v in state.items():
                object.__setattr__(target, k, v)
        else:
            vars(target).update(state)
        return target


# -- files ------------------------------------------------------------------------------------


def write_state(path: Path, header: dict[str, Any], tree: dict[str, Any]) -> int:
    """Encode `tree` (named stateful objects and plain values) and write it atomically.
    Returns the file's size in bytes."""
    enc = _Encoder()
    body = {name: enc.encode(value, name) for name, value in tree.items()}
    doc = {**header, "format": FORMAT, "version": VERSION, "state": body}
    raw = json.dumps(doc, separators=(",", ":")).encode()
    arrays: dict[str, Any] = dict(enc.arrays)
    arrays[_HEADER] = np.frombuffer(raw, dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            np.savez(fh, allow_pickle=False, **arrays)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    try:
        fd = os.open(path.parent, os.O_RDONLY)
    except OSError:  # some platforms cannot open a directory; the rename is still atomic
        pass
    else:
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    return path.stat().st_size


def read_state(path: Path) -> tuple[dict[str, Any], dict[str, np.ndarray[Any, Any]]]:
    """The header (format, version, fingerprint, state tree) and the arrays of a state file.
    Anything unreadable is a DetectError saying so."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DetectError(f"{path}: no detector state file") from None
    except OSError as err:
        raise DetectError(f"{path}: cannot read detector state: {err}") from err
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
        header = json.loads(arrays.pop(_HEADER).tobytes())
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
        raise DetectError(f"{path}: corrupt detector state file ({err})") from err
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise DetectError(f"{path}: not a detector state file")
    if header.get("version") != VERSION:
        raise DetectError(
            f"{path}: detector state format version {header.get('version')}, this version"
            f" reads {VERSION}"
        )
    return header, arrays


def decoder(arrays: dict[str, np.ndarray[Any, Any]]) -> _Decoder:
    return _Decoder(arrays)
