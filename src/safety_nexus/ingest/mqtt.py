"""MQTT telemetry: subscribe to a broker's topics and hand the readings to the intake.

A site source of kind `mqtt` names a broker, the topic filters to subscribe to and how the
messages are encoded:

    sources:
      - id: plant-broker
        kind: mqtt
        url: mqtt://10.0.4.20:1883            # mqtt://user:password@host:port works too
        topics: ["plant/#"]
        qos: 1
        payload: json                         # or sparkplug
        map:                                  # json: topic -> signal id
          plant/pump-1/pressure: pump-1.pressure
      - id: edge
        kind: mqtt
        url: mqtt://10.0.4.20:1883
        topics: ["spBv1.0/plant/#"]
        payload: sparkplug
        map:                                  # sparkplug: "<group>/<node>[/<device>]:<metric>"
          plant/edge-1/pump-2:Pressure: pump-2.pressure

Payloads: `json` messages are a single reading whose signal is its topic's (see
`ingest.mqtt_json`) or a Nexus batch naming its signals; `sparkplug` messages are Sparkplug B
(see `ingest.sparkplug`). Nothing is dropped silently: a reading on a topic the map does not
name, a metric the map does not name, a signal the site does not declare or one outside the
source's `signals` patterns is reported through `intake.phantom` (Sparkplug's own protocol
metrics, bdSeq and "Node Control/...", excepted); a malformed message is counted under
`nexus_ingest_rejected{reason}` (`intake.reject`), logged once a minute at most per reason, and
the source carries on with the next one. An exact repeat of a sample already handed over (the
same time and value: a QoS 1 redelivery) is skipped; an older one is counted as out_of_order.

Why it is built the way it is:

* Batching. Decoded samples of many messages are collected for up to `flush_seconds` (5 ms) or
  `flush_samples` and handed over as one `ParsedBatch`, so the pipeline's per-batch work (the
  write-ahead log's fsync among it) is shared by hundreds of messages.
* Backpressure. A hand-over thread calls `intake.ingest_parsed(..., wait=True)`, which blocks
  while the pipeline is full; the reading thread goes on meanwhile (batches grow) until one
  batch waits for the hand-over and `flush_samples` more are buffered, then it stops reading:
  TCP fills up and the broker holds the messages (for a QoS 1/2 subscription in the session's
  queue: Mosquitto keeps 1000 per client by default, `max_queued_messages`, and drops beyond
  that; size it for how long Nexus may lag). A message is acknowledged once it has been read
  and decoded, a few milliseconds before its samples are handed over; an orderly stop still
  hands them over.
* Sessions. The client id is "nexus-<source id>" with a persistent session (clean session
  off), so that QoS 1 messages published while Nexus was away are delivered when it is back.
  Two Nexus instances subscribing with the same site file must be given other client ids.
* Reconnects. A lost connection (or a refused one) is retried with exponential backoff from
  `min_backoff` to `max_backoff` seconds; each connection subscribes again. `run` returns
  within ~0.1 s of `stop` (plus, at worst, one connection attempt's `connect_timeout`).
* Speed. paho-mqtt runs under our own select() loop rather than `loop_forever()` (which handles
  one packet per select call and wakes a socket pair for every acknowledgement), reads the
  socket in 256 KiB chunks instead of three small reads per packet, calls the decoder straight
  from the packet handler, and acknowledges a whole read burst with one write (`_Client`); see
  `benchmarks/mqtt_ingest.py`.
"""

from __future__ import annotations

import contextlib
import fnmatch
import logging
import queue
import re
import select
import struct
import threading
import time
from collections.abc import Callable
from urllib.parse import unquote, urlsplit

import numpy as np
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from safety_nexus.core.clock import Clock, SystemClock
from safety_nexus.core.errors import ConfigError, ConfigIssue, IngestError
from safety_nexus.core.types import SignalTable
from safety_nexus.ingest import sparkplug
from safety_nexus.ingest.intake import Intake
from safety_nexus.ingest.json_batch import ParsedBatch
from safety_nexus.ingest.mqtt_json import parse_message
from safety_nexus.site.schema import Source

log = logging.getLogger(__name__)

DEFAULT_PORT = 1883
_WARN_EVERY = 60.0  # seconds between two log lines of one kind
_READ_SIZE = 256 * 1024
_BURST = 512  # packets read before the buffer and the acknowledgements get a turn
_TICK = 0.1  # longest select() wait: how quickly `stop` is noticed
_MAX_NAMES = 100_000  # external names remembered; beyond that the cache starts again
# Resolution of an external name, when it is not a column index (>= 0):
_UNKNOWN = -1  # not in the map / not a declared signal: a phantom
_OUTSIDE = -2  # a declared signal outside the source's `signals` patterns: a phantom
_CONTROL = -3  # a Sparkplug protocol metric (bdSeq, Node Control/...): skipped
_PUBACK = 0x4002 << 16
_URL = re.compile(r"^mqtt://(?:([^:@/]*)(?::([^@/]*))?@)?([^:/@]+|\[[0-9a-fA-F:]+\])(?::(\d+))?/?$")


def parse_url(url: str) -> tuple[str, int, str | None, str | None]:
    """`mqtt://[user[:password]@]host[:port]` -> host, port, user, password."""
    m = _URL.match(url)
    if not m:
        raise ValueError(f"'{url}' is not an mqtt://[user[:password]@]host[:port] address")
    user, password, host, port = m.groups()
    number = int(port) if port else DEFAULT_PORT
    if not 0 < number < 65536:
        raise ValueError(f"'{url}': port {number} is out of range")
    host = host[1:-1] if host.startswith("[") else host
    return (
        host,
        number,
        unquote(user) if user is not None else None,
        unquote(password) if password is not None else None,
    )


def _display(url: str) -> str:
    """The URL without its password, for log lines."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return url.replace(f":{parts.password}@", ":***@", 1)


class _Client(mqtt.Client):
    """paho's client with a leaner receive path (paho-mqtt 2.2.0 is pinned; the MQTT tests
    run through both overrides).

    * `_sock_recv`: paho reads every packet with three or more `recv` calls (the command
      byte, each byte of the length, the body); here one `recv` fills a buffer that serves
      them all. `pending()` says how much is buffered, since select() cannot see it.
    * `_handle_on_message`: calls the one handler directly (paho looks the topic up in its
      per-filter callback table and takes two locks first, for features not used here).
    * `_send_puback`: the acknowledgements of a read burst are collected and queued as one
      write (`queue_acks`) instead of one `send` each.
    """

    def __init__(
        self,
        handler: Callable[[mqtt.MQTTMessage], None],
        *,
        client_id: str,
        clean_session: bool,
    ) -> None:
        super().__init__(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=clean_session,
            protocol=MQTTProtocolVersion.MQTTv311,
        )
        self._handler = handler
        self._rbuf = b""
        self._rpos = 0
        self._rsock: object = None
        self._acks: list[int] = []

    def _sock_recv(self, bufsize: int) -> bytes:
        if self._rpos >= len(self._rbuf) or self._rsock is not self._sock:
            data = super()._sock_recv(_READ_SIZE)  # BlockingIOError when there is nothing
            self._rsock = self._sock
            self._rbuf, self._rpos = data, 0
            if not data:
                return data  # the connection is closed
        end = self._rpos + bufsize
        out = self._rbuf[self._rpos : end]
        self._rpos += len(out)
        return out

    def pending(self) -> int:
        """Bytes received and not yet handled."""
        if self._sock is None or self._rsock is not self._sock:
            return 0
        return len(self._rbuf) - self._rpos

    def _handle_on_message(self, message: mqtt.MQTTMessage) -> None:
        self._handler(message)

    def _send_puback(self, mid: int) -> MQTTErrorCode:
        self._acks.append(mid)
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    def queue_acks(self) -> None:
        """Queue the PUBACKs collected since the last call, as one write."""
        if not self._acks:
            return
        acks, self._acks = self._acks, []
        if self._sock is None:
            return  # the connection is gone: the broker sends them again
        # PUBACK of MQTT 3.1.1: 0x40, remaining length 2, message id; one 32-bit word each
        packet = struct.pack(f"!{len(acks)}I", *[_PUBACK | mid for mid in acks])
        self._packet_queue(PacketTypes.PUBACK << 4, packet, 0, 1)

    def forget_acks(self) -> None:
        """A new connection: acknowledgements for the old one mean nothing."""
        self._acks.clear()


class _Receiver:
    """Everything between a received message and a handed-over batch, on the source's thread."""

    def __init__(self, source: Source, intake: Intake, clock: Clock, owner: MqttSource) -> None:
        self.source = source
        self.intake = intake
        self.clock = clock
        self.owner = owner
        self.table: SignalTable = intake.table
        self.allowed = np.array(
            [any(fnmatch.fnmatchcase(sid, p) for p in source.signals) for sid in self.table.ids],
            dtype=np.bool_,
        )
        self.sparkplug = sparkplug.SparkplugDecoder() if source.payload == "sparkplug" else None
        # external name -> column (or a negative code), one cache per namespace: topics and
        # Sparkplug metrics go through the map, a batch's signal ids do not
        self._mapped: dict[str, int] = {}
        self._ids: dict[str, int] = {}
        self.cols: list[int] = []
        self.times: list[float] = []
        self.values: list[float] = []
        self.first_at = 0.0  # monotonic time the oldest buffered sample arrived
        self.received = 0  # messages handled (counts every PUBLISH, good or bad)
        n = len(self.table)
        self.last_time = np.full(n, -np.inf)  # latest time handed over, per column
        self.last_value = np.full(n, np.nan)

    # -- names -------------------------------------------------------------------------------

    def _resolve(self, name: str, *, mapped: bool) -> int:
        """An external name's column (or a negative code). `mapped`: the name must go through
        the source's map (topics, Sparkplug metrics); otherwise it is a signal id (batches)."""
        if mapped:
            sid = self.source.map.get(name)
            if sid is None:
                if self.sparkplug is not None and sparkplug.is_control(name):
                    return _CONTROL
                return _UNKNOWN
        else:
            sid = name
        col = self.table.index.get(sid)
        if col is None:
            return _UNKNOWN
        return col if self.allowed[col] else _OUTSIDE

    def _column(self, name: str, mapped: bool, what: str) -> int:
        """The column of a name not (or negatively) cached; a phantom is reported every time."""
        cache = self._mapped if mapped else self._ids
        col = cache.get(name)
        if col is None:
            if len(cache) >= _MAX_NAMES:
                cache.clear()  # bounded: a flood of made-up topics costs no memory
            col = cache[name] = self._resolve(name, mapped=mapped)
        if col < 0 and col != _CONTROL:
            self._phantom(name, col, mapped, what)
        return col

    def _phantom(self, name: str, code: int, mapped: bool, what: str) -> None:
        src = self.source.id
        if code == _OUTSIDE:
            sid = self.source.map.get(name, name) if mapped else name
            detail = (
                f"{what} carries signal '{sid}', which source '{src}' may not send"
                " (outside its 'signals' patterns)"
            )
            seen = sid
        elif mapped:
            detail = f"{what} '{name}' is not in the map of source '{src}'"
            seen = name
        else:
            detail = f"{what} names signal '{name}', which the site does not declare"
            seen = name
        self.intake.phantom(src, seen, detail)

    # -- messages ----------------------------------------------------------------------------

    def __call__(self, message: mqtt.MQTTMessage) -> None:
        self.received += 1
        if not self.cols:
            self.first_at = time.monotonic()
        try:
            topic = message.topic
        except UnicodeDecodeError:
            self._reject(IngestError("topic is not UTF-8", "bad_topic"), "?")
            return
        try:
            if self.sparkplug is not None:
                self._sparkplug(topic, message.payload)
            else:
                self._json(topic, message.payload)
        except IngestError as err:
            self._reject(err, topic)

    def _json(self, topic: str, payload: bytes | bytearray) -> None:
        parsed = parse_message(payload)
        if type(parsed) is tuple:
            col = self._mapped.get(topic)
            if col is None or col < 0:
                col = self._column(topic, True, "reading on topic")
                if col < 0:
                    return
            t, value = parsed
            self.cols.append(col)
            self.times.append(t if t == t else self.clock.now())  # NaN: none in the payload
            self.values.append(value)
            return
        assert not isinstance(parsed, tuple)
        cols = []
        for sid in parsed.signals:
            col = self._ids.get(sid)
            if col is None or col < 0:
                col = self._column(sid, False, f"batch on topic '{topic[:80]}'")
            cols.append(col)
        if min(cols, default=0) < 0:
            keep = [i for i, c in enumerate(cols) if c >= 0]
            self.cols.extend(cols[i] for i in keep)
            self.times.extend(parsed.times[i] for i in keep)
            self.values.extend(parsed.values[i] for i in keep)
        else:
            self.cols.extend(cols)
            self.times.extend(parsed.times)
            self.values.extend(parsed.values)

    def _sparkplug(self, topic: str, payload: bytes | bytearray) -> None:
        assert self.sparkplug is not None
        decoded = self.sparkplug.decode(topic, payload)
        if decoded.ignored:
            self.intake.reject("unsupported_type", len(decoded.ignored))
            self.owner.warn(
                "unsupported_type",
                f"{decoded.topic.kind} from '{decoded.topic.edge}': metric"
                f" '{decoded.ignored[0]}' is not a number (strings, datasets, templates, arrays"
                " are not samples)",
            )
        if decoded.topic.kind in sparkplug.DEATHS:
            log.info(
                "mqtt source '%s': %s for %s",
                self.source.id,
                decoded.topic.kind,
                decoded.topic.edge,
            )
            return
        names = self._mapped
        now_ms = self.clock.now() * 1000.0 if decoded.names else 0.0
        for name, t, value in zip(decoded.names, decoded.times, decoded.values, strict=True):
            col = names.get(name)
            if col is None or col < 0:
                col = self._column(name, True, "metric")
                if col < 0:
                    continue
            self.cols.append(col)
            self.times.append((t if t == t else now_ms) / 1000.0)
            self.values.append(value)

    def _reject(self, err: IngestError, topic: str) -> None:
        self.intake.reject(err.reason)
        self.owner.warn(err.reason, f"message on '{topic[:120]}' refused: {err}")

    # -- hand-over ---------------------------------------------------------------------------

    def due(self, flush_seconds: float, flush_samples: int) -> bool:
        n = len(self.cols)
        return n >= flush_samples or (n > 0 and time.monotonic() - self.first_at >= flush_seconds)

    def take_batch(self) -> ParsedBatch | None:
        """What is buffered, as one batch: repeats of samples already handed over left out,
        older ones counted as out of order."""
        if not self.cols:
            return None
        cols = np.array(self.cols, dtype=np.int64)
        times = np.array(self.times, dtype=np.float64)
        values = np.array(self.values, dtype=np.float64)
        self.cols, self.times, self.values = [], [], []
        last_t, last_v = self.last_time[cols], self.last_value[cols]
        repeat = (times == last_t) & (values == last_v)
        late = (times < last_t) | ((times == last_t) & ~repeat)
        if repeat.any() or late.any():
            if late.any():
                self.intake.reject("out_of_order", int(late.sum()))
                self.owner.warn(
                    "out_of_order",
                    f"{int(late.sum())} sample(s) at or before what was already handed over"
                    " for their signals",
                )
            keep = ~(repeat | late)
            cols, times, values = cols[keep], times[keep], values[keep]
            if not cols.size:
                return None
        # the latest time (and its value) per column, for the next batch's checks
        order = np.lexsort((times, cols))
        last_of = np.r_[cols[order][1:] != cols[order][:-1], True]
        pick = order[last_of]
        self.last_time[cols[pick]] = times[pick]
        self.last_value[cols[pick]] = values[pick]
        return ParsedBatch(self.source.id, cols, times, values)


class _Handover:
    """Hands batches to the intake on a thread of its own, one at a time, so that reading the
    socket goes on while a batch is written ahead and queued. At most one batch waits for it:
    beyond that `give` blocks, and with it the reading (backpressure)."""

    def __init__(self, name: str, intake: Intake, stop: threading.Event, owner: MqttSource):
        self.name = name
        self.intake = intake
        self.stop = stop
        self.owner = owner
        self._queue: queue.Queue[ParsedBatch | None] = queue.Queue(maxsize=1)
        self._thread = threading.Thread(
            target=self._run, name=f"nexus-{name}-handover", daemon=True
        )
        self._thread.start()

    @property
    def busy(self) -> bool:
        """A batch is already waiting: giving another would block."""
        return self._queue.full()

    def give(self, batch: ParsedBatch | None) -> None:
        """Queue a batch (None: nothing to give), waiting while one is already waiting."""
        if batch is not None and not self._put(batch):
            log.error(
                "mqtt source '%s': %d sample(s) lost: hand-over stopped", self.name, len(batch)
            )

    def close(self) -> None:
        """Hand over what was given, then end the thread."""
        self._put(None)
        self._thread.join()

    def _put(self, item: ParsedBatch | None) -> bool:
        while self._thread.is_alive():
            try:
                self._queue.put(item, timeout=_TICK)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        while True:
            batch = self._queue.get()
            if batch is None:
                return
            try:
                self._hand_over(batch, split=True)
            except Exception:  # a bug here must not stall the source silently (logged)
                log.exception("mqtt source '%s': handing over a batch failed", self.name)
                self.intake.reject("internal_error", len(batch))

    def _hand_over(self, batch: ParsedBatch, *, split: bool) -> None:
        while True:
            try:
                self.intake.ingest_parsed(batch, wait=True)
                return
            except IngestError as err:
                if err.reason == "busy" and not self.stop.is_set():
                    time.sleep(0.005)  # another producer took the room first: wait again
                    continue
                if err.reason == "busy":
                    log.warning(
                        "mqtt source '%s': %d sample(s) not handed over: the runtime stopped",
                        self.name,
                        len(batch),
                    )
                    return
                if not (split and err.reason == "out_of_order"):
                    self.owner.warn(f"ingest:{err.reason}", f"batch of {len(batch)} refused: {err}")
                    return
                break
        # One signal the pipeline has seen newer samples of (after a restart, or from another
        # source) must not cost the others their samples: hand them over signal by signal.
        for col in np.unique(batch.columns):
            pick = batch.columns == col
            one = ParsedBatch(
                batch.source, batch.columns[pick], batch.times[pick], batch.values[pick]
            )
            self._hand_over(one, split=False)


class MqttSource:
    """A `LiveSource` for a site source of kind `mqtt` (see the module docstring)."""

    def __init__(
        self,
        source: Source,
        *,
        clock: Clock | None = None,
        client_id: str | None = None,
        clean_session: bool = False,
        flush_seconds: float = 0.005,
        flush_samples: int = 20_000,
        keepalive: int = 30,
        connect_timeout: float = 1.0,
        min_backoff: float = 0.1,
        max_backoff: float = 10.0,
    ) -> None:
        try:
            if source.url is None:
                raise ValueError("an mqtt source needs a 'url'")
            self.host, self.port, self._user, self._password = parse_url(source.url)
        except ValueError as err:
            raise ConfigError([ConfigIssue(f"sources['{source.id}'].url", str(err))]) from err
        self.source = source
        self.name = source.id
        self.clock = clock or SystemClock()
        self.client_id = client_id or f"nexus-{source.id}"
        self.clean_session = clean_session
        self.flush_seconds = flush_seconds
        self.flush_samples = flush_samples
        self.keepalive = keepalive
        self.connect_timeout = connect_timeout
        self.min_backoff = min_backoff
        self.max_backoff = max_backoff
        self.connected = threading.Event()  # set while subscribed (for status and tests)
        self.connections = 0  # connections that got as far as subscribing
        self.receiver: _Receiver | None = None  # while running (tests read its counters)
        self._warned: dict[str, float] = {}

    def warn(self, key: str, message: str) -> None:
        """Log a warning, once a minute at most per kind: a flood must not flood the log."""
        now = time.monotonic()
        last = self._warned.get(key)
        if last is None or now - last >= _WARN_EVERY:
            if len(self._warned) > 1000:
                self._warned.clear()
            self._warned[key] = now
            log.warning("mqtt source '%s': %s", self.name, message)

    # -- the thread --------------------------------------------------------------------------

    def run(self, intake: Intake, stop: threading.Event) -> None:
        receiver = self.receiver = _Receiver(self.source, intake, self.clock, self)
        handover = _Handover(self.name, intake, stop, self)
        client = self._client(receiver)
        where = _display(self.source.url or "")
        delay = self.min_backoff
        try:
            while not stop.is_set():
                client.forget_acks()
                try:
                    client.connect(self.host, self.port, keepalive=self.keepalive)
                except (OSError, ValueError) as err:
                    self.warn("connect", f"cannot connect to {where}: {err}; retrying")
                    stop.wait(delay)
                    delay = min(delay * 2, self.max_backoff)
                    continue
                up_since = time.monotonic()
                self._serve(client, receiver, handover, stop)
                self.connected.clear()
                if stop.is_set():
                    with contextlib.suppress(OSError, ValueError):
                        client.disconnect()
                        client.loop_write()
                    break
                self.warn("lost", f"connection to {where} lost; reconnecting")
                if time.monotonic() - up_since > 10 * self.max_backoff:
                    delay = self.min_backoff  # it was up for a good while: start over
                stop.wait(delay)
                delay = min(delay * 2, self.max_backoff)
        finally:
            self.connected.clear()
            handover.give(receiver.take_batch())  # what was read is handed over
            handover.close()
            with contextlib.suppress(OSError, ValueError):
                sock = client.socket()
                if sock is not None:
                    sock.close()

    def _client(self, receiver: _Receiver) -> _Client:
        client = _Client(receiver, client_id=self.client_id, clean_session=self.clean_session)
        client.connect_timeout = self.connect_timeout
        if self._user is not None:
            client.username_pw_set(self._user, self._password)
        client.on_connect = self._on_connect
        client.on_subscribe = self._on_subscribe
        # Writes (acknowledgements) are made by `_serve` after each read burst, not one by one.
        client.on_socket_register_write = _nothing
        client.on_socket_unregister_write = _nothing
        return client

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: object,
        flags: mqtt.ConnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason.is_failure:
            self.warn("refused", f"broker refused the connection: {reason}")
            return
        client.subscribe([(topic, self.source.qos) for topic in self.source.topics])

    def _on_subscribe(
        self,
        client: mqtt.Client,
        userdata: object,
        mid: int,
        reasons: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        refused = [t for t, r in zip(self.source.topics, reasons, strict=False) if r.is_failure]
        for topic in refused:
            log.error("mqtt source '%s': broker refused the subscription to '%s'", self.name, topic)
        if len(refused) < len(self.source.topics):
            self.connections += 1
            self.connected.set()

    def _serve(
        self, client: _Client, receiver: _Receiver, handover: _Handover, stop: threading.Event
    ) -> None:
        """Read, acknowledge and batch until the connection is lost or `stop` is set."""
        misc_at = 0.0
        while not stop.is_set():
            sock = client.socket()
            if sock is None:
                return
            if client.pending():
                timeout = 0.0
            elif receiver.cols and handover.busy:
                timeout = 0.002  # the batch is due, but the hand-over has one waiting still
            elif receiver.cols:
                timeout = max(0.0, receiver.first_at + self.flush_seconds - time.monotonic())
            else:
                timeout = _TICK
            try:
                readable, _, _ = select.select(
                    [sock], [sock] if client.want_write() else [], [], timeout
                )
            except (OSError, ValueError):  # the socket was closed under us
                return
            if readable or client.pending():
                for _ in range(_BURST):
                    before = receiver.received
                    if client.loop_read() != MQTTErrorCode.MQTT_ERR_SUCCESS:
                        return
                    if receiver.received == before:  # no more data, or not a PUBLISH
                        break
                    if len(receiver.cols) >= self.flush_samples:
                        break
                # Acknowledge the burst at once: the broker sends a QoS 1 subscriber only a
                # few unacknowledged messages at a time (Mosquitto: 20).
                client.queue_acks()
            if client.want_write() and client.loop_write() != MQTTErrorCode.MQTT_ERR_SUCCESS:
                return
            now = time.monotonic()
            if now - misc_at >= _TICK:
                misc_at = now
                if client.loop_misc() != MQTTErrorCode.MQTT_ERR_SUCCESS:
                    return
            # Due, and the hand-over free (or the buffer full: then wait for it, and stop
            # reading meanwhile). Under load batches grow while the previous one is handed over.
            if receiver.due(self.flush_seconds, self.flush_samples) and (
                not handover.busy or len(receiver.cols) >= self.flush_samples
            ):
                handover.give(receiver.take_batch())


def _nothing(client: mqtt.Client, userdata: object, sock: object) -> None:
    """A socket-registration callback: its presence makes paho leave writing to `_serve`."""
