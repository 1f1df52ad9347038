"""Sparkplug B (spBv1.0) over MQTT: topics, payloads, and the BIRTH certificates that give
DATA messages their meaning.

    spBv1.0/<group>/<NBIRTH|NDATA|NDEATH|NCMD>/<node>
    spBv1.0/<group>/<DBIRTH|DDATA|DDEATH|DCMD>/<node>/<device>
    spBv1.0/STATE/<host application>

A payload is a protobuf `Payload` (timestamp, seq, metrics); a metric has a name and/or an
alias, an optional timestamp (epoch milliseconds, else the payload's), a datatype and one value.
A BIRTH lists every metric of its node or device by name, with its alias and datatype; DATA
after it may carry the alias alone, so the decoder remembers each node's and device's last BIRTH.
An NBIRTH also forgets the node's devices' births (they are born again after it). A DEATH
carries no values: nothing is made up for it (the source may journal it). Commands (NCMD, DCMD)
and host STATE messages are not telemetry and decode to nothing.

The external name of a metric is "<group>/<node>[/<device>]:<metric name>"; a site source's
`map` turns it into a signal id. Values: the field that is set decides. Double and float values
are taken as they are, booleans as 1 or 0; an integer field is read under the metric's datatype
(its own, else its BIRTH's): signed types in two's complement, as Sparkplug encodes them in the
unsigned fields, range-checked. Strings, bytes, datasets, templates, date-times and arrays are
not samples: they are skipped and named in `Decoded.ignored` (the source counts them as
"unsupported_type"); a null metric has no sample. A metric timestamp of 0 counts as none.
Everything else wrong is an `IngestError` naming the metric, and the payload is refused whole
(reasons bad_topic, bad_payload, unknown_alias, bad_value, non_finite, oversized).

The message types are built at import from a `FileDescriptorProto` written here from the
Sparkplug B specification's field numbers (no protoc, no generated code). Fields Nexus does not
read (metadata, properties, datasets, templates, extensions) are declared as `bytes`: same wire
type, so they parse, and nothing of their inner structure is trusted or decoded.

Example:

>>> payload = PAYLOAD(timestamp=1780272000000, seq=0)
>>> m = payload.metrics.add(name="pressure", alias=1, datatype=DataType.DOUBLE, double_value=4.5)
>>> decoder = SparkplugDecoder()
>>> d = decoder.decode("spBv1.0/plant/DBIRTH/edge-1/pump-1", payload.SerializeToString())
>>> d.names, d.times, d.values
(['plant/edge-1/pump-1:pressure'], [1780272000000.0], [4.5])
>>> data = PAYLOAD(timestamp=1780272001000, seq=1)
>>> m = data.metrics.add(alias=1, double_value=4.6)
>>> decoder.decode("spBv1.0/plant/DDATA/edge-1/pump-1", data.SerializeToString()).values
[4.6]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

# protobuf ships no type stubs (types-protobuf is not a dependency)
from google.protobuf import (  # type: ignore[import-untyped]
    descriptor_pb2,
    descriptor_pool,
    message_factory,
)
from google.protobuf.message import DecodeError  # type: ignore[import-untyped]

from safety_nexus.core.errors import IngestError
from safety_nexus.ingest.json_batch import MAX_SAMPLES

NAMESPACE = "spBv1.0"
NAN = float("nan")


class DataType(IntEnum):
    """Sparkplug B metric datatypes (the specification's numbering)."""

    UNKNOWN = 0
    INT8 = 1
    INT16 = 2
    INT32 = 3
    INT64 = 4
    UINT8 = 5
    UINT16 = 6
    UINT32 = 7
    UINT64 = 8
    FLOAT = 9
    DOUBLE = 10
    BOOLEAN = 11
    STRING = 12
    DATETIME = 13
    TEXT = 14
    UUID = 15
    DATASET = 16
    BYTES = 17
    FILE = 18
    TEMPLATE = 19
    PROPERTY_SET = 20
    PROPERTY_SET_LIST = 21
    # 22-34: arrays (Int8Array ... DateTimeArray, StringArray)


# Integer types: (bits, signed). Sparkplug carries them in the unsigned int_value (32 bits) or
# long_value (64 bits); a negative number is sign-extended two's complement of the wider field.
_INTEGERS: dict[int, tuple[int, bool]] = {
    DataType.INT8: (8, True),
    DataType.INT16: (16, True),
    DataType.INT32: (32, True),
    DataType.INT64: (64, True),
    DataType.UINT8: (8, False),
    DataType.UINT16: (16, False),
    DataType.UINT32: (32, False),
    DataType.UINT64: (64, False),
}
_NUMERIC = frozenset(
    {*_INTEGERS, DataType.UNKNOWN, DataType.FLOAT, DataType.DOUBLE, DataType.BOOLEAN}
)
# Datatypes that are not measurements (String ... PropertySetList, and the arrays 22-34).
_SKIPPED = frozenset(range(DataType.STRING, 35))
# Protocol metrics every edge node sends: not telemetry, and not phantoms when unmapped.
CONTROL_PREFIXES = ("Node Control/", "Device Control/", "Properties/")
CONTROL_NAMES = frozenset({"bdSeq"})

_NODE_TYPES = frozenset({"NBIRTH", "NDATA", "NDEATH", "NCMD"})
_DEVICE_TYPES = frozenset({"DBIRTH", "DDATA", "DDEATH", "DCMD"})
BIRTHS = frozenset({"NBIRTH", "DBIRTH"})
DATA = frozenset({"NDATA", "DDATA"})
DEATHS = frozenset({"NDEATH", "DDEATH"})


def _descriptor() -> descriptor_pb2.FileDescriptorProto:
    """Payload and Payload.Metric as in the specification (proto2), nested types as bytes."""
    f = descriptor_pb2.FieldDescriptorProto
    opt = f.LABEL_OPTIONAL
    fdp = descriptor_pb2.FileDescriptorProto(
        name="nexus_sparkplug_b.proto", package="nexus.sparkplug_b", syntax="proto2"
    )
    payload = fdp.message_type.add(name="Payload")
    metric = payload.nested_type.add(name="Metric")
    metric.oneof_decl.add(name="value")
    for name, number, kind, oneof in (
        ("name", 1, f.TYPE_STRING, None),
        ("alias", 2, f.TYPE_UINT64, None),
        ("timestamp", 3, f.TYPE_UINT64, None),
        ("datatype", 4, f.TYPE_UINT32, None),
        ("is_historical", 5, f.TYPE_BOOL, None),
        ("is_transient", 6, f.TYPE_BOOL, None),
        ("is_null", 7, f.TYPE_BOOL, None),
        ("metadata", 8, f.TYPE_BYTES, None),  # MetaData
        ("properties", 9, f.TYPE_BYTES, None),  # PropertySet
        ("int_value", 10, f.TYPE_UINT32, 0),
        ("long_value", 11, f.TYPE_UINT64, 0),
        ("float_value", 12, f.TYPE_FLOAT, 0),
        ("double_value", 13, f.TYPE_DOUBLE, 0),
        ("boolean_value", 14, f.TYPE_BOOL, 0),
        ("string_value", 15, f.TYPE_STRING, 0),
        ("bytes_value", 16, f.TYPE_BYTES, 0),
        ("dataset_value", 17, f.TYPE_BYTES, 0),  # DataSet
        ("template_value", 18, f.TYPE_BYTES, 0),  # Template
        ("extension_value", 19, f.TYPE_BYTES, 0),  # MetricValueExtension
    ):
        fd = metric.field.add(name=name, number=number, type=kind, label=opt)
        if oneof is not None:
            fd.oneof_index = oneof
    payload.field.add(name="timestamp", number=1, type=f.TYPE_UINT64, label=opt)
    payload.field.add(
        name="metrics",
        number=2,
        type=f.TYPE_MESSAGE,
        label=f.LABEL_REPEATED,
        type_name=".nexus.sparkplug_b.Payload.Metric",
    )
    payload.field.add(name="seq", number=3, type=f.TYPE_UINT64, label=opt)
    payload.field.add(name="uuid", number=4, type=f.TYPE_STRING, label=opt)
    payload.field.add(name="body", number=5, type=f.TYPE_BYTES, label=opt)
    return fdp


_POOL = descriptor_pool.DescriptorPool()
_POOL.Add(_descriptor())
# The message classes (tests and benchmarks build payloads with them). `Any`: they are made at
# run time, so their fields are unknown to the type checker.
PAYLOAD: Any = message_factory.GetMessageClass(
    _POOL.FindMessageTypeByName("nexus.sparkplug_b.Payload")
)
METRIC: Any = message_factory.GetMessageClass(
    _POOL.FindMessageTypeByName("nexus.sparkplug_b.Payload.Metric")
)


@dataclass(frozen=True, slots=True)
class Topic:
    """A parsed Sparkplug topic; `node` is the host application's id for STATE."""

    group: str
    kind: str  # NBIRTH, NDATA, NDEATH, NCMD, DBIRTH, DDATA, DDEATH, DCMD or STATE
    node: str
    device: str | None = None

    @property
    def edge(self) -> str:
        """ "<group>/<node>[/<device>]": the prefix of its metrics' external names."""
        base = f"{self.group}/{self.node}"
        return base if self.device is None else f"{base}/{self.device}"


def _show(text: str, n: int = 80) -> str:
    return text if len(text) <= n else text[:n] + "..."


def parse_topic(topic: str) -> Topic:
    parts = topic.split("/")
    if parts[0] != NAMESPACE:
        raise IngestError(
            f"topic '{_show(topic)}' is not a Sparkplug B topic (spBv1.0/...)", "bad_topic"
        )
    if len(parts) == 3 and parts[1] == "STATE" and parts[2]:
        return Topic(group="", kind="STATE", node=parts[2])
    if len(parts) not in (4, 5):
        raise IngestError(
            f"topic '{_show(topic)}': expected spBv1.0/<group>/<type>/<node>[/<device>]",
            "bad_topic",
        )
    kind = parts[2]
    expected = 4 if kind in _NODE_TYPES else 5 if kind in _DEVICE_TYPES else 0
    if not expected:
        raise IngestError(
            f"topic '{_show(topic)}': unknown Sparkplug message type '{_show(kind, 20)}'",
            "bad_topic",
        )
    if len(parts) != expected:
        what = "a node" if expected == 4 else "a device"
        raise IngestError(
            f"topic '{_show(topic)}': {kind} is {what} message"
            f" ({'spBv1.0/<group>/<type>/<node>' if expected == 4 else 'needs a <device>'})",
            "bad_topic",
        )
    if not all(parts[1:]):
        raise IngestError(f"topic '{_show(topic)}' has an empty level", "bad_topic")
    return Topic(
        group=parts[1], kind=kind, node=parts[3], device=parts[4] if expected == 5 else None
    )


def is_control(external: str) -> bool:
    """Whether an external name ("<edge>:<metric>") is of a protocol metric (bdSeq,
    "Node Control/Rebirth", ...), not telemetry."""
    return any(external.endswith(":" + n) for n in CONTROL_NAMES) or any(
        ":" + p in external for p in CONTROL_PREFIXES
    )


@dataclass(slots=True)
class _Birth:
    """What one BIRTH certificate said: alias -> (external name, datatype); name -> datatype."""

    aliases: dict[int, tuple[str, int]] = field(default_factory=dict)
    types: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class _Node:
    birth: _Birth | None = None
    devices: dict[str, _Birth] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Decoded:
    """One payload's samples: external names, times (epoch milliseconds, NaN where neither
    the metric nor the payload has one: the receiver uses its receive time) and values."""

    topic: Topic
    names: list[str]
    times: list[float]
    values: list[float]
    seq: int | None = None
    ignored: list[str] = field(default_factory=list)  # external names of unsupported metrics


def _integer(raw: int, kind: str, datatype: int) -> float:
    """An integer field's value under its datatype: range-checked, signed ones sign-extended.
    Raises ValueError saying what is wrong."""
    spec = _INTEGERS.get(datatype)
    if spec is None:
        return float(raw)  # Unknown datatype, or a Float/Double/Boolean sent in an integer field
    bits, signed = spec
    width = 32 if kind == "int_value" else 64
    name = DataType(datatype).name
    if signed and bits > width:  # is 0xFFFFFFFF -1 or 4294967295? Not ours to guess.
        raise ValueError(f"{name} value in the 32-bit int_value")
    if not signed:
        if raw >= 1 << bits:
            raise ValueError(f"{raw} is out of range for {name}")
        return float(raw)
    half = 1 << (bits - 1)
    if raw < half:
        return float(raw)
    if raw >= (1 << width) - half:  # sign-extended into the field: negative
        return float(raw - (1 << width))
    if bits < width and raw < 1 << bits:  # two's complement of the type's own width
        return float(raw - (1 << bits))
    raise ValueError(f"{raw} is out of range for {name}")


class SparkplugDecoder:
    """Decodes payloads, remembering the last BIRTH of every node and device (at most
    `max_nodes` nodes: the longest-silent one is forgotten first)."""

    def __init__(self, *, max_nodes: int = 10_000, max_metrics: int = MAX_SAMPLES) -> None:
        self.max_nodes = max_nodes
        self.max_metrics = max_metrics
        self._nodes: dict[tuple[str, str], _Node] = {}

    def births(self) -> int:
        """Node and device births remembered."""
        return sum((n.birth is not None) + len(n.devices) for n in self._nodes.values())

    def _node(self, topic: Topic) -> _Node:
        key = (topic.group, topic.node)
        node = self._nodes.pop(key, None)
        if node is None:
            node = _Node()
            if len(self._nodes) >= self.max_nodes:
                del self._nodes[next(iter(self._nodes))]
        self._nodes[key] = node  # most recently heard from last
        return node

    def decode(self, topic: str, payload: bytes | bytearray) -> Decoded:
        t = parse_topic(topic)
        if t.kind in ("STATE", "NCMD", "DCMD"):
            return Decoded(t, [], [], [])
        try:
            msg = PAYLOAD.FromString(bytes(payload))
        except DecodeError as err:
            raise IngestError(
                f"{t.kind} from '{_show(t.edge)}': payload is not a Sparkplug B protobuf ({err})",
                "bad_payload",
            ) from err
        metrics = msg.metrics
        if len(metrics) > self.max_metrics:
            raise IngestError(
                f"{t.kind} from '{_show(t.edge)}': {len(metrics)} metrics exceed the limit of"
                f" {self.max_metrics}",
                "oversized",
                status=413,
            )
        seq = int(msg.seq) if msg.HasField("seq") else None
        if t.kind in DEATHS:
            return Decoded(t, [], [], [], seq)
        node = self._node(t)
        birth: _Birth | None
        if t.kind in BIRTHS:
            birth = self._birth(t, metrics)
            if t.device is None:
                node.birth = birth
                node.devices.clear()  # an NBIRTH means every device is born again after it
            else:
                node.devices[t.device] = birth
        else:
            birth = node.birth if t.device is None else node.devices.get(t.device)
        return self._samples(t, msg, birth, seq)

    def _birth(self, t: Topic, metrics: Any) -> _Birth:
        """The name/alias/datatype table of a BIRTH (checked whole before it replaces the old)."""
        prefix = t.edge + ":"
        birth = _Birth()
        for i, m in enumerate(metrics):
            name = m.name
            if not name or type(name) is not str:
                raise IngestError(
                    f"{t.kind} from '{_show(t.edge)}': metrics[{i}] has no"
                    f" {'name' if not name else 'UTF-8 name'} (a BIRTH names every metric)",
                    "bad_payload",
                )
            datatype = int(m.datatype)
            birth.types[name] = datatype
            if m.HasField("alias"):
                alias = int(m.alias)
                other = birth.aliases.get(alias)
                if other is not None and other[0] != prefix + name:
                    raise IngestError(
                        f"{t.kind} from '{_show(t.edge)}': alias {alias} is used for both"
                        f" '{_show(other[0][len(prefix) :])}' and '{_show(name)}'",
                        "bad_payload",
                    )
                birth.aliases[alias] = (prefix + name, datatype)
        return birth

    def _samples(self, t: Topic, msg: Any, birth: _Birth | None, seq: int | None) -> Decoded:
        """The metrics' samples. The hot loop of the source: one pass, a handful of attribute
        reads per metric, the rare cases (errors, integers, skipped types) off the main path."""
        prefix = t.edge + ":"
        default_time = float(msg.timestamp) if msg.HasField("timestamp") else NAN
        aliases = birth.aliases if birth is not None else {}
        names: list[str] = []
        times: list[float] = []
        values: list[float] = []
        ignored: list[str] = []
        for i, m in enumerate(msg.metrics):
            kind = m.WhichOneof("value")
            name = m.name
            if name:
                if type(name) is not str:
                    raise self._error(t, f"metrics[{i}] name is not UTF-8", "bad_payload")
                ext = prefix + name
                datatype = -1  # from the metric or its BIRTH, looked up for integers only
            else:
                known = aliases.get(m.alias)
                if known is None:
                    raise self._unnamed(t, m, i, birth)
                ext, datatype = known
            if m.is_null:
                continue  # a null value is no sample
            if kind == "double_value":
                value = m.double_value
                if value - value != 0.0:  # NaN or ±inf
                    raise self._error(
                        t,
                        f"metric '{_show(ext)}' value {value} is not a finite number",
                        "non_finite",
                    )
            elif kind == "float_value":
                value = m.float_value
                if value - value != 0.0:
                    raise self._error(
                        t,
                        f"metric '{_show(ext)}' value {value} is not a finite number",
                        "non_finite",
                    )
            elif kind == "boolean_value":
                value = 1.0 if m.boolean_value else 0.0
            elif kind == "int_value" or kind == "long_value":
                dt = int(m.datatype)
                if not dt:
                    dt = datatype if datatype >= 0 else (birth.types.get(name, 0) if birth else 0)
                if dt in _SKIPPED:
                    ignored.append(ext)  # e.g. a DateTime in long_value: not a measurement
                    continue
                if dt not in _NUMERIC:
                    raise self._error(
                        t, f"metric '{_show(ext)}' has unknown datatype {dt}", "bad_value"
                    )
                try:
                    value = _integer(int(getattr(m, kind)), kind, dt)
                except ValueError as err:
                    raise self._error(t, f"metric '{_show(ext)}': {err}", "bad_value") from None
            elif kind is None:
                raise self._error(
                    t, f"metric '{_show(ext)}' has no value and is not null", "bad_value"
                )
            else:
                ignored.append(ext)  # a string, bytes, dataset, template or extension
                continue
            stamp = m.timestamp  # 0: not given (the epoch's first millisecond is no reading)
            names.append(ext)
            times.append(float(stamp) if stamp else default_time)
            values.append(value)
        return Decoded(t, names, times, values, seq, ignored)

    @staticmethod
    def _error(t: Topic, what: str, reason: str) -> IngestError:
        return IngestError(f"{t.kind} from '{_show(t.edge)}': {what}", reason)

    def _unnamed(self, t: Topic, m: Any, i: int, birth: _Birth | None) -> IngestError:
        """Why a metric without a name cannot be decoded."""
        if not m.HasField("alias"):
            return self._error(t, f"metrics[{i}] has neither a name nor an alias", "bad_payload")
        why = "no BIRTH seen" if birth is None else "not in its BIRTH"
        return self._error(
            t, f"metrics[{i}] alias {int(m.alias)} is unknown ({why})", "unknown_alias"
        )
