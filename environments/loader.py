"""Environment files -> validated models, or one line per problem.

Every problem a user can cause ends up as ``<file>: <field path>: <what is allowed>``
(or ``<file>: line N: ...`` for TOML syntax), collected in a ConfigError.
"""
from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from environments.schema import Environment

ENVIRONMENTS_DIR = Path(__file__).resolve().parent
BACKEND_TAGS = ("local", "s3", "hcp")


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
        raise ConfigError([f"{label}: not UTF-8 text (byte 0x{raw[error.start]:02x} at offset {error.start}); save it as UTF-8"]) from None
    if not text.strip():
        raise ConfigError([f"{label}: the file is empty; it needs at least `name` and `region`"])
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError([f"{label}: {_toml_error(error)}"]) from None
    try:
        return Environment.model_validate(document)
    except ValidationError as error:
        raise ConfigError([f"{label}: {line}" for line in _validation_lines(error)]) from None


def load_all(paths: list[Path], shown_as: dict[Path, str] | None = None) -> list[Environment]:
    """Load several files, report every file's problems together, and reject duplicate names."""
    shown_as = shown_as or {}
    environments: list[tuple[Path, Environment]] = []
    lines: list[str] = []
    for path in paths:
        try:
            environments.append((path, load(path, shown_as.get(path))))
        except ConfigError as error:
            lines += error.lines
    first_file_by_name: dict[str, Path] = {}
    for path, environment in environments:
        if environment.name in first_file_by_name:
            other = first_file_by_name[environment.name]
            lines.append(
                f"{shown_as.get(path, path)}: name: \"{environment.name}\" is already used by {shown_as.get(other, other)}; "
                "each environment needs its own name (its stack and state)"
            )
        else:
            first_file_by_name[environment.name] = path
    if lines:
        raise ConfigError(lines)
    return sorted((environment for _, environment in environments), key=lambda environment: environment.name)


def _toml_error(error: tomllib.TOMLDecodeError) -> str:
    message = str(error)
    # tomllib: "Expected '=' after a key in a key/value pair (at line 3, column 7)"
    if message.endswith(")") and "(at line " in message:
        reason, _, where = message[:-1].rpartition(" (at ")
        line = where.split(",")[0].removeprefix("line ").strip()
        return f"line {line}: TOML syntax error: {reason} ({where})"
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
        lines.append(f"{location or '(top level)'}: {_describe(item)}")
    return [line.replace("\n", " ") for line in lines]


def _location(loc: tuple[Any, ...]) -> str:
    parts = list(loc)
    if len(parts) > 1 and parts[0] == "backend" and parts[1] in BACKEND_TAGS:
        del parts[1]
    return ".".join(str(part) for part in parts)


def _describe(item: dict[str, Any]) -> str:
    kind = item["type"]
    value = item.get("input")
    if kind == "missing":
        return "required field is missing"
    if kind == "extra_forbidden":
        allowed = _allowed_fields(item["loc"][:-1])
        return f"unknown field; allowed here: {', '.join(allowed)}" if allowed else "unknown field"
    message = item["msg"]
    if kind == "string_pattern_mismatch":
        message = f"does not match the allowed form {item['ctx']['pattern']}"
    if isinstance(value, (str, int, float, bool)) and not isinstance(value, dict):
        return f"{message} (got {value!r})"
    return message


def _allowed_fields(loc: tuple[Any, ...]) -> list[str]:
    """Field names of the model at ``loc``, so an unknown-field message can list them."""
    model: Any = Environment
    for part in _location(loc).split(".") if loc else []:
        field = model.model_fields.get(part) if isinstance(model, type) and issubclass(model, BaseModel) else None
        if field is None:
            return []
        model = _model_of(field.annotation)
        if part == "backend":
            return []
    if isinstance(model, type) and issubclass(model, BaseModel):
        return list(model.model_fields)
    return []


def _model_of(annotation: Any) -> Any:
    for candidate in getattr(annotation, "__args__", ()) or (annotation,):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return annotation
