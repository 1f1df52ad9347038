"""The dependency graph: reach with lags, cycles, single points of failure, the summary."""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from typing import Any

import pytest

from safety_nexus.core.errors import NotFoundError
from safety_nexus.site.graph import DependencyGraph
from safety_nexus.site.schema import Site


def _site(
    assets: dict[str, str],
    deps: list[tuple[str, str, float]],
    groups: Sequence[tuple[list[str], int]] = (),
    kind: str = "power",
) -> Site:
    """A one-subsystem site; `assets` maps id to criticality."""
    data: dict[str, Any] = {
        "site": {"name": "test"},
        "subsystems": [{"id": "s", "name": "S"}],
        "assets": [
            {"id": a, "subsystem": "s", "type": "thing", "criticality": c}
            for a, c in assets.items()
        ],
        "dependencies": [
            {"provider": p, "dependant": d, "kind": kind, "lag": lag} for p, d, lag in deps
        ],
        "redundancy_groups": [
            {"id": f"g{i}", "members": members, "required": k}
            for i, (members, k) in enumerate(groups)
        ],
    }
    return Site.model_validate(data)


@pytest.fixture(scope="module")
def city(demo_city: Site) -> DependencyGraph:
    return DependencyGraph(demo_city)


def test_nodes_and_edges_carry_their_attributes(city: DependencyGraph) -> None:
    assert city.graph.nodes["pump-1"]["subsystem"] == "water"
    assert city.graph.nodes["pump-1"]["type"] == "pump"
    assert city.graph.nodes["core-a1"]["criticality"] == "critical"
    edge = city.graph.edges["feeder-1", "pump-1"]
    assert (edge["kind"], edge["lag"]) == ("power", 1.0)


def test_downstream_of_a_substation_has_earliest_arrival_lags(city: DependencyGraph) -> None:
    reach = city.downstream("sub-1")
    assert reach["feeder-1"] == 0.5
    assert reach["pump-1"] == 1.5
    assert reach["main-1"] == 6.5
    assert reach["sprinkler-1"] == 16.5
    assert reach["tunnel-1"] == 31.5
    assert "sub-1" not in reach
    assert "core-a1" not in reach  # sub-2 feeds the compute core
    assert list(reach.values()) == sorted(reach.values())


def test_downstream_takes_the_fastest_route(city: DependencyGraph) -> None:
    # core-a1 is reached from feeder-9 at once through pdu-1 (0 s), and through pdu-1 ->
    # chiller-1 only after a minute: the earliest arrival counts.
    assert city.downstream("feeder-9")["core-a1"] == 0.0
    assert city.downstream("main-3")["core-a1"] == 90.0
    assert city.lag_path("sub-1", "tunnel-1") == ["sub-1", "feeder-1", "fan-1", "tunnel-1"]


def test_upstream_lists_root_cause_candidates(city: DependencyGraph) -> None:
    up = city.upstream("sprinkler-1")
    assert up["main-1"] == 10.0
    assert up["pump-3"] == 15.0
    assert up["sub-1"] == 16.5
    assert "sub-2" not in up


def test_direct_neighbours_in_file_order(city: DependencyGraph) -> None:
    assert city.providers("pump-1") == ["feeder-1", "tank-1"]
    assert city.dependants("pdu-1") == [
        "chiller-1",
        "chiller-2",
        "core-a1",
        "core-a2",
        "core-a3",
        "core-a4",
        "switch-1",
    ]
    assert city.providers("sub-1") == []


def test_unknown_asset_is_not_found(city: DependencyGraph) -> None:
    with pytest.raises(NotFoundError, match="unknown asset 'pump-99'"):
        city.downstream("pump-99")
    with pytest.raises(NotFoundError):
        city.lag_path("sprinkler-1", "sub-1")


def test_the_demo_city_has_no_cycles(city: DependencyGraph) -> None:
    assert city.cycles() == []


def test_cycles_are_found_and_normalised() -> None:
    site = _site(
        {"gen": "high", "pump": "high", "cooler": "high", "x": "low"},
        [("gen", "pump", 1), ("pump", "cooler", 2), ("cooler", "gen", 3), ("x", "gen", 0)],
    )
    graph = DependencyGraph(site)
    assert graph.cycles() == [["gen", "pump", "cooler"]]
    # A cycle still has a finite earliest arrival, and the asset itself is not its own dependant.
    assert graph.downstream("pump") == {"cooler": 2.0, "gen": 5.0}
    assert graph.summary().cycles == (("gen", "pump", "cooler"),)


def test_two_kinds_between_one_pair_keep_the_faster() -> None:
    data = _site({"a": "low", "b": "low"}, [("a", "b", 5)]).model_dump(by_alias=True)
    data["dependencies"].append({"provider": "a", "dependant": "b", "kind": "control", "lag": 1})
    graph = DependencyGraph(Site.model_validate(data))
    edge = graph.graph.edges["a", "b"]
    assert (edge["kind"], edge["lag"], edge["kinds"]) == ("control", 1.0, ("power", "control"))
    summary = graph.summary()
    assert (summary.edges, summary.dependencies) == (1, 2)


def test_a_chain_to_a_critical_asset_is_all_single_points() -> None:
    site = _site({"a": "low", "b": "low", "c": "critical"}, [("a", "b", 1), ("b", "c", 1)])
    assert DependencyGraph(site).single_points_of_failure() == {"a": ["c"], "b": ["c"]}


def test_a_holding_redundancy_group_absorbs_a_member_failure() -> None:
    site = _site(
        {"f1": "low", "f2": "low", "p1": "high", "p2": "high", "main": "critical"},
        [("f1", "p1", 1), ("f2", "p2", 1), ("p1", "main", 1), ("p2", "main", 1)],
        groups=[(["p1", "p2"], 1)],
    )
    graph = DependencyGraph(site)
    assert graph.single_points_of_failure() == {}
    assert graph.cascade("f1") == ["p1"]


def test_a_group_that_falls_below_k_passes_the_failure_on() -> None:
    site = _site(
        {"feed": "low", "p1": "high", "p2": "high", "main": "critical"},
        [("feed", "p1", 1), ("feed", "p2", 1), ("p1", "main", 1), ("p2", "main", 1)],
        groups=[(["p1", "p2"], 1)],
    )
    graph = DependencyGraph(site)
    # Common mode: both redundant pumps hang off one feeder.
    assert graph.single_points_of_failure() == {"feed": ["main"]}
    assert graph.cascade("feed") == ["p1", "p2", "main"]


def test_critical_assets_in_a_holding_group_are_not_lost() -> None:
    site = _site(
        {"pdu": "low", "n1": "critical", "n2": "critical"},
        [("pdu", "n1", 0)],
        groups=[(["n1", "n2"], 1)],
    )
    graph = DependencyGraph(site)
    assert graph.cascade("pdu") == ["n1"]
    assert graph.single_points_of_failure() == {}


def test_a_k_of_k_group_member_is_a_single_point() -> None:
    site = _site(
        {"p1": "low", "p2": "low", "out": "critical"},
        [("p1", "out", 0), ("p2", "out", 0)],
        groups=[(["p1", "p2"], 2)],
    )
    assert DependencyGraph(site).single_points_of_failure() == {"p1": ["out"], "p2": ["out"]}


def test_demo_city_single_points_of_failure(city: DependencyGraph) -> None:
    spofs = city.single_points_of_failure()
    # A substation takes three pumps of main-1 at once: more than its 2-of-3 group can lose.
    assert {"sprinkler-1", "sprinkler-2", "sprinkler-3"} <= set(spofs["sub-1"])
    assert spofs["main-2"] == ["sprinkler-4", "sprinkler-5", "sprinkler-6"]
    # pdu-1 feeds two of three chillers, and the cores need two.
    assert "core-b1" in spofs["pdu-1"]
    # Covered by their groups: one pump of main-1, one UPS, fan-1 (with fan-9), pdu-2 (it takes
    # only one chiller and four of eight cores), and anything redundant by itself.
    for covered in ("feeder-1", "pump-1", "ups-1", "gen-1", "fan-1", "fan-9", "pdu-2", "switch-1"):
        assert covered not in spofs
    # A critical asset's own failure does not make it a single point of failure.
    assert not any(asset.startswith(("sprinkler-", "core-", "tunnel-")) for asset in spofs)


def test_longest_lag_path_is_the_slowest_cascade(city: DependencyGraph) -> None:
    lag, path = city.longest_lag_path()
    assert lag == 96.0
    assert path[-1].startswith("core-")
    assert sum(city.lag(a, b) for a, b in itertools.pairwise(path)) == lag


def test_summary(city: DependencyGraph) -> None:
    summary = city.summary()
    assert summary.assets == 76
    assert summary.dependencies == summary.edges == 124
    assert summary.assets_by_subsystem == {"power": 16, "water": 27, "tunnels": 18, "compute": 15}
    assert sum(summary.dependencies_by_kind.values()) == 124
    assert summary.dependencies_by_kind["data"] == 8
    assert summary.dependencies_by_subsystem["water -> compute"] == 3
    assert summary.roots == ("sub-1", "sub-2", "gen-1", "gen-2", "tank-1", "tank-2", "tank-3")
    assert "sprinkler-10" in summary.leaves
    assert "core-b4" in summary.leaves
    groups = {g.id: (g.required, g.size) for g in summary.redundancy_groups}
    assert groups["compute-core"] == (4, 8)
    assert groups["pumps-main-1"] == (2, 3)
    assert set(summary.single_points_of_failure) == set(city.single_points_of_failure())
    data = summary.to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["longest_lag"] == 96.0


def test_partners_are_the_other_members_of_redundancy_groups(city: DependencyGraph) -> None:
    assert city.partners("pump-1") == ["pump-2", "pump-3"]
    assert city.partners("sub-1") == []
    with pytest.raises(NotFoundError):
        city.partners("nowhere")


def test_parallel_providers_supply_one_dependant_with_the_same_thing(
    city: DependencyGraph,
) -> None:
    # pumps 4-6 pressurise main-2 together, declared redundant or not
    assert city.parallel("pump-5") == ["pump-4", "pump-6"]
    # a water main and a power board both feed a chiller: different supplies, not parallel
    assert "pdu-1" not in city.parallel("main-3")
    assert city.parallel("sub-1") == []
    with pytest.raises(NotFoundError):
        city.parallel("nowhere")


def test_reliant_dependants_have_no_parallel_provider_to_fall_back_on(
    city: DependencyGraph,
) -> None:
    # feeder-8 powers ups-2, pump-8 and fan-8; the UPS also runs from gen-2
    assert city.dependants("feeder-8") == ["ups-2", "pump-8", "fan-8"]
    assert city.reliant("feeder-8") == ["pump-8", "fan-8"]
    # the pump also draws water from tank-3: another supply, not a fallback for power
    assert "pump-8" in city.reliant("feeder-8")
    # main-3 is pressurised by pumps 7 and 8 together
    assert city.reliant("pump-8") == []
    assert city.reliant("sprinkler-1") == []
    with pytest.raises(NotFoundError):
        city.reliant("nowhere")
