"""Cross-reference checks of a site: everything a field-by-field schema cannot see.

`cross_check(site)` returns every issue, each with the field path it is about, so that the loader
can turn paths into lines. `Site`'s own validator runs it, which keeps the invariant that a `Site`
object never holds a dangling reference: code downstream (the graph, the simulator) may index by
id without checking.

Dependency cycles are physically possible (a pump powering the generator that feeds it) and are
therefore not errors; the graph summary lists them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from safety_nexus.core.errors import ConfigError, ConfigIssue

if TYPE_CHECKING:
    from safety_nexus.site.schema import Directive, Setpoint, Site, Source


class CrossReferenceError(ConfigError, ValueError):
    """Raised by `Site`'s validator. A `ValueError` too, because that is what pydantic collects
    from validators; the loader unwraps `issues` again so each one keeps its own path and line."""


def cross_check(site: Site) -> list[ConfigIssue]:
    """Every cross-reference problem of `site`, in document order."""
    issues: list[ConfigIssue] = []
    issues += _duplicates("subsystem", "subsystems", (s.id for s in site.subsystems))
    issues += _duplicates("asset", "assets", (a.id for a in site.assets))
    for i, asset in enumerate(site.assets):
        issues += _duplicates(
            "signal", f"assets[{i}].signals", (s.name for s in asset.signals), "name"
        )
    issues += _duplicates(
        "redundancy group", "redundancy_groups", (g.id for g in site.redundancy_groups)
    )
    issues += _duplicates("failsafe", "failsafes", (f.id for f in site.failsafes))
    issues += _duplicates("source", "sources", (s.id for s in site.sources))
    issues += _duplicates("setpoint", "setpoints", (s.id for s in site.setpoints))
    issues += _duplicates("directive", "directives", (d.id for d in site.directives))
    issues += _assets(site)
    issues += _dependencies(site)
    issues += _redundancy(site)
    issues += _failsafes(site)
    issues += _forecasts(site)
    issues += _measures(site)
    issues += _sources(site)
    issues += _controls(site)
    return issues


def _duplicates(
    what: str, path: str, ids: Iterable[str], field: str = "id"
) -> Iterator[ConfigIssue]:
    first: dict[str, int] = {}
    for i, ident in enumerate(ids):
        if ident in first:
            yield ConfigIssue(
                f"{path}[{i}].{field}",
                f"duplicate {what} '{ident}' (first at {path}[{first[ident]}])",
            )
        else:
            first[ident] = i


def _assets(site: Site) -> Iterator[ConfigIssue]:
    subsystems = {s.id for s in site.subsystems}
    used: set[str] = set()
    for i, asset in enumerate(site.assets):
        used.add(asset.subsystem)
        if asset.subsystem not in subsystems:
            yield ConfigIssue(
                f"assets[{i}].subsystem",
                f"asset '{asset.id}' refers to unknown subsystem '{asset.subsystem}'",
            )
    for i, subsystem in enumerate(site.subsystems):
        if subsystem.id not in used:
            yield ConfigIssue(f"subsystems[{i}]", f"subsystem '{subsystem.id}' has no assets")


def _dependencies(site: Site) -> Iterator[ConfigIssue]:
    assets = {a.id for a in site.assets}
    seen: dict[tuple[str, str, str], int] = {}
    for i, dep in enumerate(site.dependencies):
        path = f"dependencies[{i}]"
        for role, ident in (("provider", dep.provider), ("dependant", dep.dependant)):
            if ident not in assets:
                yield ConfigIssue(f"{path}.{role}", f"unknown {role} asset '{ident}'")
        if dep.provider == dep.dependant:
            yield ConfigIssue(f"{path}.dependant", f"asset '{dep.provider}' depends on itself")
        # The same pair may be linked by two kinds (power and data); only a repeated kind is a
        # mistake, and usually a copy-paste one.
        key = (dep.provider, dep.dependant, dep.kind.value)
        if key in seen:
            yield ConfigIssue(
                path,
                f"duplicate dependency {dep.provider} -> {dep.dependant} ({dep.kind.value}), "
                f"first at dependencies[{seen[key]}]",
            )
        else:
            seen[key] = i


def _redundancy(site: Site) -> Iterator[ConfigIssue]:
    assets = {a.id for a in site.assets}
    for i, group in enumerate(site.redundancy_groups):
        listed: set[str] = set()
        for j, member in enumerate(group.members):
            path = f"redundancy_groups[{i}].members[{j}]"
            if member not in assets:
                yield ConfigIssue(
                    path, f"redundancy group '{group.id}' refers to unknown asset '{member}'"
                )
            if member in listed:
                yield ConfigIssue(
                    path, f"asset '{member}' is listed twice in redundancy group '{group.id}'"
                )
            listed.add(member)


def _signal_ids(site: Site) -> dict[str, set[str]]:
    return {a.id: {s.name for s in a.signals} for a in site.assets}


def _failsafes(site: Site) -> Iterator[ConfigIssue]:
    signals = _signal_ids(site)
    for i, failsafe in enumerate(site.failsafes):
        path = f"failsafes[{i}]"
        signal = failsafe.when.signal
        asset, dot, name = signal.partition(".")
        if not dot or not name:
            yield ConfigIssue(
                f"{path}.when.signal", f"signal '{signal}' is not of the form 'asset.name'"
            )
        elif asset not in signals:
            yield ConfigIssue(
                f"{path}.when.signal", f"signal '{signal}' refers to unknown asset '{asset}'"
            )
        elif name not in signals[asset]:
            yield ConfigIssue(f"{path}.when.signal", f"asset '{asset}' has no signal '{name}'")
        target = failsafe.action.target
        if target not in signals:
            yield ConfigIssue(
                f"{path}.action.target",
                f"failsafe '{failsafe.id}' acts on unknown asset '{target}'",
            )


def _forecasts(site: Site) -> Iterator[ConfigIssue]:
    signals = {f"{a.id}.{s.name}": s for a in site.assets for s in a.signals}
    for i, asset in enumerate(site.assets):
        for j, sig in enumerate(asset.signals):
            if sig.forecast_of is None:
                continue
            path = f"assets[{i}].signals[{j}].forecast_of"
            me, target = f"{asset.id}.{sig.name}", sig.forecast_of
            actual = signals.get(target)
            owner, dot, name = target.partition(".")
            if not dot or not name:
                yield ConfigIssue(path, f"signal '{target}' is not of the form 'asset.name'")
            elif actual is None:
                why = f"signal '{target}' refers to unknown asset '{owner}'"
                if any(a.id == owner for a in site.assets):
                    why = f"asset '{owner}' has no signal '{name}'"
                yield ConfigIssue(path, f"forecast '{me}': {why}")
            elif target == me:
                yield ConfigIssue(path, f"signal '{me}' is a forecast of itself")
            elif actual.forecast_of is not None:
                yield ConfigIssue(
                    path, f"'{me}' is a forecast of '{target}', which is a forecast itself"
                )
            elif actual.unit != sig.unit:
                yield ConfigIssue(
                    path,
                    f"forecast '{me}' is in '{sig.unit}' but '{target}' in '{actual.unit}'",
                )


def _measures(site: Site) -> Iterator[ConfigIssue]:
    first: dict[str, tuple[str, str]] = {}  # quantity -> (signal id, unit) of its first sensor
    count: dict[str, int] = {}
    where: dict[str, str] = {}
    for i, asset in enumerate(site.assets):
        for j, sig in enumerate(asset.signals):
            if sig.measures is None:
                continue
            key, me = sig.measures, f"{asset.id}.{sig.name}"
            path = f"assets[{i}].signals[{j}].measures"
            count[key] = count.get(key, 0) + 1
            if key not in first:
                first[key] = (me, sig.unit)
                where[key] = path
            elif sig.unit != first[key][1]:
                other, unit = first[key]
                yield ConfigIssue(
                    path,
                    f"signal '{me}' measures '{key}' in '{sig.unit}' but '{other}' in '{unit}'",
                )
    for key, n in count.items():
        if n < 2:
            yield ConfigIssue(
                where[key],
                f"quantity '{key}' is measured by '{first[key][0]}' only"
                " (redundant sensors need at least two signals)",
            )


def _sources(site: Site) -> Iterator[ConfigIssue]:
    ids = [f"{asset}.{name}" for asset, names in _signal_ids(site).items() for name in names]
    for i, source in enumerate(site.sources):
        if source.auth is not None and source.kind != "http":
            # Only batches POSTed over HTTP carry the signature headers (see ingest.auth).
            yield ConfigIssue(
                f"sources[{i}].auth", f"source '{source.id}': 'auth' is only for http sources"
            )
        yield from _source_connection(i, source)
        known = set(ids)
        for name, target in source.map.items():
            if target not in known:
                yield ConfigIssue(
                    f"sources[{i}].map", f"'{name}' maps to unknown signal '{target}'"
                )
        for j, pattern in enumerate(source.signals):
            # A pattern that matches nothing is almost always a typo that would silently leave
            # the source's data rejected as unregistered.
            if not any(fnmatchcase(ident, pattern) for ident in ids):
                yield ConfigIssue(
                    f"sources[{i}].signals[{j}]", f"pattern '{pattern}' matches no signal"
                )


def _source_connection(i: int, source: Source) -> Iterator[ConfigIssue]:
    """What a subscribing source needs before it can connect."""
    where = f"sources[{i}]"
    if source.kind in ("mqtt", "opcua"):
        scheme = "mqtt://" if source.kind == "mqtt" else "opc.tcp://"
        if source.url is None:
            yield ConfigIssue(f"{where}.url", f"an {source.kind} source needs a 'url'")
        elif not source.url.startswith(scheme):
            yield ConfigIssue(f"{where}.url", f"'{source.url}' is not a {scheme}host:port address")
    elif source.url is not None:
        yield ConfigIssue(f"{where}.url", f"a {source.kind} source takes no 'url'")
    if source.kind == "mqtt" and not source.topics:
        yield ConfigIssue(f"{where}.topics", "an mqtt source needs at least one topic filter")
    if source.kind != "mqtt" and source.topics:
        yield ConfigIssue(f"{where}.topics", "only mqtt sources subscribe to topics")
    if source.kind == "mqtt":
        yield from _mqtt(where, source)
    elif source.payload != "json":
        yield ConfigIssue(f"{where}.payload", "only mqtt sources have a payload format")
    if source.kind == "opcua" and not source.map:
        yield ConfigIssue(f"{where}.map", "an opcua source needs a 'map' of node ids to signals")
    if source.kind == "prometheus" and not source.map:
        # Prometheus sends hundreds of series; without a map none is taken (ingest.remote_write)
        yield ConfigIssue(f"{where}.map", "a prometheus source needs a 'map' of series to signals")
    if source.kind == "prometheus":  # its series names are checked by ingest.remote_write
        for name, target in source.map.items():
            if not any(fnmatchcase(target, p) for p in source.signals):
                yield ConfigIssue(
                    f"{where}.map",
                    f"'{name}' maps to signal '{target}', outside the source's 'signals' patterns",
                )


def _mqtt_filter(topic: str) -> str | None:
    """Why `topic` is not a valid MQTT topic filter, or None when it is."""
    if not topic or "\0" in topic:
        return "a topic filter is a non-empty string"
    levels = topic.split("/")
    for n, level in enumerate(levels):
        if "#" in level and (level != "#" or n != len(levels) - 1):
            return "'#' must be a whole level, and the last"
        if "+" in level and level != "+":
            return "'+' must be a whole level"
    return None


def _mqtt_matches(topic_filter: str, topic: str) -> bool:
    """Whether a (valid) topic filter matches a topic name."""
    want, have = topic_filter.split("/"), topic.split("/")
    for n, level in enumerate(want):
        if level == "#":
            return True
        if n >= len(have) or (level != "+" and level != have[n]):
            return False
    return len(want) == len(have)


def _mqtt(where: str, source: Source) -> Iterator[ConfigIssue]:
    """An mqtt source: its address, its topic filters, and map keys its payload can produce."""
    if source.url is not None and source.url.startswith("mqtt://"):
        try:
            parts = urlsplit(source.url)
            port = parts.port
        except ValueError:
            yield ConfigIssue(f"{where}.url", f"'{source.url}': the port is not 1 to 65535")
        else:
            if port == 0:
                yield ConfigIssue(f"{where}.url", f"'{source.url}': the port is not 1 to 65535")
            elif not parts.hostname or parts.path not in ("", "/") or parts.query:
                yield ConfigIssue(
                    f"{where}.url", f"'{source.url}' is not an mqtt://host[:port] address"
                )
    sparkplug = source.payload == "sparkplug"
    for j, topic in enumerate(source.topics):
        why = _mqtt_filter(topic)
        if why is not None:
            yield ConfigIssue(f"{where}.topics[{j}]", f"'{topic}': {why}")
        elif sparkplug and not topic.startswith("spBv1.0/"):
            yield ConfigIssue(
                f"{where}.topics[{j}]",
                f"'{topic}': a sparkplug source subscribes to topics under 'spBv1.0/'",
            )
    filters = [t for t in source.topics if _mqtt_filter(t) is None]
    for name, target in source.map.items():
        if sparkplug:
            # some ':' must end a "<group>/<node>[/<device>]" (ids and metric names may hold ':')
            splits = [name[:i].split("/") for i, c in enumerate(name[:-1]) if c == ":"]
            if not any(len(levels) in (2, 3) and all(levels) for levels in splits):
                yield ConfigIssue(
                    f"{where}.map",
                    f"'{name}' is not '<group>/<node>[/<device>]:<metric>' (a Sparkplug metric)",
                )
        elif "+" in name or "#" in name or not name:
            yield ConfigIssue(f"{where}.map", f"'{name}' is a topic filter, not a topic name")
        elif filters and not any(_mqtt_matches(f, name) for f in filters):
            yield ConfigIssue(
                f"{where}.map", f"topic '{name}' is not matched by any of the source's topics"
            )
        if not any(fnmatchcase(target, p) for p in source.signals):
            yield ConfigIssue(
                f"{where}.map",
                f"'{name}' maps to signal '{target}', outside the source's 'signals' patterns",
            )


def _signal_reference(signal: str, signals: dict[str, set[str]]) -> str | None:
    """Why `signal` does not name a declared signal, or None when it does."""
    asset, dot, name = signal.partition(".")
    if not dot or not name:
        return f"signal '{signal}' is not of the form 'asset.name'"
    if asset not in signals:
        return f"signal '{signal}' refers to unknown asset '{asset}'"
    if name not in signals[asset]:
        return f"asset '{asset}' has no signal '{name}'"
    return None


def _controls(site: Site) -> Iterator[ConfigIssue]:
    """Setpoints and directives: their assets, the signals that report them, their values.

    Ids are unique across both lists, because a change, its journal entries and its findings
    name the setpoint or directive by id alone. A signal reports one of them at most: two
    controls compared with one readback would contradict each other on every sample."""
    signals = _signal_ids(site)
    setpoints = {s.id: i for i, s in enumerate(site.setpoints)}
    reported: dict[str, str] = {}  # signal -> the control it reports
    controls: list[tuple[str, str, Setpoint | Directive]] = [
        ("setpoint", f"setpoints[{i}]", c) for i, c in enumerate(site.setpoints)
    ]
    controls += [("directive", f"directives[{i}]", c) for i, c in enumerate(site.directives)]
    for what, path, control in controls:
        if control.asset not in signals:
            yield ConfigIssue(
                f"{path}.asset",
                f"{what} '{control.id}' refers to unknown asset '{control.asset}'",
            )
        if control.signal is None:
            continue
        why = _signal_reference(control.signal, signals)
        if why is not None:
            yield ConfigIssue(f"{path}.signal", why)
        elif control.signal in reported:
            yield ConfigIssue(
                f"{path}.signal",
                f"signal '{control.signal}' already reports {reported[control.signal]}",
            )
        else:
            reported[control.signal] = f"{what} '{control.id}'"
    for i, setpoint in enumerate(site.setpoints):
        span = setpoint.range
        if span is not None and not span.low <= setpoint.value <= span.high:
            yield ConfigIssue(
                f"setpoints[{i}].value",
                f"value {setpoint.value:g} of setpoint '{setpoint.id}' is outside its range"
                f" [{span.low:g}, {span.high:g}]",
            )
    for i, directive in enumerate(site.directives):
        path = f"directives[{i}]"
        if directive.id in setpoints:
            yield ConfigIssue(
                f"{path}.id",
                f"directive '{directive.id}' has the id of setpoints[{setpoints[directive.id]}]",
            )
        listed: set[str] = set()
        for j, state in enumerate(directive.states):
            if state in listed:
                yield ConfigIssue(
                    f"{path}.states[{j}]",
                    f"state '{state}' is listed twice in directive '{directive.id}'",
                )
            listed.add(state)
        if directive.value not in listed:
            yield ConfigIssue(
                f"{path}.value",
                f"'{directive.value}' is not one of the states of directive '{directive.id}'"
                f" ({', '.join(directive.states)})",
            )
