"""The `nexus` command. Each command group lives in its own module and is registered here."""

from __future__ import annotations

import typer

from safety_nexus.cli import alarms, demo, eval, replay, serve, sim, site

app = typer.Typer(
    name="nexus",
    help="Safety Nexus: monitoring for the interconnected safety systems of a site.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(site.app, name="site", help="Check and inspect site files.")
app.add_typer(sim.app, name="sim", help="Run the simulator of the demo city.")
app.add_typer(eval.app, name="eval", help="Score detection on public benchmarks (NAB).")
app.add_typer(alarms.app, name="alarms", help="Alarm-system reports (ISA-18.2 KPIs).")
app.command("demo")(demo.demo)
app.command("serve")(serve.serve)
app.command("replay")(replay.replay)


def main() -> None:
    app()
