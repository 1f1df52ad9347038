"""`nexus site ...`: check a site file and inspect its dependency graph."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from safety_nexus.core.errors import ConfigError
from safety_nexus.site.graph import DependencyGraph, GraphSummary
from safety_nexus.site.load import load_file
from safety_nexus.site.schema import Site

app = typer.Typer(no_args_is_help=True)

FileArg = Annotated[Path, typer.Argument(help="The site file (YAML).", show_default=False)]


def _console() -> Console:
    # Built per call so that it writes to whatever stdout is current (CliRunner swaps it), and
    # soft-wrapped so that "FILE:LINE: ..." stays on one line for editors and grep.
    return Console(soft_wrap=True, highlight=False)


def _load_or_exit(path: Path, console: Console) -> Site:
    try:
        return load_file(path)
    except ConfigError as err:
        for issue in err.issues:
            line = Text()
            line.append(f"{path}:{issue.line}:" if issue.line is not None else f"{path}:", "bold")
            if issue.path:
                line.append(f" {issue.path}:", "cyan")
            line.append(f" {issue.message}")
            console.print(line)
        count = len(err.issues)
        console.print(Text(f"{count} error{'s' if count != 1 else ''} in {path}", style="bold red"))
        raise typer.Exit(1) from err


@app.command()
def check(file: FileArg) -> None:
    """Validate a site file: print every error as FILE:LINE: field: message."""
    console = _console()
    site = _load_or_exit(file, console)
    n_signals = sum(len(a.signals) for a in site.assets)
    console.print(
        Text.assemble(
            ("ok", "bold green"),
            f": {file.name} — {len(site.subsystems)} subsystems, {len(site.assets)} assets, "
            f"{n_signals} signals, {len(site.dependencies)} dependencies, "
            f"{len(site.redundancy_groups)} redundancy groups, {len(site.failsafes)} failsafes",
        )
    )


@app.command()
def graph(
    file: FileArg,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Summarise the dependency graph: counts, roots and leaves, the slowest cascade, cycles,
    single points of failure and redundancy groups."""
    console = _console()
    site = _load_or_exit(file, console)
    summary = DependencyGraph(site).summary()
    if as_json:
        # Plain output, not rich's: it is for other programs and must not be wrapped or styled.
        typer.echo(json.dumps(summary.to_dict(), indent=2, ensure_ascii=False))
        return
    _print_summary(console, site.site.name, summary)


def _counts(title: str, counts: Mapping[str, int], what: str) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column(what)
    table.add_column("count", justify="right")
    for key, value in counts.items():
        table.add_row(key, str(value))
    return table


def _ids(ids: Iterable[str]) -> str:
    return ", ".join(ids) or "none"


def _print_summary(console: Console, name: str, s: GraphSummary) -> None:
    overview = Table(
        title=Text(f"{name}: dependency graph"), title_justify="left", show_header=False
    )
    overview.add_column(style="bold")
    overview.add_column()
    overview.add_row("assets", str(s.assets))
    overview.add_row("dependencies", f"{s.dependencies} ({s.edges} distinct provider pairs)")
    overview.add_row("roots", _ids(s.roots))
    overview.add_row("leaves", _ids(s.leaves))
    overview.add_row("slowest cascade", f"{s.longest_lag:g} s: {' -> '.join(s.longest_lag_path)}")
    overview.add_row("cycles", str(len(s.cycles)) if s.cycles else "none")
    overview.add_row("single points of failure", str(len(s.single_points_of_failure)))
    console.print(overview)
    console.print(_counts("assets by subsystem", s.assets_by_subsystem, "subsystem"))
    console.print(_counts("dependencies by kind", s.dependencies_by_kind, "kind"))
    console.print(
        _counts(
            "dependencies between subsystems", s.dependencies_by_subsystem, "provider -> dependant"
        )
    )

    groups = Table(title="redundancy groups", title_justify="left")
    groups.add_column("group")
    groups.add_column("k/n", justify="right")
    groups.add_column("members")
    for g in s.redundancy_groups:
        groups.add_row(g.id, f"{g.required}/{g.size}", _ids(g.members))
    console.print(groups)

    if s.cycles:
        cycles = Table(title="cycles", title_justify="left")
        cycles.add_column("assets")
        for cycle in s.cycles:
            cycles.add_row(" -> ".join([*cycle, cycle[0]]))
        console.print(cycles)

    spofs = Table(title="single points of failure", title_justify="left")
    spofs.add_column("asset")
    spofs.add_column("critical assets lost")
    for asset, lost in s.single_points_of_failure.items():
        spofs.add_row(asset, _ids(lost))
    console.print(spofs if s.single_points_of_failure else Text("no single points of failure"))
