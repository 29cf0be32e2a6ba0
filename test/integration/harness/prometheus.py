# SPDX-License-Identifier: Apache-2.0
"""The module's Prometheus exposition (SetHandler mcp-auth-metrics): a
strict reader of the text format 0.0.4, a scrape, one series' value."""

import math
import re

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
SAMPLE = re.compile(rf'^({NAME})(?:\{{((?:{NAME}="(?:[^"\\\n]|\\.)*",?)*)\}})? (\S+)$')
LABEL = re.compile(rf'({NAME})="((?:[^"\\\n]|\\.)*)"')


def parse_prometheus(text):
    """A strict reader of the text exposition format 0.0.4: {(name,
    frozenset(labels)): value}. Fails on anything it does not expect."""
    assert text.endswith("\n"), "the exposition ends with a newline"
    families, types, series = {}, {}, {}
    current = None
    for line in text.split("\n")[:-1]:
        assert line, "no empty lines"
        if line.startswith("# HELP "):
            name, _, help_text = line[7:].partition(" ")
            assert re.fullmatch(NAME, name) and help_text, line
            assert name not in families, f"family {name} announced twice"
            families[name] = help_text
            current = name
            continue
        if line.startswith("# TYPE "):
            name, _, kind = line[7:].partition(" ")
            assert name == current, f"TYPE {name} without its HELP first"
            assert kind in ("counter", "gauge", "histogram"), line
            types[name] = kind
            continue
        assert not line.startswith("#"), line
        m = SAMPLE.match(line)
        assert m, f"not a sample line: {line!r}"
        name, labels, value = m.group(1), m.group(2) or "", m.group(3)
        kind = types.get(current)
        allowed = {current} if kind != "histogram" else {current + "_bucket", current + "_sum", current + "_count"}
        assert name in allowed, f"{name} is not of the family announced last ({current})"
        if kind == "counter":
            assert name.endswith("_total"), f"counter {name} without _total"
        pairs = LABEL.findall(labels)
        assert ",".join(f'{k}="{v}"' for k, v in pairs) == labels.rstrip(","), line
        key = (name, frozenset(pairs))
        assert key not in series, f"duplicate series {line}"
        v = float(value)
        assert not math.isnan(v) and v >= 0, line
        series[key] = v
    for name, kind in types.items():
        if kind != "histogram":
            continue
        by_kind = {}
        for (n, labels), v in series.items():
            if n == name + "_bucket":
                d = dict(labels)
                le = d.pop("le")
                by_kind.setdefault(frozenset(d.items()), []).append((math.inf if le == "+Inf" else float(le), v))
        for rest, buckets in by_kind.items():
            buckets.sort()
            counts = [v for _, v in buckets]
            assert counts == sorted(counts), f"{name}: buckets not cumulative"
            assert buckets[-1][0] == math.inf, f"{name}: no +Inf bucket"
            assert series[(name + "_count", rest)] == buckets[-1][1], f"{name}: _count is not the +Inf bucket"
    return series


def scrape(h):
    r = h.get("/mcp-auth-metrics")
    assert r.status == 200, r
    assert r.header("Content-Type") == "text/plain; version=0.0.4; charset=utf-8"
    return parse_prometheus(r.text)


def value(series, name, **labels):
    return series.get((name, frozenset(labels.items())), 0.0)
