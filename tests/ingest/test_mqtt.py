"""The MQTT source against a real Mosquitto broker on 127.0.0.1, publishing with paho from the
test: JSON readings and batches reach the live telemetry with their times and values; unmapped
topics, undeclared signals and signals outside the source's patterns become phantom findings;
malformed messages are counted while the source carries on; Sparkplug BIRTH then alias-only
DATA decode; a slow pipeline blocks the source (the broker holds the messages) and nothing the
broker acknowledged is lost; the source reconnects after the broker restarts; stop is prompt."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from safety_nexus.core.types import FindingKind
from safety_nexus.ingest import sparkplug
from safety_nexus.ingest.mqtt import MqttSource, parse_url
from safety_nexus.pipeline.builder import RuntimeSettings, build_runtime
from safety_nexus.pipeline.runtime import Runtime
from safety_nexus.pipeline.stages import Batch
from servers import ServerProcess, free_port

pytestmark = pytest.mark.server

SITE = """\
version: 1
site: {{name: MQTT test}}
subsystems:
  - {{id: water, name: Water}}
assets:
  - id: pump-1
    subsystem: water
    type: pump
    signals:
      - {{name: pressure, unit: bar, normal: [1, 9], period: 0.1}}
      - {{name: flow, unit: m3/h, normal: [10, 90], period: 0.1}}
  - id: pump-2
    subsystem: water
    type: pump
    signals:
      - {{name: pressure, unit: bar, normal: [1, 9], period: 0.1}}
      - {{name: speed, unit: rpm, normal: [0, 3000], period: 0.1}}
  - id: tank-1
    subsystem: water
    type: tank
    signals:
      - {{name: level, unit: m, normal: [0, 10], period: 0.1}}
sources:
  - id: broker
    kind: mqtt
    url: mqtt://127.0.0.1:{port}
    topics: ["plant/#"]
    signals: ["pump-*"]
    map:
      plant/pump-1/pressure: pump-1.pressure
      plant/pump-1/flow: pump-1.flow
  - id: edge
    kind: mqtt
    url: mqtt://127.0.0.1:{port}
    topics: ["spBv1.0/plant/#"]
    payload: sparkplug
    signals: ["pump-2.*", "tank-1.*"]
    map:
      plant/edge-1:Level: tank-1.level
      plant/edge-1/pump-2:Pressure: pump-2.pressure
      plant/edge-1/pump-2:Speed: pump-2.speed
"""


class Broker:
    """Mosquitto on a free port of 127.0.0.1, no persistence; `restart` keeps the port."""

    def __init__(self, tmp_path: Path) -> None:
        self.port = free_port()
        self.dir = tmp_path
        self.starts = 0
        self.server = self._start()

    def _start(self) -> ServerProcess:
        self.starts += 1
        conf = self.dir / "mosquitto.conf"
        # a big per-client queue: the backpressure test makes the broker hold thousands
        conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
            "max_queued_messages 100000\n",
            encoding="utf-8",
        )
        log = self.dir / f"mosquitto-{self.starts}.log"
        return ServerProcess(["/usr/sbin/mosquitto", "-c", str(conf)], self.port, log)

    def stop(self) -> None:
        self.server.stop()

    def restart(self) -> None:
        self.server.stop()
        self.server = self._start()


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    b = Broker(tmp_path)
    yield b
    b.stop()


class Publisher:
    """A paho client publishing with QoS 1 and waiting for each broker acknowledgement."""

    def __init__(self, port: int, *, inflight: int = 1000) -> None:
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"pub-{port}")
        self.client.max_inflight_messages_set(inflight)
        self.client.max_queued_messages_set(0)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def send(self, messages: list[tuple[str, bytes]], qos: int = 1) -> None:
        infos = [self.client.publish(topic, payload, qos=qos) for topic, payload in messages]
        for info in infos:
            info.wait_for_publish(10)
            assert info.is_published()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def publisher(broker: Broker) -> Iterator[Publisher]:
    p = Publisher(broker.port)
    yield p
    p.close()


def _runtime(tmp_path: Path, port: int, **settings: Any) -> Runtime:
    site = tmp_path / "site.yaml"
    site.write_text(SITE.format(port=port), encoding="utf-8")
    return build_runtime(
        RuntimeSettings(site=site, data_dir=tmp_path / "data", source="http", **settings)
    )


def _source(runtime: Runtime, sid: str) -> MqttSource:
    (found,) = [s for s in runtime.live_sources if isinstance(s, MqttSource) and s.name == sid]
    return found


@pytest.fixture
def plant(tmp_path: Path, broker: Broker) -> Iterator[Runtime]:
    runtime = _runtime(tmp_path, broker.port, reorder_tolerance=0.0)
    runtime.start()
    for sid in ("broker", "edge"):
        assert _source(runtime, sid).connected.wait(10), f"source {sid} did not subscribe"
    yield runtime
    runtime.stop()


def _wait(cond: Callable[[], bool], timeout: float = 10.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def _signal(runtime: Runtime, sid: str, since: float) -> tuple[list[float], list[float]]:
    times, values = runtime.live.window(runtime.table.index[sid], since)
    return times.tolist(), values.tolist()


def _accepted(runtime: Runtime, source: str) -> float:
    value = runtime.metrics.registry.get_sample_value(
        "nexus_ingest_accepted_samples_total", {"source": source}
    )
    return value or 0.0


def _phantoms(runtime: Runtime, source: str) -> float:
    value = runtime.metrics.registry.get_sample_value(
        "nexus_ingest_phantom_total", {"source": source}
    )
    return value or 0.0


def _processed(runtime: Runtime, sids: list[str], since: float, n: int) -> Callable[[], bool]:
    def done() -> bool:
        runtime.wait_idle(1.0)
        return sum(len(_signal(runtime, sid, since)[0]) for sid in sids) >= n

    return done


# -- JSON --------------------------------------------------------------------------------------


def test_json_readings_and_batches_arrive_with_their_times_and_values(
    plant: Runtime, publisher: Publisher
) -> None:
    base = float(int(time.time())) - 60.0
    iso = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(base + 2))
    publisher.send(
        [
            ("plant/pump-1/pressure", orjson.dumps({"time": base, "value": 4.5})),
            ("plant/pump-1/pressure", orjson.dumps({"time": base + 1, "value": 4})),
            ("plant/pump-1/pressure", orjson.dumps({"time": iso, "value": 4.75})),
            (
                "plant/any/topic",  # a batch names its signals; its topic need not be mapped
                orjson.dumps(
                    {
                        "source": "gw-1",
                        "samples": [
                            {"signal": "pump-1.flow", "time": base, "value": 31.0},
                            {"signal": "pump-2.speed", "time": base, "value": 1450},
                        ],
                    }
                ),
            ),
        ]
    )
    _wait(_processed(plant, ["pump-1.pressure"], base, 3), what="three pressure readings")
    assert _signal(plant, "pump-1.pressure", base) == ([base, base + 1, base + 2], [4.5, 4.0, 4.75])
    assert _signal(plant, "pump-1.flow", base) == ([base], [31.0])
    assert _signal(plant, "pump-2.speed", base) == ([base], [1450.0])
    assert _accepted(plant, "broker") == 5


def test_readings_without_a_time_take_the_receive_time(
    plant: Runtime, publisher: Publisher
) -> None:
    before = time.time()
    publisher.send([("plant/pump-1/flow", b"42.5"), ("plant/pump-1/flow", b'{"value": 43}')])
    _wait(_processed(plant, ["pump-1.flow"], before - 1, 2), what="two flow readings")
    times, values = _signal(plant, "pump-1.flow", before - 1)
    assert values == [42.5, 43.0]
    assert before <= times[0] < times[1] <= time.time()


def test_undeclared_names_are_phantom_findings_not_dropped(
    plant: Runtime, publisher: Publisher
) -> None:
    base = float(int(time.time())) - 60.0
    publisher.send(
        [
            ("plant/pump-9/pressure", orjson.dumps({"time": base, "value": 1.0})),  # no map entry
            (
                "plant/batch",
                orjson.dumps(
                    {
                        "samples": [
                            {"signal": "pump-7.pressure", "time": base, "value": 1.0},  # unknown
                            {"signal": "tank-1.level", "time": base, "value": 2.0},  # not allowed
                            {"signal": "pump-1.flow", "time": base, "value": 30.0},  # fine
                        ]
                    }
                ),
            ),
        ]
    )
    _wait(lambda: _phantoms(plant, "broker") == 3, what="three phantoms counted")
    _wait(_processed(plant, ["pump-1.flow"], base, 1), what="the good sample of the batch")
    _wait(lambda: len(plant.store.findings(kind=FindingKind.PHANTOM)) == 3, what="findings")
    found = {
        s.finding.signal: s.finding.context for s in plant.store.findings(kind=FindingKind.PHANTOM)
    }
    assert "not in the map of source 'broker'" in found["broker/plant/pump-9/pressure"]
    assert "which the site does not declare" in found["broker/pump-7.pressure"]
    assert "may not send" in found["broker/tank-1.level"]
    assert _signal(plant, "tank-1.level", base) == ([], [])


def test_malformed_messages_are_counted_and_the_source_carries_on(
    plant: Runtime, publisher: Publisher, caplog: pytest.LogCaptureFixture
) -> None:
    base = float(int(time.time())) - 60.0
    bad = [
        (b"{not json", "bad_json"),
        (b"true", "bad_shape"),
        (b'{"value": "4.5"}', "bad_value"),
        (b'{"time": "yesterday", "value": 1}', "bad_time"),
        (b'{"value": 1e400}', "bad_json"),
        (b'{"value": 1, "unit": "bar"}', "bad_shape"),
    ]
    publisher.send([("plant/pump-1/pressure", payload) for payload, _ in bad])
    publisher.send([("plant/pump-1/pressure", orjson.dumps({"time": base, "value": 5.0}))])
    _wait(_processed(plant, ["pump-1.pressure"], base, 1), what="the good message after the bad")
    metrics = plant.metrics
    for reason in {r for _, r in bad}:
        expected = sum(1 for _, r in bad if r == reason)
        _wait(lambda r=reason, n=expected: metrics.rejected_count(r) == n, what=reason)
    # logged, but once per reason and minute: six bad messages are five lines at most
    lines = [r for r in caplog.records if "refused" in r.getMessage()]
    assert 1 <= len(lines) <= 5
    assert _signal(plant, "pump-1.pressure", base) == ([base], [5.0])


def test_a_redelivered_sample_is_skipped_and_an_older_one_counted(
    plant: Runtime, publisher: Publisher
) -> None:
    base = float(int(time.time())) - 60.0
    reading = orjson.dumps({"time": base + 1, "value": 5.0})
    publisher.send([("plant/pump-1/pressure", reading)])
    _wait(_processed(plant, ["pump-1.pressure"], base, 1), what="the first reading")
    publisher.send([("plant/pump-1/pressure", reading)])  # a batch of nothing but a repeat
    time.sleep(0.1)
    publisher.send(
        [
            ("plant/pump-1/pressure", reading),  # the same again, as a QoS 1 redelivery is
            ("plant/pump-1/pressure", orjson.dumps({"time": base, "value": 6.0})),  # older
            ("plant/pump-1/pressure", orjson.dumps({"time": base + 2, "value": 7.0})),
        ]
    )
    _wait(_processed(plant, ["pump-1.pressure"], base, 2), what="the newer reading")
    _wait(lambda: plant.metrics.rejected_count("out_of_order") == 1, what="the older counted")
    assert _signal(plant, "pump-1.pressure", base) == ([base + 1, base + 2], [5.0, 7.0])


# -- Sparkplug B -------------------------------------------------------------------------------


def _payload(seq: int, at_ms: int, metrics: list[dict[str, Any]]) -> bytes:
    p = sparkplug.PAYLOAD(timestamp=at_ms, seq=seq)
    for m in metrics:
        p.metrics.add(**m)
    return bytes(p.SerializeToString())


def test_sparkplug_birth_then_alias_only_data(plant: Runtime, publisher: Publisher) -> None:
    base = int(time.time()) - 60
    ms = base * 1000
    d = sparkplug.DataType
    publisher.send(
        [
            (
                "spBv1.0/plant/NBIRTH/edge-1",
                _payload(
                    0,
                    ms,
                    [
                        {"name": "bdSeq", "datatype": d.INT64, "long_value": 3},
                        {
                            "name": "Node Control/Rebirth",
                            "datatype": d.BOOLEAN,
                            "boolean_value": False,
                        },
                        {"name": "Level", "alias": 1, "datatype": d.FLOAT, "float_value": 2.5},
                    ],
                ),
            ),
            (
                "spBv1.0/plant/DBIRTH/edge-1/pump-2",
                _payload(
                    1,
                    ms,
                    [
                        {
                            "name": "Pressure",
                            "alias": 10,
                            "datatype": d.DOUBLE,
                            "double_value": 4.0,
                        },
                        {"name": "Speed", "alias": 11, "datatype": d.INT32, "int_value": 1400},
                        {"name": "Model", "alias": 12, "datatype": d.STRING, "string_value": "X1"},
                        {
                            "name": "Temperature",
                            "alias": 13,
                            "datatype": d.DOUBLE,
                            "double_value": 40.0,
                        },
                    ],
                ),
            ),
            (
                "spBv1.0/plant/DDATA/edge-1/pump-2",
                _payload(
                    2,
                    ms + 1000,
                    [
                        {"alias": 10, "double_value": 4.25},
                        {"alias": 11, "int_value": (1 << 32) - 5, "timestamp": ms + 500},  # -5
                        {"alias": 13, "double_value": 41.0},  # not mapped: a phantom
                    ],
                ),
            ),
            (
                "spBv1.0/plant/NDATA/edge-1",
                _payload(3, ms + 2000, [{"alias": 1, "float_value": 2.75}]),
            ),
            ("spBv1.0/plant/DDEATH/edge-1/pump-2", _payload(4, ms + 3000, [])),
        ]
    )
    since = float(base) - 1
    _wait(_processed(plant, ["tank-1.level"], since, 2), what="two tank levels")
    _wait(_processed(plant, ["pump-2.pressure"], since, 2), what="two pump pressures")
    assert _signal(plant, "tank-1.level", since) == ([base, base + 2.0], [2.5, 2.75])
    assert _signal(plant, "pump-2.pressure", since) == ([base, base + 1.0], [4.0, 4.25])
    assert _signal(plant, "pump-2.speed", since) == ([base, base + 0.5], [1400.0, -5.0])
    metrics = plant.metrics
    _wait(lambda: metrics.rejected_count("unsupported_type") == 1, what="the string metric")
    # the temperature twice (BIRTH and DATA); bdSeq and Node Control are protocol, not phantoms
    _wait(lambda: _phantoms(plant, "edge") == 2, what="the unmapped metric")
    (finding,) = plant.store.findings(kind=FindingKind.PHANTOM)
    assert finding.finding.signal == "edge/plant/edge-1/pump-2:Temperature"


def test_sparkplug_data_before_any_birth_is_refused_as_unknown_alias(
    plant: Runtime, publisher: Publisher
) -> None:
    base = int(time.time()) - 60
    publisher.send(
        [
            (
                "spBv1.0/plant/DDATA/edge-2/pump-2",
                _payload(0, base * 1000, [{"alias": 10, "double_value": 1.0}]),
            ),
            ("spBv1.0/plant/DDATA/edge-2/pump-2", b"\xff\xff\xff"),  # not a protobuf
            ("spBv1.0/plant/BOGUS/edge-2", _payload(0, base * 1000, [])),
        ]
    )
    metrics = plant.metrics
    _wait(lambda: metrics.rejected_count("unknown_alias") == 1, what="the unknown alias")
    _wait(lambda: metrics.rejected_count("bad_payload") == 1, what="the bad payload")
    _wait(lambda: metrics.rejected_count("bad_topic") == 1, what="the bad topic")


# -- flow control and connections -------------------------------------------------------------


class _Slow:
    """A pipeline stage that takes its time: the pipeline falls behind the broker."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def run(self, batch: Batch) -> Batch:
        time.sleep(self.seconds)
        return batch


@pytest.mark.slow
def test_a_full_pipeline_blocks_the_source_and_nothing_acknowledged_is_lost(
    tmp_path: Path, broker: Broker, publisher: Publisher
) -> None:
    runtime = _runtime(tmp_path, broker.port, queue_size=1, reorder_tolerance=0.0)
    runtime.stages.insert(0, _Slow(0.04))
    source = _source(runtime, "broker")
    source.flush_samples = 10  # small batches: ~250 samples a second get through
    runtime.start()
    try:
        assert source.connected.wait(10)
        n = 600
        base = float(int(time.time())) - 3600.0
        messages = [
            ("plant/pump-1/pressure", orjson.dumps({"time": base + i * 0.01, "value": i % 97}))
            for i in range(n)
        ]
        publisher.send(messages)  # every message acknowledged by the broker
        receiver = source.receiver
        assert receiver is not None
        # The source has not read them all: it waits for the pipeline, the broker holds the
        # rest. It reads ahead of what the pipeline took by a few small batches at most.
        ahead = []
        deadline = time.monotonic() + 60
        while len(_signal(runtime, "pump-1.pressure", base)[0]) < n:
            assert time.monotonic() < deadline, "timed out waiting for all samples"
            ahead.append(receiver.received - _accepted(runtime, "broker"))
            time.sleep(0.05)
        assert len(ahead) > 10  # the pipeline took seconds: the source waited all along
        assert max(ahead) <= 100, max(ahead)
        times, values = _signal(runtime, "pump-1.pressure", base)
        assert values == [float(i % 97) for i in range(n)]
        assert np.allclose(times, [base + i * 0.01 for i in range(n)])
        assert runtime.metrics.rejected_count("busy") == 0
        assert runtime.metrics.rejected_count("out_of_order") == 0
    finally:
        runtime.stop()


@pytest.mark.slow
def test_reconnects_after_the_broker_restarts(tmp_path: Path, broker: Broker) -> None:
    runtime = _runtime(tmp_path, broker.port)
    source = _source(runtime, "broker")
    source.max_backoff = 0.5
    runtime.start()
    try:
        assert source.connected.wait(10)
        base = float(int(time.time())) - 60.0
        pub = Publisher(broker.port)
        pub.send([("plant/pump-1/pressure", orjson.dumps({"time": base, "value": 1.0}))])
        pub.close()
        _wait(_processed(runtime, ["pump-1.pressure"], base, 1), what="before the restart")
        broker.restart()
        _wait(lambda: source.connections >= 2, timeout=20, what="the second connection")
        pub = Publisher(broker.port)
        pub.send([("plant/pump-1/pressure", orjson.dumps({"time": base + 1, "value": 2.0}))])
        pub.close()
        _wait(_processed(runtime, ["pump-1.pressure"], base, 2), what="after the restart")
        assert _signal(runtime, "pump-1.pressure", base) == ([base, base + 1], [1.0, 2.0])
    finally:
        runtime.stop()


def test_stop_is_prompt_when_subscribed(tmp_path: Path, broker: Broker) -> None:
    runtime = _runtime(tmp_path, broker.port)
    runtime.start()
    assert _source(runtime, "broker").connected.wait(10)
    started = time.monotonic()
    runtime.stop()
    assert time.monotonic() - started < 2.0


def test_stop_is_prompt_while_no_broker_answers(tmp_path: Path) -> None:
    runtime = _runtime(tmp_path, free_port())  # nothing listens there
    source = _source(runtime, "broker")
    runtime.start()
    time.sleep(0.5)  # connection refused, backing off
    threads = [t for t in threading.enumerate() if t.name == f"nexus-{source.name}"]
    assert threads
    assert threads[0].is_alive()
    started = time.monotonic()
    runtime.stop()
    assert time.monotonic() - started < 2.0
    assert not source.connected.is_set()


@pytest.mark.parametrize("qos", [0, 2])
def test_other_qualities_of_service_deliver_too(tmp_path: Path, broker: Broker, qos: int) -> None:
    site = SITE.replace('topics: ["plant/#"]', f'topics: ["plant/#"]\n    qos: {qos}')
    path = tmp_path / "site.yaml"
    path.write_text(site.format(port=broker.port), encoding="utf-8")
    runtime = build_runtime(
        RuntimeSettings(site=path, data_dir=tmp_path / "data", source="http", reorder_tolerance=0)
    )
    runtime.start()
    try:
        assert _source(runtime, "broker").connected.wait(10)
        base = float(int(time.time())) - 60.0
        # One QoS 2 message in flight at a time: Debian's Mosquitto 2.0.11 holds back what a
        # publisher sends with several QoS 2 messages in flight (a stock paho subscriber gets
        # only the first 20 too).
        pub = Publisher(broker.port, inflight=1 if qos == 2 else 1000)
        pub.send(
            [
                ("plant/pump-1/pressure", orjson.dumps({"time": base + i, "value": float(i)}))
                for i in range(50)
            ],
            qos=qos,
        )
        pub.close()
        _wait(_processed(runtime, ["pump-1.pressure"], base, 50), what=f"50 readings at QoS {qos}")
        assert _signal(runtime, "pump-1.pressure", base)[1] == [float(i) for i in range(50)]
    finally:
        runtime.stop()


def test_a_url_that_does_not_parse_is_a_configuration_error(tmp_path: Path) -> None:
    from safety_nexus.core.errors import ConfigError
    from safety_nexus.site.schema import Source

    bad = Source(id="b", kind="mqtt", url="mqtt://h:0", topics=["x/#"])
    with pytest.raises(ConfigError, match="url"):
        MqttSource(bad)


# -- configuration -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("mqtt://127.0.0.1:1883", ("127.0.0.1", 1883, None, None)),
        ("mqtt://broker.local", ("broker.local", 1883, None, None)),
        ("mqtt://nexus:s%40cret@10.0.0.2:8883/", ("10.0.0.2", 8883, "nexus", "s@cret")),
        ("mqtt://[::1]:1884", ("::1", 1884, None, None)),
    ],
)
def test_broker_urls(url: str, expected: tuple[str, int, str | None, str | None]) -> None:
    assert parse_url(url) == expected


@pytest.mark.parametrize(
    "url", ["http://h:1", "mqtt://", "mqtt://h:0", "mqtt://h:70000", "mqtt://h/x"]
)
def test_bad_broker_urls_name_the_url(url: str) -> None:
    with pytest.raises(ValueError, match=r"mqtt://|port"):
        parse_url(url)
