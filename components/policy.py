"""IAM policy documents, built one way for every role, key, bucket and file system policy."""

from __future__ import annotations

import json
from typing import Any

Statement = dict[str, Any]


def statement(
    *,
    action: str | list[str],
    resource: str | list[str] | None = None,
    effect: str = "Allow",
    sid: str | None = None,
    principal: str | dict[str, Any] | None = None,
    condition: dict[str, Any] | None = None,
) -> Statement:
    """One statement, its keys in the order AWS documents them (Sid, Effect, Principal, Action, Resource, Condition)."""
    fields: Statement = {"Sid": sid, "Effect": effect, "Principal": principal, "Action": action}
    fields.update({"Resource": resource, "Condition": condition})
    return {key: value for key, value in fields.items() if value is not None}


def policy_document(*statements: Statement) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def assume_role_policy(service: str, *, source_account: str | None = None) -> str:
    """Who may assume a role: one AWS service, and with ``source_account`` only on behalf of that
    account's resources (the confused-deputy guard).

    The principals are ``<service>.amazonaws.com`` in every region the schema accepts (all
    in the ``aws`` partition). A partition's DNS suffix is not a service principal rule:
    in aws-cn, EC2's principal is ec2.amazonaws.com.cn but Lambda's is lambda.amazonaws.com
    (aws/aws-cdk#24709, aws/aws-cdk#2198), so supporting another partition means a table.
    """
    condition = {"StringEquals": {"aws:SourceAccount": source_account}} if source_account else None
    return policy_document(statement(principal={"Service": service}, action="sts:AssumeRole", condition=condition))
