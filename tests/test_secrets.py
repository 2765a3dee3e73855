"""Secrets reach containers only from Secrets Manager, never as plain environment.

Walks every container definition of every aws_ecs_task_definition of every stack. The
detector is tested on planted containers first, so it cannot pass by seeing nothing.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from components.container import Container
from components.observability import LogGroup
from environments.loader import ENVIRONMENTS_DIR, load
from tests.conftest import ENVIRONMENTS

# Names that announce a credential. "PASSW" rather than "PASS" so NATS_SERVER's friends
# such as BYPASS_* are not flagged; KEY catches API_KEY, ACCESS_KEY, PRIVATE_KEY.
CREDENTIAL_NAME = re.compile(
    r"TOKEN|SECRET|PASSW|PASSPHRASE|PWD|KEY|CREDENTIAL|AUTH|PRIVATE|COOKIE|SESSION", re.IGNORECASE
)
# Values that are credentials whatever they are called.
CREDENTIAL_VALUES = {
    "Hugging Face token": re.compile(r"\bhf_[A-Za-z0-9]{20,}"),
    "AWS access key id": re.compile(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA)[0-9A-Z]{16}\b"),
    "AWS secret access key": re.compile(r"(?<![A-Za-z0-9/+])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])"),
    "NGC API key": re.compile(r"\bnvapi-[A-Za-z0-9_-]{20,}"),
    "GitHub token": re.compile(r"\bgh[pousr]_[A-Za-z0-9]{30,}"),
    "OpenAI-style key": re.compile(r"\bsk-[A-Za-z0-9_-]{20,}"),
    "JSON web token": re.compile(r"\beyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\."),
    "private key": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    "password in a URL": re.compile(r"://[^/\s:@]+:[^/\s@]+@"),
}


def credential_problems(container: dict[str, Any], allowed_secret_arns: set[str]) -> list[str]:
    """Everything wrong with how one container definition handles credentials."""
    name = container.get("name", "?")
    problems = []
    for variable in container.get("environment", []):
        key, value = variable["name"], str(variable.get("value", ""))
        if CREDENTIAL_NAME.search(key):
            problems.append(f"{name}: environment variable {key} looks like a credential; pass it through `secrets`")
        problems += [
            f"{name}: environment variable {key} holds a {kind}"
            for kind, pattern in CREDENTIAL_VALUES.items()
            if pattern.search(value)
        ]
    for index, argument in enumerate(container.get("command", []) + container.get("entryPoint", [])):
        problems += [
            f"{name}: command argument {index} holds a {kind}"
            for kind, pattern in CREDENTIAL_VALUES.items()
            if pattern.search(str(argument))
        ]
    if container.get("environmentFiles"):
        problems.append(f"{name}: environmentFiles bypass Secrets Manager (and this check); use `secrets`")
    for secret in container.get("secrets", []):
        if secret.get("valueFrom") not in allowed_secret_arns:
            problems.append(
                f"{name}: secret {secret.get('name')} comes from {secret.get('valueFrom')!r}, not a configured secret "
                "ARN"
            )
    credentials = container.get("repositoryCredentials")
    if credentials is not None and credentials.get("credentialsParameter") not in allowed_secret_arns:
        problems.append(
            f"{name}: repositoryCredentials from {credentials.get('credentialsParameter')!r}, not "
            "image.pull_credentials_secret_arn"
        )
    return problems


def configured(environment: str):
    return load(ENVIRONMENTS_DIR / f"{environment}.toml")


def task_containers(stack: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (address, container)
        for address, task in stack["resource"].get("aws_ecs_task_definition", {}).items()
        for container in json.loads(task["container_definitions"])
    ]


# --- the detector -------------------------------------------------------------------

HF_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:hf-token-AbCdEf"
PULL_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:ngc-pull-AbCdEf"


def good_container(**overrides: Any) -> dict[str, Any]:
    container = Container(
        name="decode",
        image="nvcr.io/nvidia/ai-dynamo/vllm-runtime:0.7.0",
        command=["python3", "-m", "dynamo.vllm", "--model", "Qwen/Qwen3-0.6B"],
        logs=LogGroup(
            name="/ecs/dynamo-test/decode", arn="arn:aws:logs:us-east-1:123456789012:log-group:x", region="us-east-1"
        ),
        environment={"ETCD_ENDPOINTS": "http://etcd.dynamo-test.local:2379", "HF_HOME": "/model-cache"},
        secrets={"HF_TOKEN": HF_ARN},
        repository_credentials_arn=PULL_ARN,
    ).definition()
    return {**container, **overrides}


def test_a_clean_container_passes() -> None:
    container = good_container()
    assert container["repositoryCredentials"] == {"credentialsParameter": PULL_ARN}
    assert credential_problems(container, {HF_ARN, PULL_ARN}) == []


@pytest.mark.parametrize(
    ("planted", "expected"),
    [
        ({"environment": [{"name": "HF_TOKEN", "value": "from-the-env-file"}]}, "HF_TOKEN looks like a credential"),
        ({"environment": [{"name": "NGC_API_KEY", "value": "x"}]}, "NGC_API_KEY looks like a credential"),
        ({"environment": [{"name": "DB_PASSWORD", "value": "x"}]}, "DB_PASSWORD looks like a credential"),
        (
            {"environment": [{"name": "AWS_SECRET_ACCESS_KEY", "value": "x"}]},
            "AWS_SECRET_ACCESS_KEY looks like a credential",
        ),
        (
            {"environment": [{"name": "REGISTRY_CREDENTIALS", "value": "x"}]},
            "REGISTRY_CREDENTIALS looks like a credential",
        ),
        (
            {"environment": [{"name": "MODEL_SOURCE", "value": "hf_AbCdEfGhIjKlMnOpQrStUvWx"}]},
            "holds a Hugging Face token",
        ),
        ({"environment": [{"name": "UPSTREAM", "value": "AKIAIOSFODNN7EXAMPLE"}]}, "holds a AWS access key id"),
        (
            {"environment": [{"name": "BLOB", "value": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}]},
            "holds a AWS secret access key",
        ),
        ({"environment": [{"name": "NGC", "value": "nvapi-AbCdEfGhIjKlMnOpQrStUvWx"}]}, "holds a NGC API key"),
        (
            {"environment": [{"name": "NATS_SERVER", "value": "nats://user:hunter2@nats:4222"}]},
            "holds a password in a URL",
        ),
        (
            {"command": ["python3", "-m", "dynamo.vllm", "--hf-token", "hf_AbCdEfGhIjKlMnOpQrStUvWx"]},
            "command argument 4 holds a Hugging Face token",
        ),
        (
            {"environmentFiles": [{"type": "s3", "value": "arn:aws:s3:::bucket/app.env"}]},
            "environmentFiles bypass Secrets Manager",
        ),
        (
            {
                "secrets": [
                    {
                        "name": "HF_TOKEN",
                        "valueFrom": "arn:aws:secretsmanager:us-east-1:123456789012:secret:someone-elses",
                    }
                ]
            },
            "not a configured secret ARN",
        ),
        (
            {"repositoryCredentials": {"credentialsParameter": HF_ARN.replace("hf-token", "other")}},
            "not image.pull_credentials_secret_arn",
        ),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_the_detector_catches_a_planted_credential(planted: dict[str, Any], expected: str) -> None:
    problems = credential_problems(good_container(**planted), {HF_ARN, PULL_ARN})
    assert any(expected in problem for problem in problems), problems


def test_the_detector_passes_what_the_stacks_legitimately_carry() -> None:
    """Endpoints, ARNs and JSON vLLM flags are not credentials."""
    container = good_container(
        environment=[
            {"name": "NATS_SERVER", "value": "nats://nats.dynamo-prod.local:4222"},
            {"name": "DYN_SYSTEM_PORT", "value": "9090"},
        ],
        command=[
            "python3",
            "-m",
            "dynamo.vllm",
            "--kv-transfer-config",
            '{"kv_connector":"NixlConnector","kv_role":"kv_both"}',
        ],
    )
    assert credential_problems(container, {HF_ARN, PULL_ARN}) == []


# --- the stacks ---------------------------------------------------------------------


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_no_credentials_outside_secrets(environment: str, stacks: dict[str, dict]) -> None:
    env = configured(environment)
    allowed = {arn for arn in (env.model.hf_token_secret_arn, env.image.pull_credentials_secret_arn) if arn}
    containers = task_containers(stacks[environment])
    assert len(containers) >= 4, (
        f"dynamo-{environment}: expected etcd, NATS, frontend and worker containers, found {len(containers)}"
    )
    assert sum(len(container.get("environment", [])) for _, container in containers) > 0, (
        "no environment variables scanned"
    )
    problems = [
        f"{address}: {problem}"
        for address, container in containers
        for problem in credential_problems(container, allowed)
    ]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_configured_secrets_arrive_where_needed(environment: str, stacks: dict[str, dict]) -> None:
    """HF_TOKEN reaches every vLLM worker from its secret; pull credentials reach every Dynamo container."""
    env = configured(environment)
    containers = {container["name"]: container for _, container in task_containers(stacks[environment])}
    for role in env.gpu_workers():
        secrets = {secret["name"]: secret["valueFrom"] for secret in containers[role].get("secrets", [])}
        expected = {"HF_TOKEN": env.model.hf_token_secret_arn} if env.model.hf_token_secret_arn else {}
        assert secrets == expected, f"dynamo-{environment} {role}: secrets {secrets}, expected {expected}"
    for name in ("frontend", *env.gpu_workers()):
        credentials = containers[name].get("repositoryCredentials")
        expected = (
            {"credentialsParameter": env.image.pull_credentials_secret_arn}
            if env.image.pull_credentials_secret_arn
            else None
        )
        assert credentials == expected, (
            f"dynamo-{environment} {name}: repositoryCredentials {credentials}, expected {expected}"
        )
    for name in ("etcd", "nats"):
        assert not containers[name].get("secrets") and "repositoryCredentials" not in containers[name], (
            f"{name} needs no secrets"
        )


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_only_the_execution_role_reads_exactly_the_configured_secrets(
    environment: str, stacks: dict[str, dict]
) -> None:
    env = configured(environment)
    allowed = sorted(arn for arn in (env.model.hf_token_secret_arn, env.image.pull_credentials_secret_arn) if arn)
    reads = []
    for address, policy in stacks[environment]["resource"].get("aws_iam_role_policy", {}).items():
        for statement in json.loads(policy["policy"])["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            if any(action.startswith("secretsmanager:") or action == "*" for action in actions):
                reads.append((address, policy["role"], actions, statement["Resource"]))
    if not allowed:
        assert reads == [], f"dynamo-{environment} has no secrets configured but grants {reads}"
        return
    assert len(reads) == 1, reads
    address, role, actions, resources = reads[0]
    assert "execution" in role, f"{address}: secrets must be read by the task execution role, not {role}"
    assert actions == ["secretsmanager:GetSecretValue"], actions
    assert sorted(resources if isinstance(resources, list) else [resources]) == allowed, resources


def test_secret_values_never_appear_in_the_synthesized_json(synth_dir: Path) -> None:
    """Belt and braces: nothing credential-shaped anywhere in the output, not only in containers."""
    findings = []
    for path in sorted(synth_dir.glob("stacks/*/cdk.tf.json")):
        text = path.read_text()
        for kind, pattern in CREDENTIAL_VALUES.items():
            if kind == "AWS secret access key":
                continue  # 40-character runs also occur in cdktf hashes and base64 user data
            findings += [f"{path.parent.name}: {kind}: {match.group(0)[:12]}…" for match in pattern.finditer(text)]
    assert not findings, "\n".join(findings)
