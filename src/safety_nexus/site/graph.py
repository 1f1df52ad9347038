"""The dependency graph of a site: which asset's trouble reaches which, and how fast.

Edges point the way trouble flows, from provider to dependant, and carry the dependency's `kind`
and `lag` (seconds). Two dependencies between the same pair (say power and control) become one
edge whose `lag` and `kind` are those of the faster one and whose `kinds` lists all of them,
because every question asked here is about the earliest arrival. Nodes carry `subsystem`, `type`
and `criticality` (the highest of the asset's and its signals').

    >>> from safety_nexus.site.load import load_file
    >>> graph = DependencyGraph(load_file("sites/demo-city.yaml"))
    >>> graph.downstream("sub-1")["pump-1"]
    1.5
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import networkx as nx

from safety_nexus.core.errors import NotFoundError
from safety_nexus.core.types import Criticality
from safety_nexus.site.schema import Site

__all__ = ["DependencyGraph", "GraphSummary", "RedundancySummary"]


@dataclass(frozen=True, slots=True)
class RedundancySummary:
    id: str
    members: tuple[str, ...]
    required: int  # k: members that must be healthy
    size: int  # n


@dataclass(frozen=True, slots=True)
class GraphSummary:
    """Counts and structure of a site's dependency graph, as shown by `nexus site graph`."""

    assets: int
    edges: int  # distinct provider -> dependant pairs
    dependencies: int  # as declared; can exceed `edges` when a pair has several kinds
    assets_by_subsystem: Mapping[str, int]
    assets_by_type: Mapping[str, int]
    dependencies_by_kind: Mapping[str, int]
    dependencies_by_subsystem: Mapping[str, int]  # "power -> water": count
    roots: tuple[str, ...]  # assets that depend on nothing
    leaves: tuple[str, ...]  # assets nothing depends on
    longest_lag: float  # seconds; see `DependencyGraph.longest_lag_path`
    longest_lag_path: tuple[str, ...]
    cycles: tuple[tuple[str, ...], ...]
    single_points_of_failure: Mapping[str, tuple[str, ...]]  # asset -> critical assets lost
    redundancy_groups: tuple[RedundancySummary, ...]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data: dicts, lists, strings and numbers."""
        data: dict[str, Any] = _plain(asdict(self))
        return data


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


class DependencyGraph:
    """A site's assets and dependencies on a `networkx.DiGraph` (provider -> dependant).

    Results list assets in a stable order: by arrival lag where there is one, otherwise in the
    order the site file declares them.
    """

    def __init__(self, site: Site) -> None:
        self.site = site
        self._order: dict[str, int] = {a.id: i for i, a in enumerate(site.assets)}
        graph = nx.DiGraph()
        for asset in site.assets:
            criticality = max(
                [asset.criticality, *(s.criticality for s in asset.signals if s.criticality)],
                key=lambda c: c.rank,
            )
            graph.add_node(
                asset.id, subsystem=asset.subsystem, type=asset.type, criticality=criticality
            )
        for dep in site.dependencies:
            kind = dep.kind.value
            if graph.has_edge(dep.provider, dep.dependant):
                edge = graph.edges[dep.provider, dep.dependant]
                edge["kinds"] = (*edge["kinds"], kind)
                if dep.lag < edge["lag"]:
                    edge["lag"], edge["kind"] = dep.lag, kind
            else:
                graph.add_edge(dep.provider, dep.dependant, kind=kind, lag=dep.lag, kinds=(kind,))
        self._graph = graph
        self._groups: dict[str, tuple[str, ...]] = {
            g.id: tuple(g.members) for g in site.redundancy_groups
        }
        self._required: dict[str, int] = {g.id: g.required for g in site.redundancy_groups}
        self._groups_of: dict[str, list[str]] = {a: [] for a in self._order}
        for gid, members in self._groups.items():
            for member in members:
                self._groups_of[member].append(gid)

    @property
    def graph(self) -> Any:
        """The underlying `networkx.DiGraph`. Shared, not copied: do not modify it."""
        return self._graph

    @property
    def assets(self) -> tuple[str, ...]:
        return tuple(self._order)

    def criticality(self, asset: str) -> Criticality:
        self._check(asset)
        value: Criticality = self._graph.nodes[asset]["criticality"]
        return value

    def lag(self, provider: str, dependant: str) -> float:
        """The lag of the direct dependency `provider -> dependant` (the faster, if several)."""
        self._check(provider)
        self._check(dependant)
        if not self._graph.has_edge(provider, dependant):
            raise NotFoundError(f"no dependency '{provider}' -> '{dependant}'")
        return float(self._graph.edges[provider, dependant]["lag"])

    def providers(self, asset: str) -> list[str]:
        """Assets `asset` directly depends on."""
        self._check(asset)
        return self._sorted(self._graph.predecessors(asset))

    def dependants(self, asset: str) -> list[str]:
        """Assets that directly depend on `asset`."""
        self._check(asset)
        return self._sorted(self._graph.successors(asset))

    def partners(self, asset: str) -> list[str]:
        """The other members of every redundancy group `asset` belongs to: the assets that take
        over its duty when it fails."""
        self._check(asset)
        return self._sorted(
            {m for g in self._groups_of[asset] for m in self._groups[g] if m != asset}
        )

    def parallel(self, asset: str) -> list[str]:
        """The assets that supply a dependant of `asset` with what `asset` supplies it (the
        same kind of dependency): parallel providers share that dependant's load, so one of
        them failing shifts its share onto the others, declared redundant or not."""
        self._check(asset)
        out = {o for d in self._graph.successors(asset) for o in self._alongside(asset, d)}
        return self._sorted(out)

    def reliant(self, asset: str) -> list[str]:
        """The direct dependants that nothing else supplies with what `asset` supplies them:
        those `asset` failing leaves short (the others have a parallel provider to fall back
        on)."""
        self._check(asset)
        out = [d for d in self._graph.successors(asset) if not self._alongside(asset, d)]
        return self._sorted(out)

    def _alongside(self, asset: str, dependant: str) -> list[str]:
        """The other providers of `dependant` that supply it with what `asset` does."""
        kinds = set(self._graph.edges[asset, dependant]["kinds"])
        return [
            other
            for other in self._graph.predecessors(dependant)
            if other != asset and kinds & set(self._graph.edges[other, dependant]["kinds"])
        ]

    def downstream(self, asset: str) -> dict[str, float]:
        """Every asset that depends on `asset`, directly or not, with the earliest time trouble
        at `asset` can arrive there: the shortest cumulative lag over all paths. `asset` itself
        is left out, even when it sits on a cycle."""
        self._check(asset)
        return self._reach(self._graph, asset)

    def upstream(self, asset: str) -> dict[str, float]:
        """Every asset `asset` depends on, directly or not, with the shortest cumulative lag from
        it to `asset`: the candidates for a root cause, the likeliest first."""
        self._check(asset)
        return self._reach(self._graph.reverse(copy=False), asset)

    def lag_path(self, provider: str, dependant: str) -> list[str]:
        """The route by which trouble at `provider` reaches `dependant` first."""
        self._check(provider)
        self._check(dependant)
        try:
            path: list[str] = nx.dijkstra_path(self._graph, provider, dependant, weight="lag")
        except nx.NetworkXNoPath as err:
            raise NotFoundError(f"'{dependant}' does not depend on '{provider}'") from err
        return path

    def cycles(self) -> list[list[str]]:
        """Every elementary dependency cycle, each starting at its first asset in file order.

        Cycles are legal (a pump that cools the generator powering it); they matter because
        trouble on one feeds itself."""
        found = []
        for cycle in nx.simple_cycles(self._graph):
            start = min(range(len(cycle)), key=lambda i: self._order[cycle[i]])
            found.append([*cycle[start:], *cycle[:start]])
        found.sort(key=lambda c: (len(c), [self._order[a] for a in c]))
        return found

    def cascade(self, asset: str) -> list[str]:
        """The assets that fail when `asset` fails, in file order, `asset` excluded.

        Failure flows along dependencies with one exception: a redundancy group absorbs the
        failure of its members while at least `required` of them are still healthy. So the loss
        of pump-1 does not reach main-1 while pump-2 and pump-3 run, but the loss of all three
        does. Groups are taken at their word: while a group holds, none of its failed members
        pass their failure on, whichever dependant they feed.
        """
        self._check(asset)
        failed, _ = self._fail(asset)
        return self._sorted(failed - {asset})

    def single_points_of_failure(self) -> dict[str, list[str]]:
        """Assets whose failure alone costs the site a critical asset, with the critical assets
        lost (in file order).

        A critical asset (criticality "critical" on the asset or one of its signals) counts as
        lost when `cascade` reaches it and it is not covered by a redundancy group that still
        holds: losing four compute nodes of a 4-of-8 group loses no critical function. An asset
        that is itself covered by a group that survives its loss is never a single point of
        failure; a critical asset's failure of itself is not counted.
        """
        result: dict[str, list[str]] = {}
        for asset in self._order:
            failed, exposed = self._fail(asset)
            lost = [
                a
                for a in self._sorted(failed)
                if a != asset and a in exposed and self.criticality(a) is Criticality.CRITICAL
            ]
            if lost:
                result[asset] = lost
        return result

    def longest_lag_path(self) -> tuple[float, list[str]]:
        """The slowest cascade: the pair of assets for which trouble takes longest to arrive,
        each along its fastest route, with that route. This is the horizon within which a
        cascade must be seen to be ahead of it; unlike the longest simple path it is well defined
        on graphs with cycles."""
        best = (0.0, -1, -1)
        best_path: list[str] = []
        for source, (lags, paths) in nx.all_pairs_dijkstra(self._graph, weight="lag"):
            for target, lag in lags.items():
                key = (float(lag), -self._order[source], -self._order[target])
                if target != source and key > best:
                    best, best_path = key, list(paths[target])
        return best[0], best_path

    def summary(self, max_cycles: int = 50) -> GraphSummary:
        """What `nexus site graph` shows. At most `max_cycles` cycles are listed."""
        site = self.site
        subsystem_of = {a.id: a.subsystem for a in site.assets}
        cross = Counter(
            f"{subsystem_of[d.provider]} -> {subsystem_of[d.dependant]}" for d in site.dependencies
        )
        longest, path = self.longest_lag_path()
        spofs = self.single_points_of_failure()
        return GraphSummary(
            assets=self._graph.number_of_nodes(),
            edges=self._graph.number_of_edges(),
            dependencies=len(site.dependencies),
            assets_by_subsystem=dict(Counter(a.subsystem for a in site.assets)),
            assets_by_type=dict(Counter(a.type for a in site.assets)),
            dependencies_by_kind=dict(Counter(d.kind.value for d in site.dependencies)),
            dependencies_by_subsystem=dict(cross),
            roots=tuple(a for a in self._order if self._graph.in_degree(a) == 0),
            leaves=tuple(a for a in self._order if self._graph.out_degree(a) == 0),
            longest_lag=longest,
            longest_lag_path=tuple(path),
            cycles=tuple(tuple(c) for c in self.cycles()[:max_cycles]),
            single_points_of_failure={a: tuple(lost) for a, lost in spofs.items()},
            redundancy_groups=tuple(
                RedundancySummary(g.id, tuple(g.members), g.required, len(g.members))
                for g in site.redundancy_groups
            ),
        )

    def _fail(self, asset: str) -> tuple[set[str], set[str]]:
        """Propagate the failure of `asset`: (failed assets, failed assets not covered by a
        holding group, i.e. those passing their failure on)."""
        healthy = {gid: len(members) for gid, members in self._groups.items()}
        down: set[str] = set()
        failed: set[str] = set()
        exposed: set[str] = set()
        pending = [asset]
        while pending:
            node = pending.pop()
            if node in failed:
                continue
            failed.add(node)
            recheck = [node]
            for gid in self._groups_of[node]:
                healthy[gid] -= 1
                if healthy[gid] < self._required[gid] and gid not in down:
                    # The group no longer holds: its failed members now pass their failure on.
                    down.add(gid)
                    recheck += [m for m in self._groups[gid] if m in failed]
            for member in recheck:
                groups = self._groups_of[member]
                if member not in exposed and (not groups or any(g in down for g in groups)):
                    exposed.add(member)
                    pending += [d for d in self._graph.successors(member) if d not in failed]
        return failed, exposed

    def _reach(self, graph: Any, asset: str) -> dict[str, float]:
        lags = nx.single_source_dijkstra_path_length(graph, asset, weight="lag")
        ordered = sorted(
            ((float(lag), self._order[a], a) for a, lag in lags.items() if a != asset),
        )
        return {a: lag for lag, _, a in ordered}

    def _sorted(self, assets: Iterable[str]) -> list[str]:
        return sorted(assets, key=self._order.__getitem__)

    def _check(self, asset: str) -> None:
        if asset not in self._order:
            raise NotFoundError(f"unknown asset '{asset}'")
