"""The alarm-load KPIs (`alarms.kpi`) as one self-contained HTML page.

No JavaScript and nothing fetched: the charts are inline SVG drawn here, the style is inline, so
the page can be mailed, archived with an audit or opened on an air-gapped control-room machine.
Every string that comes from the journal (alarm ids, positions) is escaped.

Charts: per position, annunciations in each fixed 10-minute period against ISA-18.2's 1
(acceptable), 2 (manageable) and 10 (the most in any period) lines; the priority distribution
against 80/15/5/<1 as two stacked bars. Tables: every KPI against its target, the top 10 alarms,
the chattering and the stale alarms.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

from safety_nexus.alarms.kpi import (
    MAX_PER_PERIOD,
    PRIORITY_TARGETS,
    AlarmKpis,
    PositionKpi,
    PriorityShare,
    iso,
)

WIDTH = 960  # px, every chart
PRIORITY_COLOURS = {
    "low": "#7ea6d3",
    "medium": "#f2c14e",
    "high": "#ef8a47",
    "emergency": "#c8374b",
    "other": "#9a9a9a",
}
BAR = "#5b7fa6"
BAR_MANAGEABLE = "#e0a030"
BAR_OVER = "#c8374b"
LINES = ((1.0, "1 acceptable", "#3c9a5f"), (2.0, "2 manageable", "#e0a030"))

STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 24px auto; max-width: 1000px;
       color: #1d232b; background: #fbfbfa; padding: 0 16px; }
h1 { font-size: 22px; margin-bottom: 4px; } h2 { font-size: 17px; margin-top: 28px; }
.sub { color: #5c6672; margin-top: 0; }
table { border-collapse: collapse; width: 100%; margin: 8px 0; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid #e3e5e8; }
th { background: #eef0f2; font-weight: 600; } td.num { text-align: right; }
.met, .notmet { font-weight: 600; white-space: nowrap; }
.met { color: #2e7d4f; } .notmet { color: #b3261e; }
svg { display: block; margin: 6px 0 14px; background: #fff; border: 1px solid #e3e5e8; }
svg text { font: 11px system-ui, sans-serif; fill: #39424d; }
.none { color: #5c6672; font-style: italic; }
"""


def e(value: object) -> str:
    """Escape for text and attribute values alike."""
    return html.escape(str(value), quote=True)


def render(kpis: AlarmKpis, *, title: str = "Alarm load (ISA-18.2 KPIs)", source: str = "") -> str:
    """The whole page."""
    checks = kpis.checks()
    met = sum(c.met for c in checks)
    scope = f"position {kpis.position}" if kpis.position else "all positions"
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{e(title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{e(title)}</h1>",
        f'<p class="sub">{e(iso(kpis.since))} to {e(iso(kpis.until))} (UTC), {e(scope)}:'
        f" {kpis.annunciations} annunciation(s); {met} of {len(checks)} targets met."
        + (f" Source: {e(source)}." if source else "")
        + f" Fixed {kpis.period / 60:g}-minute periods anchored at the start.</p>",
        "<h2>Every KPI against its target</h2>",
        _table(
            ("scope", "KPI", "value", "target", "status"),
            (
                (
                    e(c.scope),
                    e(c.name),
                    e(c.value),
                    e(c.target),
                    f'<span class="{"met" if c.met else "notmet"}">'
                    f"{'met' if c.met else 'not met'}</span>",
                )
                for c in checks
            ),
        ),
        "<h2>Annunciations per 10-minute period</h2>",
    ]
    if not kpis.positions:
        parts.append('<p class="none">No annunciations in the period.</p>')
    for p in kpis.positions:
        parts.append(
            f"<h3>{e(p.position)}</h3>"
            f'<p class="sub">{p.annunciations} annunciation(s); at most {p.per_10min.maximum}'
            f" in a period, {p.peak_10min} in any 10 minutes.</p>"
        )
        parts.append(period_chart(p, kpis.since, kpis.period))
    parts.append("<h2>Priority distribution</h2>")
    parts.append(priority_chart(kpis.priorities, kpis.annunciations))
    parts.append(f"<h2>Top {len(kpis.top) or 10} alarms</h2>")
    parts.append(
        _table(
            ("alarm", "position", "priority", "annunciations", "share"),
            (
                (e(t.alarm), e(t.position), e(t.priority), _num(t.count), _num(_pct(t.share)))
                for t in kpis.top
            ),
        )
        if kpis.top
        else '<p class="none">None.</p>'
    )
    parts.append("<h2>Chattering alarms</h2>")
    parts.append(
        _table(
            ("alarm", "position", "priority", "annunciations", "chattering starts", "burst"),
            (
                (
                    e(c.alarm),
                    e(c.position),
                    e(c.priority),
                    _num(c.annunciations),
                    _num(c.chattering_events),
                    _num(f"{c.burst} in {kpis.chatter_window:g} s"),
                )
                for c in kpis.chattering
            ),
        )
        if kpis.chattering
        else '<p class="none">None.</p>'
    )
    parts.append("<h2>Stale alarms</h2>")
    parts.append(
        _table(
            ("alarm", "asset", "position", "priority", "state", "active since", "hours"),
            (
                (
                    e(s.alarm),
                    e(s.asset),
                    e(s.position),
                    e(s.priority),
                    e(s.state),
                    e(iso(s.first_seen)),
                    _num(f"{s.age / 3600:.1f}"),
                )
                for s in kpis.stale
            ),
        )
        if kpis.stale
        else '<p class="none">None.</p>'
    )
    parts.append("</body></html>\n")
    return "\n".join(parts)


def period_chart(p: PositionKpi, since: float, period: float, height: int = 220) -> str:
    """Bars of annunciations per period with the 1, 2 and 10 lines; only non-empty periods
    get a bar (a quiet week is mostly zeros), each with a tooltip of its start and count."""
    left, right, top, bottom = 44, 96, 10, 28
    plot_w, plot_h = WIDTH - left - right, height - top - bottom
    n = max(1, len(p.counts))
    y_max = max(MAX_PER_PERIOD + 1.0, max(p.counts, default=0) * 1.08)
    step = plot_w / n
    bar_w = max(step * 0.85, 0.6) if step > 2 else max(step, 0.6)

    def y(v: float) -> float:
        return top + plot_h * (1.0 - v / y_max)

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}"'
        f' viewBox="0 0 {WIDTH} {height}" role="img"'
        f' aria-label="{e(f"annunciations per 10 minutes at {p.position}")}">'
    ]
    for k, count in enumerate(p.counts):
        if count <= 0:
            continue
        colour = BAR_OVER if count > MAX_PER_PERIOD else BAR_MANAGEABLE if count > 2 else BAR
        start = _clock(since + k * period)
        out.append(
            f'<rect x="{left + k * step:.2f}" y="{y(count):.2f}" width="{bar_w:.2f}"'
            f' height="{plot_h * count / y_max:.2f}" fill="{colour}">'
            f"<title>{e(start)}: {count}</title></rect>"
        )
    for value, label, colour in (*LINES, (float(MAX_PER_PERIOD), "10 maximum", BAR_OVER)):
        out.append(
            f'<line x1="{left}" x2="{left + plot_w}" y1="{y(value):.2f}" y2="{y(value):.2f}"'
            f' stroke="{colour}" stroke-width="1.2" stroke-dasharray="5 3"/>'
            f'<text x="{left + plot_w + 4}" y="{y(value) + 4:.2f}">{e(label)}</text>'
        )
    out.append(
        f'<line x1="{left}" x2="{left}" y1="{top}" y2="{top + plot_h}" stroke="#888"/>'
        f'<line x1="{left}" x2="{left + plot_w}" y1="{top + plot_h}" y2="{top + plot_h}"'
        ' stroke="#888"/>'
        f'<text x="{left - 6}" y="{top + plot_h + 4}" text-anchor="end">0</text>'
        f'<text x="{left - 6}" y="{top + 9}" text-anchor="end">{y_max:.0f}</text>'
    )
    ticks = min(6, n)
    for i in range(ticks + 1):
        k = round(i * n / ticks) if ticks else 0
        x = left + k * step
        anchor = "start" if i == 0 else "end" if i == ticks else "middle"
        out.append(
            f'<text x="{x:.2f}" y="{height - 8}" text-anchor="{anchor}">'
            f"{e(_clock(since + k * period))}</text>"
        )
    out.append("</svg>")
    return "".join(out)


def priority_chart(shares: Sequence[PriorityShare], total: int, height: int = 104) -> str:
    """Two stacked bars: the annunciations' priorities, and ISA-18.2's 80/15/5/<1 target."""
    left, right = 70, 20
    plot_w = WIDTH - left - right
    actual = [(s.priority, s.share) for s in shares]
    target = list(PRIORITY_TARGETS.items())
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}"'
        f' viewBox="0 0 {WIDTH} {height}" role="img" aria-label="priority distribution">'
    ]
    for row, (label, parts) in enumerate((("actual", actual), ("target", target))):
        y0 = 10 + row * 36
        out.append(f'<text x="{left - 8}" y="{y0 + 17}" text-anchor="end">{e(label)}</text>')
        if label == "actual" and total == 0:
            out.append(f'<text x="{left}" y="{y0 + 17}">no annunciations</text>')
            continue
        x = float(left)
        for name, share in parts:
            w = plot_w * share
            if w <= 0:
                continue
            colour = PRIORITY_COLOURS.get(name, PRIORITY_COLOURS["other"])
            text = f"{name} {_pct(share)}"
            out.append(
                f'<rect x="{x:.2f}" y="{y0}" width="{w:.2f}" height="26" fill="{colour}">'
                f"<title>{e(text)}</title></rect>"
            )
            if w > 7 * len(text):
                out.append(f'<text x="{x + 5:.2f}" y="{y0 + 17}">{e(text)}</text>')
            x += w
    x = float(left)
    for name in (*PRIORITY_TARGETS, *(s.priority for s in shares if s.priority == "other")):
        colour = PRIORITY_COLOURS.get(name, PRIORITY_COLOURS["other"])
        out.append(
            f'<rect x="{x:.2f}" y="{height - 16}" width="10" height="10" fill="{colour}"/>'
            f'<text x="{x + 14:.2f}" y="{height - 7}">{e(name)}</text>'
        )
        x += 24 + 7 * len(name)
    out.append("</svg>")
    return "".join(out)


def _table(head: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """Cells arrive escaped (or as markup built here); the header is escaped here."""
    th = "".join(f"<th>{e(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(_cell(c) for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


class _Num(str):
    """A cell to right-align."""

    __slots__ = ()


def _num(value: object) -> str:
    return _Num(e(value))


def _cell(content: str) -> str:
    return f'<td class="num">{content}</td>' if isinstance(content, _Num) else f"<td>{content}</td>"


def _pct(share: float) -> str:
    return f"{100.0 * share:.3g} %"


def _clock(t: float) -> str:
    return datetime.fromtimestamp(t, tz=UTC).strftime("%m-%d %H:%M")
