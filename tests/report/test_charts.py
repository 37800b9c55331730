"""SVG charts: well-formed XML, data labels escaped, axes covering the data, graph layers."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from synthrun.report import charts

NS = "{http://www.w3.org/2000/svg}"


def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)
    assert root.tag == f"{NS}svg" and float(root.get("width")) > 0 and float(root.get("height")) > 0
    return root


def texts(root: ET.Element) -> list[str]:
    return [t.text or "" for t in root.iter(f"{NS}text")]


def test_nice_ticks_cover_the_range():
    for lo, hi in [(0, 26), (0, 1), (0, 0.003), (3, 97), (0, 100000), (-2, 5)]:
        ticks = charts.nice_ticks(lo, hi)
        assert ticks[0] <= lo and ticks[-1] >= hi and ticks == sorted(ticks), (lo, hi, ticks)
        assert 2 <= len(ticks) <= 12


def test_labels_from_data_are_text_not_markup():
    hostile = '<script>alert(1)</script>"&'
    svg = charts.hbar_chart([hostile, "b"], [("x", [1, 2]), ("y", [3, 4])], title=hostile)
    root = parse(svg)  # parses as XML: nothing broke out of an attribute or element
    assert "<script>" not in svg
    assert not list(root.iter(f"{NS}script")) and not list(root.iter("script"))
    assert any(hostile[:20] in t for t in texts(root))


def test_bars_scale_to_the_largest_total():
    root = parse(charts.hbar_chart(["a", "b"], [("n", [26, 13])], "t"))
    widths = [float(r.get("width")) for r in root.iter(f"{NS}rect")]
    assert widths[0] == 2 * widths[1] > 0
    assert "30" in texts(root)  # the axis reaches past the largest bar


def test_histogram_draws_threshold_and_bands():
    root = parse(charts.histogram([(-0.5, 0.5, 1), (0.5, 1.5, 4)], "h", threshold=1.0,
                                  bands={"FAIL": (-1e9, 0.5), "PASS": (1.0, 1e9)}))
    assert "threshold 1" in texts(root) and "FAIL" in texts(root) and "PASS" in texts(root)
    dashed = [ln for ln in root.iter(f"{NS}line") if ln.get("stroke-dasharray")]
    assert len(dashed) == 1


def test_line_chart_and_vbar_chart():
    root = parse(charts.line_chart([("a", [6, 7, 8], [0.9, 0.5, 0.2]), ("b", [6, 8], [0.3, None])], "r"))
    assert len(list(root.iter(f"{NS}polyline"))) == 1 and len(list(root.iter(f"{NS}circle"))) == 4
    root = parse(charts.vbar_chart(["local", "openai"], [0.0, None], "cost"))
    assert "n/a" in texts(root)


def test_graph_layers_follow_edges_and_survive_cycles():
    layers = charts._layers(["a", "b", "c", "d"], {"a": ["b"], "b": ["c"], "c": ["a"], "d": ["c"]})
    assert layers["a"] < layers["b"] < layers["c"]
    root = parse(charts.graph(["open", "read", "close"], [("open", "read"), ("open", "close")], "g",
                              {"open": 1.0, "read": 0.0}))
    assert len(list(root.iter(f"{NS}path"))) >= 2
    fills = {r.find(f"{NS}title").text.split(":")[0]: r.get("fill") for r in root.iter(f"{NS}rect")
             if r.find(f"{NS}title") is not None}
    assert fills["open"] != fills["read"] and fills["close"] == "#eee"


def test_scatter_rings_selected_points():
    root = parse(charts.scatter([(0, 0, 0, True), (1, 1, 1, False), (2, 0, 1, False)], "m"))
    circles = list(root.iter(f"{NS}circle"))
    assert len(circles) == 3 and sum(c.get("stroke") == "#000" for c in circles) == 1


def test_threshold_on_integer_scores_sits_at_the_edge_of_its_bin():
    bins = [(k - 0.5, k + 0.5, k) for k in range(11)]
    root = parse(charts.histogram(bins, "h", threshold=7, bands={"PASS": (7, 1e9)}))
    line = next(ln for ln in root.iter(f"{NS}line") if ln.get("stroke-dasharray"))
    bar7 = next(r for r in root.iter(f"{NS}rect") if (r.findtext(f"{NS}title") or "").startswith("[6.5, 7.5)"))
    assert abs(float(line.get("x1")) - (float(bar7.get("x")) - 1)) < 0.2  # rects are inset by 1 px
    band = next(r for r in root.iter(f"{NS}rect") if r.findtext(f"{NS}title") == "PASS")
    assert band.get("x") == line.get("x1")
    assert "threshold 7" in texts(root)
