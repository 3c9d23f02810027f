"""Reads docker-compose files as Docker Compose does, for the tests (this machine has
no Docker): YAML with anchors and merge keys, `${VAR}` interpolation, then the
files merged in order by the Compose specification's rules.

Interpolation: `$$`, `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`,
`${VAR:?error}`, `${VAR?error}` (a missing required variable raises
`MissingVariable`, as `docker compose` stops). Merging: mappings merged key by
key; sequences appended (unique items once); `command`, `entrypoint` and
`healthcheck.test` replaced; `!reset` removes a value, `!override` replaces it.
"""

import re
from pathlib import Path
from typing import Any

import yaml


class MissingVariable(Exception):
    pass


class Reset:
    """`!reset`: drop what earlier files said."""


class Override:
    """`!override <value>`: replace what earlier files said."""

    def __init__(self, value: Any) -> None:
        self.value = value


class ComposeLoader(yaml.SafeLoader):
    pass


def _construct_reset(loader: yaml.SafeLoader, node: yaml.Node) -> Reset:
    return Reset()


def _construct_override(loader: yaml.SafeLoader, node: yaml.Node) -> Override:
    if isinstance(node, yaml.MappingNode):
        return Override(loader.construct_mapping(node, deep=True))
    if isinstance(node, yaml.SequenceNode):
        return Override(loader.construct_sequence(node, deep=True))
    return Override(loader.construct_scalar(node))


ComposeLoader.add_constructor("!reset", _construct_reset)
ComposeLoader.add_constructor("!override", _construct_override)

_VARIABLE = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}"
    r"|(?P<plain>[A-Za-z_][A-Za-z0-9_]*))"
)


def variables_referenced(text: str) -> set[str]:
    return {
        match.group("braced") or match.group("plain")
        for match in _VARIABLE.finditer(text)
        if not match.group("escaped")
    }


def interpolate(value: Any, env: dict[str, str]) -> Any:
    if isinstance(value, str):
        return _VARIABLE.sub(lambda match: _substitute(match, env), value)
    if isinstance(value, dict):
        return {key: interpolate(item, env) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, env) for item in value]
    if isinstance(value, Override):
        return Override(interpolate(value.value, env))
    return value


def _substitute(match: re.Match[str], env: dict[str, str]) -> str:
    if match.group("escaped"):
        return "$"
    name = match.group("braced") or match.group("plain")
    op, arg = match.group("op"), match.group("arg") or ""
    value = env.get(name)
    unset_or_empty = value is None or value == ""
    if op == ":-":
        return arg if unset_or_empty else value
    if op == "-":
        return arg if value is None else value
    if (op == ":?" and unset_or_empty) or (op == "?" and value is None):
        raise MissingVariable(f"{name}: {arg}")
    return value or ""


def merge(base: Any, override: Any, path: tuple[str, ...] = ()) -> Any:
    if isinstance(override, Override):
        return override.value
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            if isinstance(value, Reset):
                merged.pop(key, None)
            elif key in merged:
                merged[key] = merge(merged[key], value, (*path, key))
            else:
                merged[key] = value.value if isinstance(value, Override) else value
        return merged
    replaced = path[-1:] in {("command",), ("entrypoint",)} or path[-2:] == ("healthcheck", "test")
    if isinstance(base, list) and isinstance(override, list) and not replaced:
        return base + [item for item in override if item not in base]
    return override


def _drop_resets(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_resets(v) for k, v in value.items() if not isinstance(v, Reset)}
    if isinstance(value, list):
        return [_drop_resets(item) for item in value]
    if isinstance(value, Override):
        return _drop_resets(value.value)
    return value


def load(path: Path) -> dict[str, Any]:
    """One file, uninterpolated, with its `!reset` / `!override` markers."""
    return yaml.load(path.read_text(), Loader=ComposeLoader)  # noqa: S506 (a SafeLoader)


def load_project(paths: list[Path], env: dict[str, str]) -> dict[str, Any]:
    """The project `docker compose -f a -f b config` would run."""
    merged: dict[str, Any] = {}
    for path in paths:
        merged = merge(merged, interpolate(load(path), env))
    return _drop_resets(merged)


def active_services(project: dict[str, Any], profiles: frozenset[str] = frozenset()) -> dict:
    """Services `docker compose up` starts: those without a profile, or of an enabled one."""
    return {
        name: service
        for name, service in project["services"].items()
        if not service.get("profiles") or set(service["profiles"]) & profiles
    }


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {key: "" if value is None else str(value) for key, value in env.items()}


def networks(service: dict[str, Any]) -> set[str]:
    value = service.get("networks") or ["default"]
    return set(value)
