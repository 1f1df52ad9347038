#!/usr/bin/env python3
"""Write `sites/demo-city.yaml` from the catalogue in `docs/demo-city.md`.

The catalogue is the contract shared by the site file and the simulator, so the file is generated
from tables that mirror the document row by row rather than edited by hand: 76 assets with 342
signals are too many to keep consistent otherwise. The output is hand-formatted (one asset per
block, signals in flow style) because PyYAML's dumper cannot mix block and flow styles readably.

    python scripts/gen_demo_city.py            # write the file
    python scripts/gen_demo_city.py --check    # exit 1 if the file is not up to date
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "sites" / "demo-city.yaml"


@dataclass(frozen=True)
class Sig:
    name: str
    unit: str
    normal: tuple[float, float]
    limits: tuple[float, float]
    period: float = 1.0
    description: str = ""
    # Cross-signal declarations, "{asset}" standing for the asset's id: the signal this one is a
    # forecast of, and the quantity it is a redundant sensor of.
    forecast_of: str = ""
    measures: str = ""


@dataclass(frozen=True)
class Kind:
    """One row of the "asset types and their signals" table."""

    type: str
    subsystem: str
    label: str  # human name prefix: "Pump" -> "Pump 3"
    criticality: str
    signals: tuple[Sig, ...]


SUBSYSTEMS = (
    ("power", "Power grid"),
    ("water", "Water and fire suppression"),
    ("tunnels", "Tunnel ventilation and atmosphere"),
    ("compute", "Compute core"),
)

SUBSTATION = Kind(
    "substation",
    "power",
    "Substation",
    "high",
    (
        Sig("voltage", "kV", (10.8, 11.2), (10, 12)),
        Sig("frequency", "Hz", (49.9, 50.1), (49.5, 50.5)),
        Sig("load", "MW", (20, 60), (0, 90)),
        Sig("load_forecast_a", "MW", (20, 60), (0, 90), 60, forecast_of="{asset}.load"),
        Sig("load_forecast_b", "MW", (20, 60), (0, 90), 60, forecast_of="{asset}.load"),
        Sig("transformer_temp", "°C", (40, 75), (0, 95), 10),
    ),
)
FEEDER = Kind(
    "feeder",
    "power",
    "Feeder",
    "high",
    (
        Sig("voltage", "kV", (10.7, 11.2), (10, 12)),
        Sig("current", "A", (100, 400), (0, 600)),
        Sig("power_factor", "", (0.9, 1.0), (0.7, 1.0)),
        Sig("temperature", "°C", (20, 60), (0, 90), 10),
    ),
)
UPS = Kind(
    "ups",
    "power",
    "UPS",
    "medium",
    (
        Sig("charge", "%", (90, 100), (20, 100), 10),
        Sig("output_voltage", "V", (225, 235), (207, 253)),
        Sig("load", "kW", (10, 80), (0, 120)),
    ),
)
GENERATOR = Kind(
    "generator",
    "power",
    "Generator",
    "medium",
    (
        Sig("fuel", "%", (60, 100), (10, 100), 60),
        Sig("battery", "V", (12.4, 13.2), (11.5, 14.5), 10),
        Sig("coolant_temp", "°C", (20, 45), (0, 110), 10),
        Sig("mode", "", (0, 0.5), (0, 2), 10, "control mode in effect: 0 auto, 1 manual, 2 off"),
    ),
)
TANK = Kind(
    "tank",
    "water",
    "Tank",
    "medium",
    (
        Sig("level", "m", (3, 8), (0.5, 9.5), 10),
        Sig("inflow", "L/s", (0, 200), (0, 300)),
        Sig("outflow", "L/s", (0, 200), (0, 300)),
    ),
)
PUMP = Kind(
    "pump",
    "water",
    "Pump",
    "high",
    (
        Sig("pressure", "bar", (4, 6), (2, 8)),
        Sig("flow", "L/s", (20, 60), (0, 90)),
        Sig("current", "A", (30, 60), (0, 90)),
        Sig("vibration", "mm/s", (0.5, 3), (0, 7.1)),
        Sig("speed", "rpm", (1400, 1500), (0, 1800)),
        Sig(
            "pressure_setpoint",
            "bar",
            (4.5, 5.5),
            (2, 8),
            10,
            "discharge pressure setpoint in effect (the drive's readback)",
        ),
    ),
)
MAIN = Kind(
    "main",
    "water",
    "Water main",
    "high",
    (
        Sig("pressure", "bar", (3.5, 5.5), (2, 8)),
        Sig("flow", "L/s", (50, 200), (0, 300)),
    ),
)
SPRINKLER = Kind(
    "sprinkler-zone",
    "water",
    "Sprinkler zone",
    "critical",
    (
        Sig("pressure", "bar", (3, 5), (1.5, 7)),
        Sig("response_time", "s", (2, 4), (0, 10), 10),
        Sig("valve", "%", (0, 5), (0, 100)),
    ),
)
FAN = Kind(
    "fan",
    "tunnels",
    "Fan",
    "high",
    (
        Sig("speed", "rpm", (900, 1100), (0, 1500)),
        Sig("current", "A", (40, 80), (0, 120)),
        Sig("vibration", "mm/s", (0.5, 3), (0, 7.1)),
        Sig("airflow", "m³/s", (80, 120), (0, 200)),
    ),
)
TUNNEL = Kind(
    "tunnel-section",
    "tunnels",
    "Tunnel section",
    "critical",
    (
        Sig("pressure_a", "Pa", (20, 60), (-50, 150), measures="{asset}-pressure"),
        Sig("pressure_b", "Pa", (20, 60), (-50, 150), measures="{asset}-pressure"),
        Sig("co", "ppm", (2, 25), (0, 100)),
        Sig("no2", "ppm", (0.02, 0.3), (0, 1)),
        Sig("opacity", "1/km", (0.5, 3), (0, 9)),
        Sig("temperature", "°C", (10, 30), (-10, 60)),
        Sig("air_velocity", "m/s", (1, 4), (0, 12)),
    ),
)
PDU = Kind(
    "pdu",
    "compute",
    "PDU",
    "medium",
    (
        Sig("voltage", "V", (225, 235), (207, 253)),
        Sig("current", "A", (100, 300), (0, 400)),
    ),
)
CHILLER = Kind(
    "chiller",
    "compute",
    "Chiller",
    "high",
    (
        Sig("supply_temp", "°C", (6, 9), (2, 14)),
        Sig("return_temp", "°C", (11, 16), (5, 25)),
        Sig("flow", "L/s", (20, 40), (0, 60)),
        Sig("power", "kW", (50, 150), (0, 250)),
        Sig(
            "supply_setpoint",
            "°C",
            (6, 9),
            (2, 14),
            10,
            "supply temperature setpoint in effect (the controller's readback)",
        ),
    ),
)


def _compute_node(utilisation: tuple[float, float]) -> Kind:
    # Active and standby nodes differ only in their normal utilisation.
    return Kind(
        "compute-node",
        "compute",
        "Compute node",
        "critical",
        (
            Sig("cpu_temp", "°C", (45, 70), (10, 90)),
            Sig("inlet_temp", "°C", (18, 27), (10, 35)),
            Sig("job_latency", "ms", (80, 150), (0, 500)),
            Sig("utilisation", "%", utilisation, (0, 100)),
            Sig("power", "kW", (5, 15), (0, 25)),
            Sig("fan_speed", "rpm", (3000, 6000), (0, 12000)),
        ),
    )


NODE_ACTIVE = _compute_node((30, 80))
NODE_STANDBY = _compute_node((0, 30))
SWITCH = Kind(
    "switch",
    "compute",
    "Switch",
    "medium",
    (
        Sig("throughput", "Gb/s", (5, 40), (0, 100)),
        Sig("packet_loss", "%", (0, 0.01), (0, 1)),
        Sig("latency", "ms", (0.1, 0.5), (0, 5)),
    ),
)


def _r(prefix: str, lo: int, hi: int) -> list[str]:
    return [f"{prefix}{i}" for i in range(lo, hi + 1)]


# (kind, ids, standby ids) in the order of the document's table, which is also file order and
# therefore the column order of every telemetry frame.
ASSETS: tuple[tuple[Kind, list[str], set[str]], ...] = (
    (SUBSTATION, ["sub-1", "sub-2"], set()),
    (FEEDER, _r("feeder-", 1, 10), set()),
    (UPS, ["ups-1", "ups-2"], set()),
    (GENERATOR, ["gen-1", "gen-2"], {"gen-2"}),
    (TANK, _r("tank-", 1, 3), set()),
    (PUMP, _r("pump-", 1, 10), set()),
    (MAIN, _r("main-", 1, 4), set()),
    (SPRINKLER, _r("sprinkler-", 1, 10), set()),
    (FAN, _r("fan-", 1, 10), {"fan-9", "fan-10"}),
    (TUNNEL, _r("tunnel-", 1, 8), set()),
    (PDU, ["pdu-1", "pdu-2"], set()),
    (CHILLER, _r("chiller-", 1, 3), set()),
    (NODE_ACTIVE, _r("core-a", 1, 4), set()),
    (NODE_STANDBY, _r("core-b", 1, 4), {"core-b1", "core-b2", "core-b3", "core-b4"}),
    (SWITCH, ["switch-1", "switch-2"], set()),
)

Edge = tuple[str, str]


def _fan_out(providers: list[str], dependants: list[str]) -> list[Edge]:
    return [(p, d) for p in providers for d in dependants]


def _pairs(providers: list[str], dependants: list[str]) -> list[Edge]:
    return list(zip(providers, dependants, strict=True))


# (comment, kind, lag, edges): one entry per line of the document's wiring list.
WIRING: tuple[tuple[str, str, float, list[Edge]], ...] = (
    (
        "substations feed the feeders",
        "power",
        0.5,
        _fan_out(["sub-1"], _r("feeder-", 1, 5)) + _fan_out(["sub-2"], _r("feeder-", 6, 10)),
    ),
    (
        "feeder-k powers pump-k and fan-k",
        "power",
        1,
        _pairs(_r("feeder-", 1, 10), _r("pump-", 1, 10))
        + _pairs(_r("feeder-", 1, 10), _r("fan-", 1, 10)),
    ),
    (
        "tanks supply the pumps",
        "water",
        0,
        _fan_out(["tank-1"], _r("pump-", 1, 4))
        + _fan_out(["tank-2"], _r("pump-", 5, 7))
        + _fan_out(["tank-3"], _r("pump-", 8, 10)),
    ),
    (
        "pumps pressurise the mains",
        "water",
        5,
        _fan_out(_r("pump-", 1, 3), ["main-1"])
        + _fan_out(_r("pump-", 4, 6), ["main-2"])
        + _fan_out(_r("pump-", 7, 8), ["main-3"])
        + _fan_out(_r("pump-", 9, 10), ["main-4"]),
    ),
    (
        "mains supply the sprinkler zones",
        "water",
        10,
        _fan_out(["main-1"], _r("sprinkler-", 1, 3))
        + _fan_out(["main-2"], _r("sprinkler-", 4, 6))
        + _fan_out(["main-3"], _r("sprinkler-", 7, 8))
        + _fan_out(["main-4"], _r("sprinkler-", 9, 10)),
    ),
    (
        "main-3 supplies make-up cooling water to the chillers",
        "water",
        30,
        _fan_out(["main-3"], _r("chiller-", 1, 3)),
    ),
    (
        "fans ventilate the tunnel sections; fan-9 and fan-10 are standby",
        "air",
        30,
        _pairs(_r("fan-", 1, 8), _r("tunnel-", 1, 8))
        + _fan_out(["fan-9"], _r("tunnel-", 1, 4))
        + _fan_out(["fan-10"], _r("tunnel-", 5, 8)),
    ),
    (
        "UPS units charge from a feeder and a generator",
        "power",
        0,
        [("feeder-7", "ups-1"), ("feeder-8", "ups-2"), ("gen-1", "ups-1"), ("gen-2", "ups-2")],
    ),
    (
        "PDUs draw from a feeder and a UPS",
        "power",
        0,
        [("feeder-9", "pdu-1"), ("feeder-10", "pdu-2"), ("ups-1", "pdu-1"), ("ups-2", "pdu-2")],
    ),
    (
        "PDUs power the chillers",
        "power",
        1,
        [("pdu-1", "chiller-1"), ("pdu-1", "chiller-2"), ("pdu-2", "chiller-3")],
    ),
    (
        "PDUs power the compute nodes and switches",
        "power",
        0,
        _fan_out(["pdu-1"], [*_r("core-a", 1, 4), "switch-1"])
        + _fan_out(["pdu-2"], [*_r("core-b", 1, 4), "switch-2"]),
    ),
    (
        "chillers cool the compute nodes",
        "water",
        60,
        _fan_out(["chiller-1", "chiller-2"], _r("core-a", 1, 4))
        + _fan_out(["chiller-2", "chiller-3"], _r("core-b", 1, 4)),
    ),
    (
        "switches connect the compute nodes",
        "data",
        0,
        _fan_out(["switch-1"], _r("core-a", 1, 4)) + _fan_out(["switch-2"], _r("core-b", 1, 4)),
    ),
)

REDUNDANCY: tuple[tuple[str, list[str], int], ...] = (
    ("pumps-main-1", _r("pump-", 1, 3), 2),
    ("chillers", _r("chiller-", 1, 3), 2),
    ("compute-core", _r("core-a", 1, 4) + _r("core-b", 1, 4), 4),
    ("ups", ["ups-1", "ups-2"], 1),
    ("fans-tunnel-1", ["fan-1", "fan-9"], 1),
)

# (id, signal, "above"/"below", value, for seconds, action, target, authority, description)
FAILSAFES: tuple[tuple[str, str, str, float, float, str, str, str, str], ...] = (
    (
        "core-failover",
        "core-a1.job_latency",
        "above",
        250,
        30,
        "failover",
        "core-b1",
        "confirm",
        "move the active core's jobs to the standby core when latency stays high",
    ),
    (
        "tunnel-1-co-extract",
        "tunnel-1.co",
        "above",
        50,
        30,
        "start",
        "fan-9",
        "automatic",
        "start the standby fan when carbon monoxide builds up in tunnel section 1",
    ),
    (
        "main-1-low-pressure",
        "main-1.pressure",
        "below",
        3.0,
        10,
        "start",
        "pump-3",
        "automatic",
        "start another pump when the sprinkler main loses pressure",
    ),
    (
        "core-a1-overtemp",
        "core-a1.cpu_temp",
        "above",
        85,
        10,
        "isolate",
        "core-a1",
        "two_person",
        "isolate an overheating compute node",
    ),
)

SOURCES: tuple[tuple[str, str, str], ...] = (
    ("sim", "simulator", "the built-in simulator of the demo city"),
    ("field-gateway", "http", "signed batches from the field gateway"),
)

# Setpoints and directives the operators authorise (changed only through the API; see
# control/config_integrity.py). Those with a readback signal (the pumps' and chillers'
# setpoints, the generators' modes: the simulator runs on them and reports them) are compared
# with what the controllers report; the others are tracked only.
# (id, asset, value, unit, range, tolerance, signal or "", description)
SETPOINTS: tuple[tuple[str, str, float, str, tuple[float, float], float, str, str], ...] = (
    *(
        (
            f"pump-{k}-pressure",
            f"pump-{k}",
            5.0,
            "bar",
            (4.0, 6.0),
            0.05,
            f"pump-{k}.pressure_setpoint",
            "discharge pressure the pump's drive holds",
        )
        for k in range(1, 11)
    ),
    *(
        (
            f"chiller-{k}-supply-temp",
            f"chiller-{k}",
            7.5,
            "°C",
            (6.0, 9.0),
            0.1,
            f"chiller-{k}.supply_setpoint",
            "chilled-water supply temperature",
        )
        for k in (1, 2, 3)
    ),
    (
        "main-1-pressure",
        "main-1",
        4.5,
        "bar",
        (3.5, 5.5),
        0.05,
        "",
        "pressure the pumps of main 1 hold for its sprinkler zones",
    ),
    ("tank-1-level", "tank-1", 5.5, "m", (3, 8), 0.05, "", "level the inflow controller holds"),
)
# (id, asset, states, value, signal or "", description)
DIRECTIVES: tuple[tuple[str, str, tuple[str, ...], str, str, str], ...] = (
    *(
        (
            f"gen-{k}-mode",
            f"gen-{k}",
            ("auto", "manual", "off"),
            "auto",
            f"gen-{k}.mode",
            "auto starts the generator when its UPS loses the grid; manual and off do not",
        )
        for k in (1, 2)
    ),
    (
        "fan-9-mode",
        "fan-9",
        ("auto", "manual", "off"),
        "auto",
        "",
        "the standby fan answers the tunnel-1 CO failsafe only in auto",
    ),
)

_PLAIN = re.compile(r"^[A-Za-z][A-Za-z0-9 _\-./()]*$")
_RESERVED = {"true", "false", "yes", "no", "on", "off", "null", "y", "n"}


def _str(value: str) -> str:
    """A YAML scalar that reads back as exactly this string."""
    if _PLAIN.match(value) and value.lower() not in _RESERVED and not value.endswith(" "):
        return value
    return json.dumps(value, ensure_ascii=False)


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _seconds(value: float) -> str:
    return f"{_num(value)}s"


def _signal(sig: Sig, asset_id: str) -> str:
    parts = [
        f"name: {sig.name}",
        f"unit: {_str(sig.unit)}",
        f"normal: [{_num(sig.normal[0])}, {_num(sig.normal[1])}]",
        f"limits: [{_num(sig.limits[0])}, {_num(sig.limits[1])}]",
    ]
    if sig.period != 1.0:
        parts.append(f"period: {_seconds(sig.period)}")
    if sig.description:
        parts.append(f"description: {_str(sig.description)}")
    if sig.forecast_of:
        parts.append(f"forecast_of: {sig.forecast_of.format(asset=asset_id)}")
    if sig.measures:
        parts.append(f"measures: {sig.measures.format(asset=asset_id)}")
    return "{" + ", ".join(parts) + "}"


def _asset_name(kind: Kind, asset_id: str, standby: bool) -> str:
    number = asset_id.rsplit("-", 1)[1].upper()
    return f"{kind.label} {number}" + (" (standby)" if standby else "")


def render() -> str:
    out: list[str] = [
        "# Generated by scripts/gen_demo_city.py from the catalogue in docs/demo-city.md.",
        "# Do not edit by hand: change the script (and the document), then run",
        "#   python scripts/gen_demo_city.py",
        "",
        "version: 1",
        "site:",
        "  name: Demo city",
        "  timezone: UTC",
        "  description: The demo city watched by Safety Nexus and modelled by its simulator.",
        "",
        "subsystems:",
    ]
    out += [f"  - {{id: {sid}, name: {_str(name)}}}" for sid, name in SUBSYSTEMS]

    out += ["", "# Signals: normal is the operating band, limits the hard limits, period the"]
    out += ["# expected time between samples (1s when not given)."]
    out.append("assets:")
    subsystem = ""
    for kind, ids, standby in ASSETS:
        if kind.subsystem != subsystem:
            subsystem = kind.subsystem
            out += ["", f"  # ---- {subsystem} " + "-" * (88 - len(subsystem))]
        for asset_id in ids:
            out += [
                "",
                f"  - id: {asset_id}",
                f"    subsystem: {kind.subsystem}",
                f"    type: {kind.type}",
                f"    name: {_str(_asset_name(kind, asset_id, asset_id in standby))}",
                f"    criticality: {kind.criticality}",
                "    signals:",
            ]
            out += [f"      - {_signal(sig, asset_id)}" for sig in kind.signals]

    out += ["", "# Trouble flows from provider to dependant after lag seconds.", "dependencies:"]
    for comment, dep_kind, lag, edges in WIRING:
        out += ["", f"  # {comment} ({dep_kind}, {_seconds(lag)})"]
        out += [
            f"  - {{provider: {p}, dependant: {d}, kind: {dep_kind}, lag: {_seconds(lag)}}}"
            for p, d in edges
        ]

    out += ["", "# required of the members must be healthy for the group to do its job."]
    out.append("redundancy_groups:")
    out += [
        f"  - {{id: {gid}, members: [{', '.join(members)}], required: {k}}}"
        for gid, members, k in REDUNDANCY
    ]

    out += ["", "failsafes:"]
    for fid, signal, side, value, hold, do, target, authority, description in FAILSAFES:
        out += [
            f"  - id: {fid}",
            f"    when: {{signal: {signal}, {side}: {_num(value)}, for: {_seconds(hold)}}}",
            f"    action: {{do: {do}, target: {target}}}",
            f"    authority: {authority}",
            f"    description: {_str(description)}",
        ]

    out += ["", "# Authorised at start; changed through the API only (PUT /api/v1/setpoints/<id>)."]
    out.append("setpoints:")
    for sid, asset, value, unit, (lo, hi), tol, signal, description in SETPOINTS:
        out += [
            f"  - id: {sid}",
            f"    asset: {asset}",
            f"    value: {_num(value)}",
            f"    unit: {_str(unit)}",
            f"    range: [{_num(lo)}, {_num(hi)}]",
            f"    tolerance: {_num(tol)}",
        ]
        out += [f"    signal: {signal}"] if signal else []
        out.append(f"    description: {_str(description)}")
    out += ["", "directives:"]
    for did, asset, states, value, signal, description in DIRECTIVES:
        out += [
            f"  - id: {did}",
            f"    asset: {asset}",
            f"    states: [{', '.join(_str(state) for state in states)}]",
            f"    value: {_str(value)}",
        ]
        out += [f"    signal: {signal}"] if signal else []
        out.append(f"    description: {_str(description)}")

    out += ["", "sources:"]
    out += [
        f'  - {{id: {sid}, kind: {kind}, signals: ["*"], description: {_str(desc)}}}'
        for sid, kind, desc in SOURCES
    ]
    return "\n".join(out) + "\n"


def _validate(text: str) -> str:
    """Fail loudly if the output does not load; returns a one-line count for the log."""
    import yaml

    from safety_nexus.site.schema import Site

    site = Site.model_validate(yaml.safe_load(text))
    n_signals = sum(len(a.signals) for a in site.assets)
    return (
        f"{len(site.subsystems)} subsystems, {len(site.assets)} assets, {n_signals} signals, "
        f"{len(site.dependencies)} dependencies, {len(site.redundancy_groups)} redundancy groups, "
        f"{len(site.failsafes)} failsafes, {len(site.setpoints)} setpoints, "
        f"{len(site.directives)} directives"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--output", type=Path, default=OUTPUT)
    parser.add_argument("--check", action="store_true", help="only check the file is current")
    args = parser.parse_args(argv)
    text = render()
    summary = _validate(text)
    output: Path = args.output
    if args.check:
        current = output.read_text(encoding="utf-8") if output.exists() else ""
        if current != text:
            print(f"{output} is out of date: run python scripts/gen_demo_city.py", file=sys.stderr)
            return 1
        print(f"{output} is up to date: {summary}")
        return 0
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text, encoding="utf-8")
    print(f"wrote {output}: {summary}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
