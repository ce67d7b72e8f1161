"""Bar charts as inline SVG (no script, no font or file requests) for `probe report`: shares with
Wilson 95% whiskers, and the paper's value as a hatched bar beside ours.

A step summary gives a chart as plain data (`StepSummary.chart`, `groups[...]["chart"]`); every
number drawn comes from the same proportions its table prints, every text is escaped here.
"""

from __future__ import annotations

from dataclasses import dataclass

from markupsafe import Markup
from markupsafe import escape as _e

PLOT_HEIGHT = 260  # px from 0% to 100%
TOP = 28  # room above 100% for value labels
LEFT = 64  # room for the y axis, its ticks and title
RIGHT = 16
BAR = 34  # bar width
PAIR_GAP = 2  # between a bar and its paper bar
BAR_GAP = 10  # between bars of one group
GROUP_GAP = 34
MIN_GROUP = 120  # px, so that a group's name has room
CHAR = 7.0  # px per character at the labels' font size (an estimate for layout)
N_STYLE = " class='n' font-weight='400' fill='#666'"  # the 'n = 20' line under a group
TICKS = (0, 20, 40, 60, 80, 100)

# Attributes that name a colour are drawn in it (the built-in `colours` label set); others take the palette.
COLOUR_WORDS = {
    "red": "#d62728",
    "green": "#2ca02c",
    "blue": "#1f77b4",
    "yellow": "#e8c21a",
    "purple": "#8e44ad",
    "orange": "#f28e1c",
    "white": "#f7f7f7",
    "black": "#262626",
    "grey": "#8c8c8c",
    "gray": "#8c8c8c",
    "pink": "#e377c2",
    "brown": "#8c564b",
}
PALETTE = ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3", "#8c8c8c")


@dataclass(frozen=True)
class Share:
    """k of n, the share and its Wilson 95% interval (as a summary's data holds them)."""

    k: int
    n: int
    share: float
    low: float
    high: float

    def percent(self) -> str:
        """'85% [64–95]' (share and interval in whole percent); '–' when n is 0."""
        if not self.n:
            return "–"
        return f"{100 * self.share:.0f}% [{100 * self.low:.0f}–{100 * self.high:.0f}]"


@dataclass(frozen=True)
class Bar:
    """One bar: a series (legend entry, e.g. an attribute), its share, and the paper's percentage if any."""

    series: str
    share: Share
    paper: float | None = None


@dataclass(frozen=True)
class Group:
    """Bars side by side under one x label (a prompt variant, or a prompt)."""

    name: str
    bars: list[Bar]


def _num(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")


def percent(value: float) -> str:
    return f"{100 * value:.0f}%"


def colours_for(series: list[str]) -> dict[str, str]:
    """A fill colour per series: its own colour when it names one, else the next palette colour."""
    out, free = {}, iter(c for c in PALETTE)
    for name in series:
        out[name] = COLOUR_WORDS.get(name.strip().lower()) or next(free, "#8c8c8c")
    return out


def _ink(fill: str) -> str:
    """A darker outline so pale bars (white, yellow) stay visible."""
    r, g, b = (int(fill[i : i + 2], 16) for i in (1, 3, 5))
    return f"#{int(r * 0.55):02x}{int(g * 0.55):02x}{int(b * 0.55):02x}"


def _wrap(text: str, width_chars: int, lines: int = 3) -> list[str]:
    """Words in lines of at most width_chars (the last line cut with an ellipsis)."""
    out: list[str] = []
    for word in text.split():
        if out and len(out[-1]) + 1 + len(word) <= width_chars:
            out[-1] += " " + word
        else:
            out.append(word)
    if len(out) > lines:
        out = out[:lines]
        out[-1] = out[-1][: max(1, width_chars - 1)] + "…"
    return [line if len(line) <= width_chars else line[: max(1, width_chars - 1)] + "…" for line in out] or [""]


def _group_caption(group: Group, width_chars: int) -> list[tuple[str, bool]]:
    """The lines under a group: its name wrapped, then 'n = 20' when its bars share one N (flag: is the N line)."""
    lines = [(line, False) for line in _wrap(group.name, width_chars)] if group.name else []
    ns = {b.share.n for b in group.bars}
    if len(ns) == 1:
        lines.append((f"n = {ns.pop()}", True))
    return lines or [("", False)]


def describe(bar: Bar) -> str:
    """'red: 7 of 8, 88% [53–98] (paper 96%)': the text a bar's tooltip and the chart description give."""
    s = bar.share
    text = f"{bar.series}: {s.k} of {s.n}, {s.percent()}" if s.n else f"{bar.series}: no images"
    return text + (f" (paper {bar.paper:g}%)" if bar.paper is not None else "")


def bar_chart(
    groups: list[Group],
    *,
    chart_id: str,
    title: str,
    y_title: str = "share of images (%)",
    colours: dict[str, str] | None = None,
) -> str:
    """An SVG bar chart: groups along x, one bar per series with its Wilson whisker and value, the
    paper's value hatched beside a bar that has one; axis, ticks, legend, and <title>/<desc> text."""
    series = list(dict.fromkeys(b.series for g in groups for b in g.bars))
    fills = {**colours_for(series), **(colours or {})}
    has_paper = any(b.paper is not None for g in groups for b in g.bars)
    show_group_names = bool(groups)
    # one group (or many series): each bar names its series; else the legend does, as in a grouped bar chart
    label_bars = len(groups) <= 1 or len(series) > 4

    longest = max((len(b.series) for g in groups for b in g.bars), default=1)
    pair = BAR + (PAIR_GAP + BAR if has_paper else 0)
    # bar labels up to 10 characters get room beside each other; longer ones are turned
    gap = max(BAR_GAP, min(10, longest) * CHAR + 8 - pair) if label_bars else BAR_GAP
    rotate = label_bars and longest * CHAR + 8 > pair + gap

    def slot(bar: Bar) -> int:
        return BAR + (PAIR_GAP + BAR if bar.paper is not None else 0)

    # x layout
    x = LEFT + GROUP_GAP / 2
    placed: list[tuple[Group, float, float, list[tuple[Bar, float]]]] = []
    for g in groups:
        inner = sum(slot(b) for b in g.bars) + gap * max(0, len(g.bars) - 1)
        span = max(inner, MIN_GROUP) if show_group_names else inner
        start, bars = x, []
        x += (span - inner) / 2
        for b in g.bars:
            bars.append((b, x))
            x += slot(b) + gap
        placed.append((g, start, start + span, bars))
        x = start + span + GROUP_GAP
    plot_right = x - GROUP_GAP / 2
    width = max(plot_right + RIGHT, 380)
    y0 = TOP + PLOT_HEIGHT  # the 0% line

    def y(share: float) -> float:
        return y0 - share * PLOT_HEIGHT

    # below the axis: bar labels (rotated when long), group names, legend
    label_h = 0 if not label_bars else (longest * CHAR * 0.72 + 14) if rotate else 18
    captions = {id(g): _group_caption(g, max(6, int((e - s) / CHAR))) for g, s, e, _ in placed}
    group_lines = max((len(c) for c in captions.values()), default=1)
    group_top = y0 + 6 + label_h
    legend_top = group_top + (group_lines * 15 + 10 if show_group_names else 4)
    legend_items = [] if label_bars else [(name, "bar") for name in series]
    legend_items += [("the paper's value", "paper")] if has_paper else []
    legend_items.append(("Wilson 95% interval", "whisker"))
    legend_rows, lx, row_x = 1, float(LEFT), []
    for name, _ in legend_items:
        w = 22 + len(name) * CHAR + 16
        if lx + w > width - RIGHT and lx > LEFT:
            legend_rows, lx = legend_rows + 1, LEFT
        row_x.append((legend_rows - 1, lx))
        lx += w
    height = legend_top + legend_rows * 20 + 6

    out = [
        f"<svg class='chart' role='img' width='{_num(width)}' "
        f"height='{_num(height)}' viewBox='0 0 {_num(width)} {_num(height)}' "
        f"aria-labelledby='{_e(chart_id)}-title {_e(chart_id)}-desc' "
        "font-family='system-ui,sans-serif' font-size='12'>",
        f"<title id='{_e(chart_id)}-title'>{_e(title)}</title>",
        "<desc id='{}-desc'>{}</desc>".format(
            _e(chart_id),
            _e(
                "; ".join(f"{g.name + ': ' if g.name else ''}" + ", ".join(describe(b) for b in g.bars) for g in groups)
            ),
        ),
    ]
    if has_paper:
        out.append("<defs>")
        out.extend(
            f"<pattern id='{_e(chart_id)}-hatch-{i}' width='5' height='5' "
            f"patternUnits='userSpaceOnUse' patternTransform='rotate(45)'>"
            f"<rect width='5' height='5' fill='#fff'/><rect width='2.2' height='5' fill='{fills[name]}'/></pattern>"
            for i, name in enumerate(series)
        )
        out.append(
            f"<pattern id='{_e(chart_id)}-hatch-key' width='5' height='5' patternUnits='userSpaceOnUse' "
            "patternTransform='rotate(45)'><rect width='5' height='5' fill='#fff'/>"
            "<rect width='2.2' height='5' fill='#777'/></pattern></defs>"
        )
    # grid, ticks and the y axis
    out.append("<g class='y-axis'>")
    for t in TICKS:
        ty = _num(y(t / 100))
        out.append(
            f"<line class='grid' x1='{LEFT}' x2='{_num(plot_right)}' y1='{ty}' y2='{ty}' stroke='#e3e3e3'/>"
            f"<line class='tick' data-value='{t}' x1='{LEFT - 5}' x2='{LEFT}' y1='{ty}' y2='{ty}' stroke='#444'/>"
            f"<text x='{LEFT - 8}' y='{ty}' dy='0.32em' text-anchor='end' fill='#333'>{t}%</text>"
        )
    out.append(
        f"<line x1='{LEFT}' x2='{LEFT}' y1='{TOP}' y2='{y0}' stroke='#444'/>"
        f"<text transform='translate(14 {_num(TOP + PLOT_HEIGHT / 2)}) rotate(-90)' text-anchor='middle' "
        f"fill='#333'>{_e(y_title)}</text></g>"
    )
    # bars, whiskers, values, labels
    for g, start, end, bars in placed:
        out.append(f"<g class='group' data-name='{_e(g.name)}'>")
        for b, bx in bars:
            s, fill = b.share, fills[b.series]
            centre = bx + BAR / 2
            if s.n:
                top = y(s.share)
                out.append(
                    f"<rect class='bar' data-series='{_e(b.series)}' data-k='{s.k}' data-n='{s.n}' "
                    f"x='{_num(bx)}' y='{_num(top)}' width='{BAR}' height='{_num(y0 - top)}' fill='{fill}' "
                    f"stroke='{_ink(fill)}' stroke-width='1'><title>{_e(describe(b))}</title></rect>"
                )
                if not s.k:  # a 0% bar has no height: a coloured tick on the axis keeps it findable
                    out.append(
                        f"<rect class='zero' x='{_num(bx + 3)}' y='{_num(y0 - 3)}' width='{BAR - 6}' height='3' "
                        f"fill='{fill}' stroke='{_ink(fill)}' stroke-width='0.6'/>"
                    )
                lo, hi = _num(y(s.low)), _num(y(s.high))
                c = _num(centre)
                out.append(
                    f"<g class='whisker' data-series='{_e(b.series)}' stroke='#111' stroke-width='1.4'>"
                    f"<line x1='{c}' x2='{c}' y1='{lo}' y2='{hi}'/>"
                    f"<line class='low' x1='{_num(centre - 5)}' x2='{_num(centre + 5)}' y1='{lo}' y2='{lo}'/>"
                    f"<line class='high' x1='{_num(centre - 5)}' x2='{_num(centre + 5)}' y1='{hi}' y2='{hi}'/></g>"
                )
                out.append(
                    f"<text class='value' x='{c}' y='{_num(y(s.high) - 4)}' text-anchor='middle' "
                    f"font-size='10.5' font-weight='600' fill='#111'>{percent(s.share)}</text>"
                )
            else:
                out.append(
                    f"<text class='value' x='{_num(centre)}' y='{_num(y0 - 4)}' text-anchor='middle' "
                    "fill='#777'>n=0</text>"
                )
            if b.paper is not None:
                px = bx + BAR + PAIR_GAP
                ptop = y(b.paper / 100)
                out.append(
                    f"<rect class='paper' data-series='{_e(b.series)}' x='{_num(px)}' y='{_num(ptop)}' width='{BAR}' "
                    f"height='{_num(y0 - ptop)}' fill='url(#{_e(chart_id)}-hatch-{series.index(b.series)})' "
                    f"stroke='{_ink(fill)}' stroke-width='1'>"
                    f"<title>{_e(f'{b.series}: paper {b.paper:g}%')}</title></rect>"
                    f"<text class='paper-value' x='{_num(px + BAR / 2)}' y='{_num(ptop - 4)}' text-anchor='middle' "
                    f"font-size='10.5' font-style='italic' fill='#555'>{b.paper:g}%</text>"
                )
            lx = centre + (BAR + PAIR_GAP) / 2 if b.paper is not None else centre
            if label_bars and rotate:
                out.append(
                    f"<text class='bar-label' transform='translate({_num(lx + 3)} {_num(y0 + 10)}) rotate(-40)' "
                    f"text-anchor='end' fill='#333'>{_e(b.series)}</text>"
                )
            elif label_bars:
                out.append(
                    f"<text class='bar-label' x='{_num(lx)}' y='{_num(y0 + 14)}' text-anchor='middle' "
                    f"fill='#333'>{_e(b.series)}</text>"
                )
        if show_group_names:
            mid = _num((start + end) / 2)
            spans = "".join(
                f"<tspan x='{mid}' dy='{0 if i == 0 else 15}'{N_STYLE if n else ''}>{_e(line)}</tspan>"
                for i, (line, n) in enumerate(captions[id(g)])
            )
            out.append(
                f"<text class='group-label' x='{mid}' y='{_num(group_top + 11)}' text-anchor='middle' "
                f"font-size='13' font-weight='600' fill='#222'>{spans}</text>"
            )
        out.append("</g>")
    out.append(f"<line x1='{LEFT}' x2='{_num(plot_right)}' y1='{y0}' y2='{y0}' stroke='#444'/>")
    # legend
    out.append("<g class='legend'>")
    for (name, kind), (row, lx) in zip(legend_items, row_x, strict=True):
        ly = legend_top + row * 20
        if kind == "bar":
            key = (
                f"<rect x='{_num(lx)}' y='{_num(ly)}' width='14' height='12' fill='{fills[name]}' "
                f"stroke='{_ink(fills[name])}'/>"
            )
        elif kind == "paper":
            key = (
                f"<rect x='{_num(lx)}' y='{_num(ly)}' width='14' height='12' fill='url(#{_e(chart_id)}-hatch-key)' "
                f"stroke='#555'/>"
            )
        else:
            c = _num(lx + 7)
            key = (
                f"<g stroke='#111' stroke-width='1.4'><line x1='{c}' x2='{c}' y1='{_num(ly)}' y2='{_num(ly + 12)}'/>"
                f"<line x1='{_num(lx + 3)}' x2='{_num(lx + 11)}' y1='{_num(ly)}' y2='{_num(ly)}'/>"
                f"<line x1='{_num(lx + 3)}' x2='{_num(lx + 11)}' y1='{_num(ly + 12)}' y2='{_num(ly + 12)}'/></g>"
            )
        out.append(f"{key}<text x='{_num(lx + 20)}' y='{_num(ly + 6)}' dy='0.35em' fill='#333'>{_e(name)}</text>")
    out.append("</g></svg>")
    return "".join(out)


def chart_svg(chart: dict, chart_id: str) -> Markup:
    """A chart given as plain data (`{"title", "y_title", "colours", "groups": [{"name", "bars": [{"series",
    "k", "n", "share", "low", "high", "paper"}]}]}`) drawn as SVG, ready to place in the report."""
    groups = [
        Group(
            g.get("name", ""),
            [
                Bar(b["series"], Share(b["k"], b["n"], b["share"], b["low"], b["high"]), b.get("paper"))
                for b in g["bars"]
            ],
        )
        for g in chart["groups"]
    ]
    extra = {"y_title": chart["y_title"]} if chart.get("y_title") else {}
    return Markup(bar_chart(groups, chart_id=chart_id, title=chart["title"], colours=chart.get("colours"), **extra))
