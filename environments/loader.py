"""Environment files -> validated models, or one line per problem.

Every problem a user can cause ends up as ``<file>: <field path>: <what is allowed>``
(or ``<file>: line N: ...`` for TOML syntax), collected in a ConfigError.
"""

from __future__ import annotations

import ipaddress
import json
import posixpath
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from environments.fit import image_warnings
from environments.models import COUNTABLE_ARCHITECTURES, facts_from_config
from environments.schema import Environment, HcpBackendConfig, S3BackendConfig, account_ids, did_you_mean

ENVIRONMENTS_DIR = Path(__file__).resolve().parent
BACKEND_TAGS = ("local", "s3", "hcp")
_REQUIRED_FACTS = ("parameters", "dtype", "layers", "attention_heads", "kv_heads", "head_dim", "max_context")


class ConfigError(Exception):
    """One or more problems in environment files, each a complete one-line message."""

    def __init__(self, lines: list[str]):
        super().__init__("\n".join(lines))
        self.lines = lines


def environment_files(directory: Path = ENVIRONMENTS_DIR) -> list[Path]:
    return sorted(directory.glob("*.toml"))


def load(path: Path, shown_as: str | None = None) -> Environment:
    """Read and validate one environment file; ``shown_as`` is the name used in messages."""
    label = shown_as or str(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError([f"{label}: file not found"]) from None
    except OSError as error:
        raise ConfigError([f"{label}: cannot read the file ({error.strerror})"]) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ConfigError(
            [f"{label}: not UTF-8 text (byte 0x{raw[error.start]:02x} at offset {error.start}); save it as UTF-8"]
        ) from None
    if not text.strip():
        raise ConfigError([f"{label}: the file is empty; it needs at least `name` and `region`"])
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError([f"{label}: {_toml_error(error, text)}"]) from None
    document = _with_config_json_facts(document, path, label)
    try:
        return Environment.model_validate(document)
    except ValidationError as error:
        raise ConfigError([f"{label}: {line}" for line in _validation_lines(error)]) from None


def _with_config_json_facts(document: dict[str, Any], path: Path, label: str) -> dict[str, Any]:
    """model.config_json's facts under the ones [model.facts] gives, as [model.facts]."""
    model = document.get("model")
    if not isinstance(model, dict) or not isinstance(model.get("config_json"), str):
        return document
    relative = model["config_json"]
    where = f"{label}: model.config_json"
    source = path.parent / relative
    try:
        config = json.loads(source.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError([f"{where}: no file {relative} (a path relative to the environment file)"]) from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError([f"{where}: cannot read {relative} ({error})"]) from None
    except json.JSONDecodeError as error:
        raise ConfigError([f"{where}: {relative} is not JSON (line {error.lineno}: {error.msg})"]) from None
    if not isinstance(config, dict):
        raise ConfigError([f"{where}: {relative} is not a config.json (not a JSON object)"])
    stated = model.get("facts")
    given: dict[str, Any] = stated if isinstance(stated, dict) else {}
    facts = {**facts_from_config(config), **given}
    missing = [name for name in _REQUIRED_FACTS if name not in facts]
    if missing:
        raise ConfigError(
            [
                f"{where}: {relative} does not say {', '.join(missing)} (config.json never says gated; parameters "
                f"only for {', '.join(COUNTABLE_ARCHITECTURES)} unquantized); give them in [model.facts]"
            ]
        )
    return {**document, "model": {**model, "facts": facts}}


def load_all(
    paths: list[Path],
    shown_as: dict[Path, str] | None = None,
    *,
    others: list[Path] | None = None,
    warnings: list[str] | None = None,
) -> list[Environment]:
    """Load several files, report every file's problems together, and check them against each other.

    ``others`` are environment files not being synthesized this time (the rest of
    environments/ when a run picks some): the selected files must not clash with them either,
    but their own mistakes are not reported here. Warnings, one line each, go to ``warnings``.
    """
    shown_as = shown_as or {}
    loaded: list[tuple[str, Environment, bool]] = []
    lines: list[str] = []
    for path in others or []:
        try:
            loaded.append((shown_as.get(path, str(path)), load(path, shown_as.get(path)), False))
        except ConfigError:
            pass
    for path in paths:
        try:
            loaded.append((shown_as.get(path, str(path)), load(path, shown_as.get(path)), True))
        except ConfigError as error:
            lines += error.lines
    lines += _clashes(loaded)
    if lines:
        raise ConfigError(lines)
    if warnings is not None:
        warnings += _overlapping_networks(loaded)
        for label, environment, selected in loaded:
            if selected:
                warnings += [f"{label}: {path}: {message}" for path, message in image_warnings(environment.image.tag)]
    return sorted(
        (environment for _, environment, selected in loaded if selected), key=lambda environment: environment.name
    )


def _claims(environment: Environment) -> list[tuple[str, tuple[str, ...], str]]:
    """What an environment must have to itself: (field, key, how a clash is explained)."""
    name = environment.name
    claims: list[tuple[str, tuple[str, ...], str]] = [
        (
            "name",
            ("name", name),
            f'"{name}" is already used by {{other}}; each environment needs its own name (its stack and state)',
        )
    ]
    backend = environment.backend
    if isinstance(backend, S3BackendConfig):
        claims.append(
            (
                "backend.key",
                ("s3", backend.bucket, backend.key),
                f'"{backend.key}" in bucket "{backend.bucket}" is already the state of {{other}}; '
                "each environment needs a state of its own: give it another key",
            )
        )
    elif isinstance(backend, HcpBackendConfig):
        claims.append(
            (
                "backend.workspace",
                ("hcp", backend.hostname, backend.organization, backend.workspace),
                f'"{backend.workspace}" in organization "{backend.organization}" is already the state of {{other}}; '
                "each environment needs a workspace of its own",
            )
        )
    else:
        state = backend.state_path(environment.stack_name)
        # Relative paths start from each stack's own directory: compare where they lead.
        where = (
            state
            if posixpath.isabs(state)
            else posixpath.normpath(posixpath.join("stacks", environment.stack_name, state))
        )
        claims.append(
            (
                "backend.path",
                ("local", where),
                f'"{state}" is already the state file of {{other}}; each environment needs a state file of its own',
            )
        )
    return claims


def _clashes(loaded: list[tuple[str, Environment, bool]]) -> list[str]:
    """One line per selected environment that claims what an earlier one already has.

    Files not being synthesized come first in ``loaded``, so a clash with one of them is
    reported on the selected file; two unselected files are left to their own run."""
    owners: dict[tuple[str, ...], tuple[int, str]] = {}
    lines = []
    for index, (label, environment, selected) in enumerate(loaded):
        clashed = False
        for field, key, explanation in _claims(environment):
            owner, other = owners.setdefault(key, (index, label))
            # The default local state path follows the name: a taken name is the one mistake.
            if owner == index or (clashed and field == "backend.path") or not selected:
                continue
            clashed = True
            lines.append(f"{label}: {field}: {explanation.format(other=other)}")
    return lines


def _overlapping_networks(loaded: list[tuple[str, Environment, bool]]) -> list[str]:
    """Environments in one region and account whose VPC ranges overlap: they can never be peered.

    An account is known only from the ARNs a file names; where either is unknown, the two are
    taken to share one. Reported on the later file, or on the selected one of the pair."""
    lines = []
    for index, (first_label, first, first_selected) in enumerate(loaded):
        for label, environment, selected in loaded[index + 1 :]:
            if not (first_selected or selected) or first.region != environment.region:
                continue
            accounts, first_accounts = account_ids(environment), account_ids(first)
            if accounts and first_accounts and not accounts & first_accounts:
                continue
            cidr, first_cidr = environment.network.cidr, first.network.cidr
            if not ipaddress.IPv4Network(cidr).overlaps(ipaddress.IPv4Network(first_cidr)):
                continue
            if first_selected and not selected:
                (label, cidr), (first_label, first_cidr) = (first_label, first_cidr), (label, cidr)
            shared = accounts & first_accounts
            account = f"account {', '.join(sorted(shared))}" if shared else "perhaps one account: their ARNs do not say"
            lines.append(
                f"{label}: network.cidr: warning: {cidr} overlaps {first_cidr} of {first_label} (both in "
                f"{environment.region}, "
                f"{account}); the two VPCs can never be peered or share a transit gateway: pick a range of its own"
            )
    return lines


# tomllib's messages, in plain words (the parser's own words follow in parentheses).
_TOML_PLAIN = {
    "Cannot overwrite a value": "this key is set twice; each key once per [section]",
    "Cannot declare": "this [section] is declared twice",
    "Expected '=' after a key in a key/value pair": 'a key needs = and a value, like region = "us-east-1"',
    "Expected ']' at the end of a table declaration": "a [section] header needs its closing ]",
    "Illegal character '\\n'": "a string is not closed: end it with a quote on the same line",
    "Unterminated string": "a string is not closed: end it with a quote",
    "Invalid value": 'a value is missing or not TOML: strings need quotes (name = "dev"), numbers and true/false none',
    "Invalid initial character for a key part": "a line starts with something that is not a key, a [section] or #",
}


def _plain(reason: str) -> str:
    plain = next((text for prefix, text in _TOML_PLAIN.items() if reason.startswith(prefix)), None)
    return f"{plain} (parser: {reason})" if plain else reason


def _toml_error(error: tomllib.TOMLDecodeError, text: str) -> str:
    message = str(error)
    # tomllib: "Expected '=' after a key in a key/value pair (at line 3, column 7)"
    if message.endswith(")") and "(at line " in message:
        reason, _, where = message[:-1].rpartition(" (at ")
        line, _, column = where.partition(",")
        line = line.removeprefix("line ").strip()
        return f"line {line}: TOML syntax error at{column}: {_plain(reason)}"
    # "... (at end of document)": the last line is where the value or bracket is missing.
    if message.endswith(" (at end of document)"):
        last = len(text.rstrip("\n").split("\n"))
        reason = message.removesuffix(" (at end of document)")
        return f"line {last}: TOML syntax error at the end of the file: {_plain(reason)}"
    return f"TOML syntax error: {message}"


def _validation_lines(error: ValidationError) -> list[str]:
    lines = []
    for item in error.errors():
        location = _location(item["loc"])
        if item["type"] == "config":
            for relative, message in item["ctx"]["problems"]:
                path = ".".join(part for part in (location, relative) if part)
                lines.append(f"{path}: {message}")
            continue
        if item["type"] in ("union_tag_invalid", "union_tag_not_found"):
            # A discriminated union (the backend): the mistake is in its `type` key.
            discriminator = item["ctx"]["discriminator"].strip("'")
            location = f"{location}.{discriminator}"
        lines.append(f"{location or '(top level)'}: {_describe(item)}")
    return [line.replace("\n", " ") for line in lines]


def _location(loc: tuple[Any, ...]) -> str:
    parts = list(loc)
    if len(parts) > 1 and parts[0] == "backend" and parts[1] in BACKEND_TAGS:
        del parts[1]
    return ".".join(str(part) for part in parts)


def _describe(item: ErrorDetails) -> str:
    kind = item["type"]
    value = item.get("input")
    if kind == "missing":
        return "required field is missing"
    if kind == "extra_forbidden":
        allowed = _allowed_fields(item["loc"][:-1])
        close = did_you_mean(item["loc"][-1], allowed) if allowed else ""
        return f"unknown field{close}; allowed here: {', '.join(allowed)}" if allowed else "unknown field"
    if kind == "union_tag_invalid":
        expected = item["ctx"]["expected_tags"].replace("'", "")
        return f"unknown type {item['ctx']['tag']!r}; allowed: {expected}"
    if kind == "union_tag_not_found":
        return f"required field is missing; allowed: {', '.join(BACKEND_TAGS)}"
    if kind in _EXPECTED:
        return f"must be {_EXPECTED[kind]}, got {_toml_type(value)} {_shown(value)}"
    if kind in _BOUNDS:
        return _bounds_message(item)
    message: str = item["msg"]
    if kind in _NAMES_THE_VALUE:
        return message
    if kind == "string_pattern_mismatch":
        message = f"does not match the allowed form {item['ctx']['pattern']}"
    if isinstance(value, (str, int, float, bool)) and not isinstance(value, dict):
        return f"{message} (got {value!r})"
    return message


# Custom errors whose message already names the value.
_NAMES_THE_VALUE = ("region", "instance_type", "retention", "cron")

# Type mistakes, in TOML's words: what the field takes.
_EXPECTED = {
    "int_type": "a whole number (no quotes)",
    "int_from_float": "a whole number (no quotes)",
    "int_parsing": "a whole number (no quotes)",
    "bool_type": "true or false (no quotes)",
    "bool_parsing": "true or false (no quotes)",
    "string_type": "a quoted string",
    "list_type": 'an array like ["a", "b"]',
    "model_type": "a table (a [section] or { key = value })",
    "model_attributes_type": "a table (a [section] or { key = value })",
    "dict_type": "a table (a [section] or { key = value })",
}
_BOUNDS = ("greater_than_equal", "less_than_equal", "too_short", "too_long", "string_too_short", "string_too_long")


def _toml_type(value: Any) -> str:
    kinds = ((bool, "boolean"), (int, "integer"), (float, "float"), (str, "string"), (list, "array"), (dict, "table"))
    return next((name for kind, name in kinds if isinstance(value, kind)), type(value).__name__)


def _shown(value: Any) -> str:
    text = repr(value) if not isinstance(value, bool) else str(value).lower()
    return text if len(text) <= 60 else text[:57] + "..."


def _bounds_message(item: ErrorDetails) -> str:
    """`must be between 1 and 4000 (got 4001)`, with both bounds when the field has them."""
    if item["type"] in ("too_short", "too_long", "string_too_short", "string_too_long"):
        return f"{item['msg'][0].lower()}{item['msg'][1:]}"
    field = _field_info(item["loc"])
    metadata = field.metadata if field is not None else []
    low = next((constraint.ge for constraint in metadata if getattr(constraint, "ge", None) is not None), None)
    high = next((constraint.le for constraint in metadata if getattr(constraint, "le", None) is not None), None)
    got = f" (got {_shown(item.get('input'))})"
    if low is not None and high is not None:
        return f"must be between {low} and {high}{got}"
    return f"{item['msg'][0].lower()}{item['msg'][1:]}{got}"


def _field_info(loc: tuple[Any, ...]) -> Any:
    """The pydantic FieldInfo at ``loc`` (backend tags skipped), or None."""
    model: Any = Environment
    field = None
    for part in _location(loc).split("."):
        fields = model.model_fields if isinstance(model, type) and issubclass(model, BaseModel) else {}
        field = fields.get(part)
        if field is None:
            return None
        model = _model_of(field.annotation)
    return field


def _allowed_fields(loc: tuple[Any, ...]) -> list[str]:
    """Field names of the model at ``loc``, so an unknown-field message can list them."""
    if not loc:
        model: Any = Environment
    elif _location(loc).split(".")[0] == "backend":
        return []  # a union of backends: which one's fields to list is the user's choice
    else:
        field = _field_info(loc)
        model = _model_of(field.annotation) if field is not None else None
    if isinstance(model, type) and issubclass(model, BaseModel):
        return list(model.model_fields)
    return []


def _model_of(annotation: Any) -> Any:
    for candidate in getattr(annotation, "__args__", ()) or (annotation,):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return annotation
