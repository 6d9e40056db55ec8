"""The statistics page of the staff console: charts over a chosen period, each with its
numbers one click away (a table under it and a CSV download), and a form that makes a
deep link for a new source (a school, a post, a poster).

- GET  /stats?days=7|30|90|365 or ?from=YYYY-MM-DD&to=YYYY-MM-DD
- GET  /stats/{chart}.csv?<the same period>
- POST /stats/link        source -> the links for every messenger with a bot name

The numbers come from storage/stats.py (rolled-up days plus today live); no personal
data is shown, only counts, municipality names and source labels.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from markupsafe import Markup

from bot.catalogue_io import safe_cell
from bot.web.charts import Series, bar_chart, hbar_chart, line_chart, number
from bot.web.console import MenuItem, _app, _t, _zone, page
from bot.web.security import MENU_KEY, access
from handlers.linking import deep_link
from storage.linking import looks_like_code
from storage.models import REQUEST_STATUSES, utcnow
from storage.stats import FUNNEL, REMINDER_OUTCOMES, Stats, collect

STATS_ITEM = MenuItem("/stats", "stats", "operator")
PRESETS = (7, 30, 90, 365)
DEFAULT_DAYS = 30
MAX_DAYS = 731
SOURCE = re.compile(r"[A-Za-z0-9_-]{1,64}")
LINK_CHANNELS = ("telegram", "vk", "max")
# The sources shown by name; the rest are summed as «другие».
TOP_SOURCES = 15


@dataclass
class Period:
    first: date
    last: date
    days: int | None  # the preset chosen, None for from-to
    error: str = ""

    @property
    def query(self) -> str:
        if self.days:
            return urlencode({"days": self.days})
        return urlencode({"from": self.first.isoformat(), "to": self.last.isoformat()})


def period_of(query: Any, today: date, error_text: str) -> Period:
    """The period asked for: a preset number of days up to today, or from-to dates."""
    start, end = str(query.get("from", "")).strip(), str(query.get("to", "")).strip()
    if start or end:
        try:
            first = date.fromisoformat(start) if start else None
            last = date.fromisoformat(end) if end else today
        except ValueError:
            first = last = None
        if first is not None and last is not None and first <= last:
            if (last - first).days < MAX_DAYS:
                return Period(first, last, None)
        fallback = period_of({}, today, error_text)
        fallback.error = error_text
        return fallback
    raw = str(query.get("days", ""))
    days = int(raw) if raw.isdigit() and int(raw) in PRESETS else DEFAULT_DAYS
    return Period(today - timedelta(days=days - 1), today, days)


@dataclass
class Chart:
    key: str
    title: str
    note: str
    svg: Markup
    head: list[str]
    rows: list[list[Any]]
    empty: bool


def _channel_order(channel: str) -> tuple[int, str]:
    order = ("telegram", "vk", "max")
    return (order.index(channel) if channel in order else len(order), channel)


def _day(day: date) -> str:
    return day.strftime("%d.%m")


def charts(stats: Stats, t: Any, channel_name: Any, municipality_name: Any) -> list[Chart]:
    """Every chart of the page with its table (the same numbers)."""
    day_labels = [_day(day) for day in stats.days]
    full_days = [day.strftime("%d.%m.%Y") for day in stats.days]
    result: list[Chart] = []

    def add(key: str, svg: Markup, head: list[str], rows: list[list[Any]], total: int) -> None:
        result.append(Chart(key, t(f"chart.{key}"), t(f"note.{key}"), svg, head, rows, total == 0))

    def add_outcomes(key: str, labels: list[str], values: list[int], colors: list[str]) -> None:
        """A bar per outcome, each in its own colour, and its table of counts."""
        svg = hbar_chart(
            labels,
            [
                Series(t("count"), [v if n == i else 0 for n, v in enumerate(values)], colors[i])
                for i in range(len(values))
            ],
            title=t(f"chart.{key}"),
            legend=False,
            label_width=300,
        )
        rows = [list(r) for r in zip(labels, values, strict=True)]
        add(key, svg, [t(f"chart.{key}"), t("count")], rows, sum(values))

    for key, data in (("messages", stats.messages), ("parents", stats.parents)):
        channels = sorted(data, key=_channel_order) or ["telegram"]
        series = [Series(channel_name(c), data.get(c, [0] * len(stats.days))) for c in channels]
        head = [t("day"), *(channel_name(c) for c in channels), t("total")]
        rows = [
            [full_days[i], *(s.values[i] for s in series), sum(s.values[i] for s in series)]
            for i in range(len(stats.days))
        ]
        total = sum(sum(s.values) for s in series)
        add(key, line_chart(day_labels, series, title=t(f"chart.{key}")), head, rows, total)

    def step_label(step: str) -> str:
        if step in ("start", "finished"):
            return t(f"funnel.{step}")
        n = int(step[1:])
        return t("funnel.step", n=n, title=t.region_text(f"registration.titles.s{n}"))

    labels = [step_label(step) for step in FUNNEL]
    values = [stats.funnel[step] for step in FUNNEL]
    started = stats.funnel["start"] or 0
    rows = [
        [label, value, f"{round(100 * value / started)}%" if started else "—"]
        for label, value in zip(labels, values, strict=True)
    ]
    svg = hbar_chart(
        labels,
        [Series(t("count"), values, "#0072B2")],
        title=t("chart.funnel"),
        legend=False,
        label_width=300,
    )
    add("funnel", svg, [t("chart.funnel"), t("count"), "%"], rows, sum(values))

    weeks = list(stats.confirmations)
    values = [stats.confirmations[w] for w in weeks]
    svg = bar_chart(
        [_day(w) for w in weeks],
        [Series(t("count"), values, "#009E73")],
        title=t("chart.confirmations"),
        legend=False,
    )
    rows = [[w.strftime("%d.%m.%Y"), v] for w, v in zip(weeks, values, strict=True)]
    add("confirmations", svg, [t("week"), t("count")], rows, sum(values))

    places = list(stats.requests)
    statuses = [s for s in REQUEST_STATUSES if any(s in stats.requests[p] for p in places)]
    names = [municipality_name(p) if p else t("no_municipality") for p in places]
    series = [Series(t.status(s), [stats.requests[p].get(s, 0) for p in places]) for s in statuses]
    svg = hbar_chart(names, series, title=t("chart.requests"), label_width=290)
    rows = [
        [name, *(stats.requests[p].get(s, 0) for s in statuses), sum(stats.requests[p].values())]
        for name, p in zip(names, places, strict=True)
    ]
    head = [t("municipality"), *(t.status(s) for s in statuses), t("total")]
    add("requests", svg, head, rows, sum(sum(r.values()) for r in stats.requests.values()))

    labels = [t(f"reminder.{o}") for o in REMINDER_OUTCOMES]
    values = [stats.reminders[o] for o in REMINDER_OUTCOMES]
    colors = ["#0072B2", "#009E73", "#E69F00", "#D55E00", "#999999"]
    add_outcomes("reminders", labels, values, colors)

    outcomes = list(stats.faq)
    labels = [t(f"faq.{o}") for o in outcomes]
    values = [stats.faq[o] for o in outcomes]
    colors = ["#009E73", "#56B4E9", "#D55E00", "#CC79A7"]
    add_outcomes("faq", labels, values, colors)

    top = stats.sources[:TOP_SOURCES]
    rest = sum(n for _, n in stats.sources[TOP_SOURCES:])
    labels = [name or t("no_source") for name, _ in top]
    values = [n for _, n in top]
    if rest:
        labels.append(t("other_sources"))
        values.append(rest)
    svg = hbar_chart(
        labels,
        [Series(t("new_parents"), values, "#0072B2")],
        title=t("chart.sources"),
        legend=False,
    )
    rows = [[name or t("no_source"), n] for name, n in stats.sources]
    add("sources", svg, [t("source"), t("new_parents")], rows, sum(values))
    return result


class _Texts:
    """The page's labels: staff.stats.<key>, statuses and registration step titles."""

    def __init__(self, request: web.Request) -> None:
        self.request = request
        self.texts = _app(request).texts

    def __call__(self, key: str, **params: Any) -> str:
        return _t(self.request, f"stats.{key}", **params)

    def status(self, status: str) -> str:
        return _t(self.request, f"status.{status}")

    def region_text(self, key: str) -> str:
        return self.texts(key)


async def _stats(request: web.Request) -> tuple[Period, list[Chart]]:
    app = _app(request)
    zone = _zone(request)
    today = utcnow().astimezone(zone).date()
    period = period_of(request.query, today, _t(request, "stats.period_error"))
    async with app.db.session() as session:
        stats = await collect(session, period.first, period.last, zone)

    def municipality_name(mid: str) -> str:
        found = app.region.municipality(mid)
        return found.name if found else mid

    def channel_name(channel: str) -> str:
        key = f"staff.channel.{channel}"
        return app.texts(key) if app.texts.has(key) else channel

    return period, charts(stats, _Texts(request), channel_name, municipality_name)


async def _page(
    request: web.Request, link: dict[str, Any] | None = None, status: int = 200
) -> web.StreamResponse:
    period, found = await _stats(request)
    return page(
        request,
        "stats.html",
        {
            "period": period,
            "presets": PRESETS,
            "charts": found,
            "link": link or {"source": "", "error": "", "links": []},
            "number": number,
        },
        status=status,
    )


@access("operator")
async def stats_page(request: web.Request) -> web.StreamResponse:
    return await _page(request)


@access("operator")
async def stats_csv(request: web.Request) -> web.StreamResponse:
    key = request.match_info["chart"]
    period, found = await _stats(request)
    chart = next((c for c in found if c.key == key), None)
    if chart is None:
        raise web.HTTPNotFound()
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";")
    writer.writerow([safe_cell(str(cell)) for cell in chart.head])
    for row in chart.rows:
        writer.writerow([cell if isinstance(cell, int) else safe_cell(str(cell)) for cell in row])
    name = f"stats-{key}-{period.first.isoformat()}-{period.last.isoformat()}.csv"
    return web.Response(
        body=("\ufeff" + out.getvalue()).encode("utf-8"),
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


def source_problem(source: str) -> str:
    """The error key for a source label, or "" when it can go in a link."""
    if not source:
        return "empty"
    if not SOURCE.fullmatch(source):
        return "bad"
    if looks_like_code(source):
        return "code"
    return ""


@access("operator")
async def make_link(request: web.Request) -> web.StreamResponse:
    app = _app(request)
    form = await request.post()
    source = str(form.get("source", "")).strip()
    problem = source_problem(source)
    links = []
    if not problem:
        for channel in LINK_CHANNELS:
            url = deep_link(app.settings, channel, source)
            if url:
                links.append((app.texts(f"staff.channel.{channel}"), url))
        if not links:
            problem = "no_channels"
    error = _t(request, f"stats.link_error.{problem}") if problem else ""
    return await _page(
        request,
        {"source": source, "error": error, "links": links},
        status=400 if problem else 200,
    )


def add_stats_routes(web_app: web.Application) -> None:
    web_app[MENU_KEY].append(STATS_ITEM)
    router = web_app.router
    router.add_get("/stats", stats_page)
    router.add_get("/stats/{chart}.csv", stats_csv)
    router.add_post("/stats/link", make_link)
