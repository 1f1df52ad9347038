"""Random streams of findings, recoveries, time and operator actions through the manager (with
restarts in between): the invariants of incidents and the journal hold after every step."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from tempfile import TemporaryDirectory

from alarm_site import chain_manager, chain_site
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from findings import finding, recovery
from safety_nexus.alarms.lifecycle import TRANSITIONS
from safety_nexus.alarms.manager import AlarmManager
from safety_nexus.core.clock import ManualClock
from safety_nexus.core.errors import AlarmError
from safety_nexus.core.types import AlarmState, FindingKind
from safety_nexus.site.graph import DependencyGraph
from safety_nexus.store.sqlite import SqliteStore

SIGNALS = ["sub-1.x", "feeder-1.x", "pump-1.x", "pump-1.y", "zone-1.x", "core-1.x"]
KINDS = [FindingKind.LEVEL_SHIFT, FindingKind.VARIANCE]

step = st.one_of(
    st.tuples(st.just("find"), st.sampled_from(SIGNALS), st.sampled_from(KINDS)),
    st.tuples(st.just("recover"), st.sampled_from(SIGNALS), st.sampled_from(KINDS)),
    st.tuples(st.just("wait"), st.sampled_from([1.0, 20.0, 200.0, 2000.0]), st.none()),
    st.tuples(st.just("ack"), st.integers(0, 20), st.none()),
    st.tuples(st.just("shelve"), st.integers(0, 20), st.none()),
    st.tuples(st.just("restart"), st.none(), st.none()),
)


def _check(m: AlarmManager, store: SqliteStore, graph: DependencyGraph) -> None:
    alarms = {a.id: a for a in m.alarms(view="all")}
    for a in alarms.values():
        if a.root_cause is not None:
            root = alarms[a.root_cause]
            assert not a.open, f"{a.id} is shown under its root {root.id}"
            assert root.root_cause is None
            assert not root.closed
            # the root is upstream (supply lost) or downstream (a load gone) of its consequence
            related = {a.asset, *graph.upstream(a.asset), *graph.downstream(a.asset)}
            assert root.asset in related
            assert a.id in root.consequences
            assert a.incident == root.incident
        if a.open or a.state is AlarmState.SHELVED:
            assert a.suppressed_by == [] or a.state is not AlarmState.SUPPRESSED
    # the journal replays every alarm's state, through declared transitions only
    stored = {a.id: a for a in store.alarms(open_only=False)}
    for aid, a in alarms.items():
        assert (stored[aid].state, stored[aid].root_cause) == (a.state, a.root_cause)
    chains: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for e in sorted(store.events(limit=100_000), key=lambda e: e.id):
        if e.kind.startswith("alarm.") and "to" in e.data:
            chains[e.subject].append((str(e.data["from"]), str(e.data["to"])))
    for aid, moves in chains.items():
        state = AlarmState.NORMAL.value
        for frm, to in moves:
            assert frm == state, f"{aid}: journal jumps from {state} to a move from {frm}"
            assert (AlarmState(frm), AlarmState(to)) in TRANSITIONS
            state = to
        assert stored[aid].state.value == state


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,
)
@given(st.lists(step, min_size=1, max_size=40))
def test_random_streams_keep_the_invariants(steps: list[tuple[str, object, object]]) -> None:
    graph = DependencyGraph(chain_site())
    with TemporaryDirectory() as tmp:
        store = SqliteStore(Path(tmp) / "nexus.db")
        clock = ManualClock(0.0)
        m = chain_manager(store, clock)
        t = 100.0
        try:
            for what, a, b in steps:
                t += 1.0
                clock.set(t)
                if what == "find":
                    assert isinstance(a, str)
                    assert isinstance(b, FindingKind)
                    m.process([finding(a, t, b)])
                elif what == "recover":
                    assert isinstance(a, str)
                    assert isinstance(b, FindingKind)
                    m.process([], [recovery(a, t, b)])
                elif what == "wait":
                    assert isinstance(a, float)
                    t += a
                    clock.set(t)
                    m.tick(t)
                elif what in ("ack", "shelve"):
                    assert isinstance(a, int)
                    ids = sorted(x.id for x in m.alarms(view="all"))
                    if ids:
                        target = ids[a % len(ids)]
                        try:
                            if what == "ack":
                                m.acknowledge(target, "ann")
                            else:
                                m.shelve(target, "ann", duration=300.0)
                        except AlarmError:
                            pass
                else:
                    before = {x.id: (x.state, x.root_cause) for x in m.alarms(view="live")}
                    m = chain_manager(store, clock)
                    after = {x.id: (x.state, x.root_cause) for x in m.alarms(view="live")}
                    assert after == before
                _check(m, store, graph)
        finally:
            store.close()
