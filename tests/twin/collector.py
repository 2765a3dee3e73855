"""What a task's metrics collector would publish: its configuration (AOT_CONFIG_CONTENT of the
"metrics" container, components/metrics.py) applied to the real /metrics of the process beside it.

The twin does not run the collector's image (a Go binary from public.ecr.aws). It reads the
target the configuration names, from inside the task's namespace as the collector would, and
applies the receiver's keep rule (Prometheus relabelling: the source labels joined by the
separator, the expression anchored at both ends) and the exporter's metric name selectors.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

SERIES = re.compile(r"^(?P<name>[A-Za-z_:][A-Za-z0-9_:]*)(?:\{(?P<labels>[^}]*)\})? \S+$")
LABEL = re.compile(r'(?P<key>[A-Za-z_][A-Za-z0-9_]*)="(?P<value>(?:[^"\\]|\\.)*)"')


@dataclass(frozen=True)
class Scrape:
    host: str
    port: int
    path: str
    interval: str


def config_of(collector: dict[str, Any]) -> dict[str, Any]:
    environment = {item["name"]: item["value"] for item in collector.get("environment", [])}
    return json.loads(environment["AOT_CONFIG_CONTENT"])


def _scrape_config(config: dict[str, Any]) -> dict[str, Any]:
    prometheus = config["receivers"]["prometheus"]["config"]
    (scrape,) = prometheus["scrape_configs"]
    return scrape


def target(config: dict[str, Any]) -> Scrape:
    scrape = _scrape_config(config)
    (static,) = scrape["static_configs"]
    (address,) = static["targets"]
    host, port = address.rsplit(":", 1)
    interval = config["receivers"]["prometheus"]["config"]["global"]["scrape_interval"]
    return Scrape(host, int(port), scrape.get("metrics_path", "/metrics"), interval)


def kept_series(config: dict[str, Any], text: str) -> dict[str, set[str]]:
    """Series name -> the label sets (as text) the receiver keeps, from a /metrics page."""
    kept: dict[str, set[str]] = {}
    for rule in _scrape_config(config)["metric_relabel_configs"]:
        assert rule["action"] == "keep", rule
    for line in text.splitlines():
        match = SERIES.match(line)
        if not match:
            continue
        labels = {m["key"]: m["value"] for m in LABEL.finditer(match["labels"] or "")}
        labels["__name__"] = match["name"]
        if all(_keeps(rule, labels) for rule in _scrape_config(config)["metric_relabel_configs"]):
            kept.setdefault(match["name"], set()).add(match["labels"] or "")
    return kept


def _keeps(rule: dict[str, Any], labels: dict[str, str]) -> bool:
    joined = rule.get("separator", ";").join(labels.get(name, "") for name in rule["source_labels"])
    return re.fullmatch(rule["regex"], joined) is not None


def selectors(config: dict[str, Any]) -> list[str]:
    (declaration,) = config["exporters"]["awsemf"]["metric_declarations"]
    return list(declaration["metric_name_selectors"])


def published(config: dict[str, Any], text: str) -> set[str]:
    """The metric names the exporter would publish: a histogram's series (_bucket, _sum,
    _count) make one metric under its base name, as the prometheus receiver assembles it."""
    kept = set(kept_series(config, text))
    names = set()
    for series in kept:
        base = re.sub(r"_(bucket|sum|count)$", "", series)
        name = base if base != series and {f"{base}_sum", f"{base}_count"} <= kept else series
        if any(re.match(selector, name) for selector in selectors(config)):
            names.add(name)
    return names
