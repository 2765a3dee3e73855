"""Which of the environment's own metrics (namespace Dynamo/<env>) a synthesized stack uses, and
where: its scaling policies, its alarms and its dashboard, read from the JSON alone."""

from __future__ import annotations

import json
from dataclasses import dataclass

from tests.stack_json import construct_path, resources


@dataclass(frozen=True)
class Use:
    where: str  # construct path, or "dashboard: <widget title>"
    namespace: str
    metric_name: str
    dimensions: tuple[tuple[str, str], ...]  # sorted

    @property
    def service(self) -> str:
        return dict(self.dimensions).get("Service", "")


def _dimensions(value: dict[str, str] | list[dict[str, str]]) -> tuple[tuple[str, str], ...]:
    if isinstance(value, list):
        return tuple(sorted((item["name"], item["value"]) for item in value))
    return tuple(sorted(value.items()))


def uses(stack: dict, namespace: str) -> list[Use]:
    found = []
    for body in resources(stack, "aws_appautoscaling_policy").values():
        spec = (body.get("target_tracking_scaling_policy_configuration") or {}).get("customized_metric_specification")
        if spec:
            found.append(
                Use(construct_path(body), spec["namespace"], spec["metric_name"], _dimensions(spec["dimensions"]))
            )
    for body in resources(stack, "aws_cloudwatch_metric_alarm").values():
        if "metric_name" in body:
            found.append(
                Use(construct_path(body), body["namespace"], body["metric_name"], _dimensions(body["dimensions"]))
            )
        for query in body.get("metric_query", []):
            if "metric" in query:
                metric = query["metric"]
                found.append(
                    Use(
                        construct_path(body),
                        metric["namespace"],
                        metric["metric_name"],
                        _dimensions(metric["dimensions"]),
                    )
                )
    for body in resources(stack, "aws_cloudwatch_dashboard").values():
        for widget in json.loads(body["dashboard_body"])["widgets"]:
            for row in widget["properties"]["metrics"]:
                fields = [item for item in row if not isinstance(item, dict)]
                pairs = dict(zip(fields[2::2], fields[3::2], strict=True))
                found.append(
                    Use(f"dashboard: {widget['properties']['title']}", fields[0], fields[1], _dimensions(pairs))
                )
    return [use for use in found if use.namespace == namespace]
