"""YAML configuration files validated by pydantic models.

Every matforge job reads its settings through `load_config`: YAML text -> overrides from the
command line (``key.path=value``) -> a pydantic model. Errors name the file, the line, the
field path and what was expected, e.g.::

    design.yaml, line 7, field 'optimizer.learning_rate': Input should be greater than 0
    (got -0.1)

Duplicate keys are errors (PyYAML would silently keep the last one), and so are unknown
fields (a typo must not fall back to a default without a word).
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from matforge.core.errors import ConfigError

M = TypeVar("M", bound=BaseModel)

_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"


class StrictModel(BaseModel):
    """Base of matforge's config models: unknown fields are errors, assignments validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class JobConfig(StrictModel):
    """Settings every job shares: its name, its random seed and where its runs go."""

    name: str = Field("run", pattern=_NAME_PATTERN, description="prefix of the run directory")
    seed: int = Field(0, ge=0, le=2**32 - 1, description="seeds python, numpy and torch RNGs")
    runs_dir: Path = Field(Path("runs"), description="folder that receives run directories")


PathKey = tuple[str | int, ...]


def parse_override(text: str) -> tuple[PathKey, Any]:
    """Split ``"a.b.0.c=value"`` into a key path and a YAML-parsed value."""
    key, sep, raw_value = text.partition("=")
    key = key.strip()
    if not sep or not key or any(not part for part in key.split(".")):
        raise ConfigError(
            f"override {text!r} must look like 'field.path=value', e.g. 'optimizer.steps=200'"
        )
    try:
        value = yaml.safe_load(raw_value) if raw_value.strip() else None
    except yaml.YAMLError as exc:
        raise ConfigError(f"override {text!r}: value is not valid YAML ({exc})") from None
    path = tuple(int(p) if p.lstrip("-").isdigit() else p for p in key.split("."))
    return path, value


def _set_path(data: dict[str, Any], path: PathKey, value: Any, override: str) -> None:
    node: Any = data
    for depth, part in enumerate(path[:-1]):
        if isinstance(node, dict):
            if not isinstance(node.get(part), (dict, list)):
                node[part] = {}
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and -len(node) <= part < len(node):
            node = node[part]
        else:
            where = ".".join(map(str, path[: depth + 1]))
            raise ConfigError(f"override {override!r}: cannot index {where!r}")
    last = path[-1]
    if isinstance(node, dict) or (
        isinstance(node, list) and isinstance(last, int) and -len(node) <= last < len(node)
    ):
        node[last] = value
    else:
        raise ConfigError(f"override {override!r}: cannot set {'.'.join(map(str, path))!r}")


def apply_overrides(data: Mapping[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Return a copy of `data` with each ``key.path=value`` override applied in order."""
    import copy

    result = copy.deepcopy(dict(data))
    for text in overrides:
        path, value = parse_override(text)
        _set_path(result, path, value, text)
    return result


def _compose(text: str, source: str) -> yaml.Node | None:
    try:
        return yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f", line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{source}{where}: invalid YAML: {problem}") from None


def _check_duplicate_keys(node: yaml.Node | None, source: str) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: dict[Any, int] = {}
        for key_node, value_node in node.value:
            key = key_node.value
            line = key_node.start_mark.line + 1
            if key in seen:
                raise ConfigError(
                    f"{source}, line {line}: duplicate key {key!r} (first given on line "
                    f"{seen[key]})"
                )
            seen[key] = line
            _check_duplicate_keys(value_node, source)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _check_duplicate_keys(item, source)


def _line_of(node: yaml.Node | None, loc: Sequence[str | int]) -> int | None:
    """Line (1-based) of the deepest YAML node along a pydantic error location."""
    if node is None:
        return None
    line = node.start_mark.line + 1
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = next(((k, v) for k, v in node.value if k.value == str(part)), None)
            if match is None:
                break
            key_node, node = match
            line = key_node.start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if not 0 <= part < len(node.value):
                break
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line


def _describe_error(
    error: Mapping[str, Any],
    model: type[BaseModel],
    root: yaml.Node | None,
    source: str,
    overrides: Sequence[tuple[str, PathKey]],
) -> str:
    loc = tuple(error["loc"])
    field = ".".join(str(p) for p in loc) or "(top level)"
    message = error["msg"]
    kind = error["type"]
    if kind == "extra_forbidden":
        message = f"unknown field {str(loc[-1])!r}"
        parent = _model_at(model, loc[:-1])
        if parent is not None:
            names = list(parent.model_fields)
            close = difflib.get_close_matches(str(loc[-1]), names, n=1)
            message += f" (did you mean {close[0]!r}?)" if close else ""
            message += f"; expected one of: {', '.join(names)}"
    elif kind == "missing":
        message = "missing required field"
    elif "input" in error and not isinstance(error["input"], (dict, list)):
        message += f" (got {error['input']!r})"
    origin = [text for text, path in overrides if loc[: len(path)] == path]
    if origin:
        return f"{source}, override {origin[-1]!r}, field {field!r}: {message}"
    line = _line_of(root, loc if kind != "missing" else loc[:-1])
    where = f", line {line}" if line is not None else ""
    return f"{source}{where}, field {field!r}: {message}"


def _model_at(model: type[BaseModel], loc: Sequence[str | int]) -> type[BaseModel] | None:
    """The nested pydantic model class at a field path, when it is one."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return None
        info = current.model_fields.get(part)
        if info is None:
            return None
        current = info.annotation
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def validate_config(
    data: Mapping[str, Any],
    model: type[M],
    *,
    source: str = "config",
    overrides: Sequence[str] = (),
    _root: yaml.Node | None = None,
) -> M:
    """Apply overrides to an already-loaded mapping and validate it against `model`."""
    merged = apply_overrides(data, overrides)
    try:
        return model.model_validate(merged)
    except ValidationError as exc:
        parsed = [(text, parse_override(text)[0]) for text in overrides]
        lines = [_describe_error(e, model, _root, source, parsed) for e in exc.errors()]
        count = len(lines)
        header = f"{count} error{'s' if count > 1 else ''} in {source}:\n  " if count > 1 else ""
        raise ConfigError(header + "\n  ".join(lines)) from None


def load_config(path: str | Path, model: type[M], overrides: Sequence[str] = ()) -> M:
    """Read a YAML file, apply ``key.path=value`` overrides, and validate against `model`."""
    path = Path(path)
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file {source!r} not found") from None
    except IsADirectoryError:
        raise ConfigError(f"config file {source!r} is a directory, expected a YAML file") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{source}: not UTF-8 text ({exc.reason})") from None
    root = _compose(text, source)
    _check_duplicate_keys(root, source)
    data = yaml.safe_load(text) if root is not None else {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{source}, line 1: expected a mapping of settings (key: value), "
            f"got {type(data).__name__}"
        )
    return validate_config(data, model, source=source, overrides=overrides, _root=root)


def dump_config(config: BaseModel) -> str:
    """The resolved config as YAML, in field order, ready to be read back by `load_config`."""
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
