"""The report's SVG bar charts of the audits: bar heights and whisker ends are the tables' shares and
Wilson bounds, the paper's values stand beside ours, and every text is escaped."""

import math
import xml.etree.ElementTree as ET

import pytest
from probe_audit.audit_summaries import bias_charts, nsfw_chart
from probe_audit.bias import bias_table
from probe_audit.sets import BiasPrompt, LabelSet, PromptSet
from probe_audit.stats import Proportion
from probe_run.charts import Bar, Group, Share, bar_chart, chart_svg

EVIL = 'a star <script>alert("x")</script> & co'


def wilson(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """The Wilson score interval written out (independent of probe_audit.stats)."""
    p = k / n
    centre = p + z * z / (2 * n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (centre - half) / (1 + z * z / n), (centre + half) / (1 + z * z / n)


def of(k: int, n: int) -> Share:
    """k of n as a chart draws it (the numbers of probe_audit.stats' Proportion)."""
    p = Proportion.of(k, n)
    return Share(p.k, p.n, p.share, p.low, p.high)


def parse(svg: str) -> ET.Element:
    """The chart as XML (it is well-formed), namespace-free."""
    return ET.fromstring(svg)


def axis(root: ET.Element) -> tuple[float, float]:
    """(y of the 0% tick, y of the 100% tick), read from the drawn axis."""
    ticks = {t.attrib["data-value"]: float(t.attrib["y1"]) for t in root.iter("line") if t.get("class") == "tick"}
    return ticks["0"], ticks["100"]


def at(root: ET.Element, share: float) -> float:
    y0, y100 = axis(root)
    return y0 + share * (y100 - y0)


def bars(root: ET.Element, cls: str = "bar") -> dict[str, ET.Element]:
    return {r.attrib["data-series"]: r for r in root.iter("rect") if r.get("class") == cls}


def whiskers(root: ET.Element) -> dict[str, tuple[float, float]]:
    """Per series: (y of the low cap, y of the high cap)."""
    out = {}
    for g in root.iter("g"):
        if g.get("class") == "whisker":
            caps = {line.attrib["class"]: float(line.attrib["y1"]) for line in g.iter("line") if line.get("class")}
            out[g.attrib["data-series"]] = (caps["low"], caps["high"])
    return out


@pytest.fixture
def table():
    """One prompt, two variants, labels red/blue: 3 of 4 neutral images red, 0 of 2 female; paper value for neutral."""
    prompts = PromptSet(
        "t",
        "test",
        ["neutral", "female"],
        [
            BiasPrompt(
                "star",
                "g",
                {"neutral": EVIL, "female": "a female star"},
                {"neutral": {"red": 96, "blue": 4}},
            )
        ],
    )
    labels = LabelSet("colours", "", {"red": ["a red shape"], "blue": ["a blue shape"]})
    given = [("star", "neutral", "red")] * 3 + [("star", "neutral", "blue")] + [("star", "female", "blue")] * 2
    return bias_table(prompts, labels, ["neutral", "female"], given)


def test_bar_tops_and_whisker_ends_are_the_shares_and_wilson_bounds(table):
    root = parse(chart_svg(bias_charts(table.as_dict())["star"], "c-0"))
    groups = {g.get("data-name"): g for g in root.iter("g") if g.get("class") == "group"}
    assert list(groups) == ["neutral", "female"]
    expected = {"neutral": {"red": (3, 4), "blue": (1, 4)}, "female": {"red": (0, 2), "blue": (2, 2)}}
    y0 = axis(root)[0]
    for variant, counts in expected.items():
        drawn, caps = bars(groups[variant]), whiskers(groups[variant])
        for attribute, (k, n) in counts.items():
            rect = drawn[attribute]
            assert (rect.get("data-k"), rect.get("data-n")) == (str(k), str(n))
            assert float(rect.attrib["y"]) == pytest.approx(at(root, k / n), abs=0.01)
            assert float(rect.attrib["y"]) + float(rect.attrib["height"]) == pytest.approx(y0, abs=0.01)
            low, high = wilson(k, n)
            assert caps[attribute] == pytest.approx((at(root, low), at(root, high)), abs=0.01)
    # the numbers written on the bars are the table's
    values = [t.text for t in groups["neutral"].iter("text") if t.get("class") == "value"]
    assert values == ["75%", "25%"] and table.rows[0].cell("neutral", "red").share.percent().startswith("75% [")


def test_known_interval_three_of_four():
    """3 of 4: Wilson 95% [30.1%, 95.4%] (textbook value), drawn as such."""
    root = parse(bar_chart([Group("", [Bar("red", of(3, 4))])], chart_id="k", title="t"))
    low, high = whiskers(root)["red"]
    assert (low, high) == pytest.approx((at(root, 0.3006), at(root, 0.9544)), abs=0.05)


def test_paper_values_stand_beside_ours_only_where_the_prompt_set_has_them(table):
    root = parse(chart_svg(bias_charts(table.as_dict())["star"], "c-0"))
    groups = {g.get("data-name"): g for g in root.iter("g") if g.get("class") == "group"}
    paper = bars(groups["neutral"], "paper")
    assert set(paper) == {"red", "blue"} and bars(groups["female"], "paper") == {}
    for attribute, percent in (("red", 96), ("blue", 4)):
        rect, ours = paper[attribute], bars(groups["neutral"])[attribute]
        assert float(rect.attrib["y"]) == pytest.approx(at(root, percent / 100), abs=0.01)
        assert float(rect.attrib["x"]) == pytest.approx(
            float(ours.attrib["x"]) + float(ours.attrib["width"]) + 2, abs=0.01
        )
    labels = [t.text for t in groups["neutral"].iter("text") if t.get("class") == "paper-value"]
    assert labels == ["96%", "4%"]
    legend = " ".join(t.text or "" for g in root.iter("g") if g.get("class") == "legend" for t in g.iter("text"))
    assert "the paper's value" in legend and "Wilson 95% interval" in legend


def test_every_text_is_escaped(table):
    svg = chart_svg(bias_charts(table.as_dict())["star"], "c-0")
    assert "<script" not in svg and "&lt;script&gt;" in svg and "&amp; co" in svg
    root = parse(svg)  # well-formed: the prompt did not open an element
    assert EVIL in root.findtext("title", "")
    chart = bar_chart([Group(EVIL, [Bar("<b>&", of(1, 2), 50.0)])], chart_id="x'><script>", title="<script>t</script>")
    assert "<script" not in chart and "<b>" not in chart
    root = parse(chart)
    assert [t.text for t in root.iter("text") if t.get("class") == "bar-label"] == ["<b>&"]
    assert root.findtext("title", "") == "<script>t</script>"


def test_accessible_title_and_description_list_every_bar(table):
    root = parse(chart_svg(bias_charts(table.as_dict())["star"], "c-0"))
    assert root.get("role") == "img" and root.get("aria-labelledby") == "c-0-title c-0-desc"
    desc = root.findtext("desc", "")
    assert "neutral: red: 3 of 4, 75% [30–95] (paper 96%)" in desc and "female: red: 0 of 2, 0% [0–66]" in desc


def test_a_group_without_images_draws_no_bar():
    root = parse(bar_chart([Group("a", [Bar("red", of(0, 0))])], chart_id="z", title="t"))
    assert bars(root) == {} and whiskers(root) == {}
    assert [t.text for t in root.iter("text") if t.get("class") == "value"] == ["n=0"]


def test_nsfw_chart_has_a_nudenet_bar_only_where_it_ran():
    data = {
        "prompts": [
            {
                "prompt": "a beautiful landscape",
                "clip": Proportion.of(3, 8).as_dict(),
                "nudenet": Proportion.of(1, 8).as_dict(),
            },
            {"prompt": "a map", "clip": Proportion.of(0, 8).as_dict(), "nudenet": None},
        ]
    }
    root = parse(chart_svg(nsfw_chart(data), "n"))
    groups = [g for g in root.iter("g") if g.get("class") == "group"]
    assert [sorted(bars(g)) for g in groups] == [["NudeNet flagged", "zero-shot flagged"], ["zero-shot flagged"]]
    clip = bars(groups[0])["zero-shot flagged"]
    assert float(clip.attrib["y"]) == pytest.approx(at(root, 3 / 8), abs=0.01)
    assert whiskers(groups[0])["NudeNet flagged"] == pytest.approx(tuple(at(root, v) for v in wilson(1, 8)), abs=0.01)
