"""`main.py review` checks security-group changes against the connections the twin recorded
(docs/measurements/twin-flows.json, review/flows.py). The stacks are the session's synth of the
shipped files, edited as a code change to components/security_groups.py would edit them."""

from __future__ import annotations

import copy
import datetime
from collections.abc import Callable
from typing import Any

import pytest

from environments.loader import ENVIRONMENTS_DIR, load
from review.cli import synth_review
from review.cost import load_prices
from review.flows import EGRESS, INGRESS, RECORD_FILE, admitted, recorded_flows
from review.render import EnvironmentReview
from review.stack import Stack, from_synth
from tests.conftest import ENVIRONMENTS, unreviewed

TODAY = datetime.date(2026, 11, 26)

Edit = Callable[[dict[str, Any]], None]


def rule_id(document: dict[str, Any], resource_type: str, path: str) -> str:
    """The logical id of the rule at construct path ``path`` (e.g. security-groups/in-frontend-from-workers)."""
    (found,) = [
        logical
        for logical, body in document["resource"][resource_type].items()
        if body["//"]["metadata"]["path"].split("/", 1)[1] == path
    ]
    return found


@pytest.fixture(scope="module")
def review_edit(stacks: dict[str, dict[str, Any]]) -> Callable[[str, Edit], EnvironmentReview]:
    prices = load_prices()

    def review_edit(env: str, edit: Edit) -> EnvironmentReview:
        document = copy.deepcopy(stacks[env])
        edit(document)
        environment = load(ENVIRONMENTS_DIR / f"{env}.toml")
        return synth_review(
            before=from_synth(stacks[env], name=f"dynamo-{env}"),
            after=from_synth(document, name=f"dynamo-{env}"),
            before_file=environment,
            after_file=environment,
            prices=prices,
            today=TODAY,
        )

    return review_edit


def high(review: EnvironmentReview) -> list[str]:
    return [flag.text for flag in review.flags if flag.severity == "high"]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_shipped_stacks_admit_every_flow_the_twin_recorded_by_the_rules_it_names(
    env: str, stacks: dict[str, dict[str, Any]]
) -> None:
    """Fast guard on the record (the twin layer checks it against a run): every rule it names exists,
    and the review's reading of the rules admits every recorded flow of the stack as shipped."""
    stack = from_synth(stacks[env], name=f"dynamo-{env}")
    recorded = recorded_flows(stack.name)
    if recorded is None:  # a new environment (README: Adding an environment)
        unreviewed(
            f"{RECORD_FILE.name} has no connections of {stack.name}: the review cannot check its security groups "
            "until `make twin-flows` records them; commit the file"
        )
        return
    assert recorded, f"{RECORD_FILE.name} records no connection of {stack.name}"
    paths = {
        body["//"]["metadata"]["path"].split("/", 1)[1]
        for resource_type in (INGRESS, EGRESS)
        for body in stacks[env]["resource"][resource_type].values()
    }
    for flow in recorded:
        assert set(flow.rules) <= paths, f"{flow.label}: the record names rules the stack does not have"
        assert admitted(stack, flow) is True, flow.label


def test_a_rule_removed_is_a_high_flag_for_each_connection_it_carried(review_edit) -> None:
    """The defect this project shipped once: workers could not stream responses back to the frontend."""

    def remove(document: dict[str, Any]) -> None:
        del document["resource"][INGRESS][rule_id(document, INGRESS, "security-groups/in-frontend-from-workers")]

    review = review_edit("staging", remove)
    (flagged,) = high(review)
    assert flagged.startswith(
        "after this change the security groups drop `decode -> frontend:9101`, `prefill -> frontend:9101`: "
        "2 connections the twin observed while dynamo-staging served, admitted by "
        "security-groups/in-frontend-from-workers, security-groups/out-workers-to-frontend when recorded."
    ), flagged


def test_a_rule_narrowed_off_a_port_in_use_is_a_high_flag(review_edit) -> None:
    def narrow(document: dict[str, Any]) -> None:
        rule = document["resource"][EGRESS][rule_id(document, EGRESS, "security-groups/out-frontend-to-workers")]
        rule["from_port"] = rule["to_port"] = 9200

    (flagged,) = high(review_edit("dev", narrow))
    assert flagged.startswith("after this change the security groups drop `frontend -> decode:9100`: a connection")


def test_a_rule_moved_to_a_new_address_keeps_every_connection(review_edit) -> None:
    """Renamed in the code: Terraform destroys one rule and creates its twin; nothing is lost once applied."""

    def rename(document: dict[str, Any]) -> None:
        rules = document["resource"][INGRESS]
        rules["renamed_in-frontend-from-workers"] = rules.pop(
            rule_id(document, INGRESS, "security-groups/in-frontend-from-workers")
        )

    review = review_edit("staging", rename)
    assert not high(review), review.flags
    (flag,) = review.flags
    assert "every one of the 23 connections the twin observed while dynamo-staging served stays admitted" in flag.text


def test_a_new_rule_no_observed_connection_needs_is_named(review_edit) -> None:
    def alb_to_etcd(document: dict[str, Any]) -> None:
        template = document["resource"][INGRESS][rule_id(document, INGRESS, "security-groups/in-etcd-from-frontend")]
        alb = document["resource"][INGRESS][rule_id(document, INGRESS, "security-groups/in-frontend-from-alb")]
        document["resource"][INGRESS]["extra_in-etcd-from-alb"] = {
            **template,
            "referenced_security_group_id": alb["referenced_security_group_id"],
        }

    review = review_edit("prod", alb_to_etcd)
    assert not high(review), review.flags
    (flag,) = review.flags
    assert flag.severity == "check"
    assert (
        "1 rule admits connections between dynamo-prod's parts that the twin never observed while it served: "
        f"`{INGRESS}.extra_in-etcd-from-alb`"
    ) in flag.text


def test_a_group_known_only_after_apply_is_not_called_broken(review_edit) -> None:
    """As in a plan that replaces the decode service's group: its id is unknown until apply."""

    def unknown_groups(document: dict[str, Any]) -> None:
        for service in document["resource"]["aws_ecs_service"].values():
            if service["name"] == "dynamo-dev-decode":
                del service["network_configuration"]["security_groups"]
        rule = document["resource"][INGRESS][rule_id(document, INGRESS, "security-groups/in-workers-from-frontend")]
        rule["description"] = "touched"

    review = review_edit("dev", unknown_groups)
    assert not high(review), review.flags
    (flag,) = review.flags
    decode = sorted(f"`{flow.label}`" for flow in recorded_flows("dynamo-dev") or [] if "decode" in flow.label)
    assert len(decode) == 4 and flag.severity == "check"
    assert f"whether 4 connections the twin observed while dynamo-dev served ({', '.join(decode)}) stay admitted" in (
        flag.text
    )


def test_a_stack_the_twin_has_no_record_of_gets_the_general_advice(stacks: dict[str, dict[str, Any]]) -> None:
    """An environment added since the record was written: the review says what it cannot check."""
    document = copy.deepcopy(stacks["dev"])
    del document["resource"][INGRESS][rule_id(document, INGRESS, "security-groups/in-frontend-from-workers")]
    environment = load(ENVIRONMENTS_DIR / "dev.toml")
    review = synth_review(
        before=from_synth(stacks["dev"], name="dynamo-qa"),
        after=from_synth(document, name="dynamo-qa"),
        before_file=environment,
        after_file=environment,
        prices=load_prices(),
        today=TODAY,
    )
    (flag,) = review.flags
    assert flag.severity == "check" and "the twin has no record of dynamo-qa's flows" in flag.text


def test_an_empty_stack_admits_nothing() -> None:
    flows = recorded_flows("dynamo-dev") or []
    assert flows and all(admitted(Stack("dynamo-dev", "us-east-1", {}), flow) is False for flow in flows)
