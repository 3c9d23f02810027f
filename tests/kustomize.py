"""Renders deploy/k8s's kustomizations in Python, for the tests.

Why not kustomize itself: the tests run on a machine with only Python, and no
registry package renders kustomize without fetching a Go binary (the one Python
binding on PyPI needs Python 3.14). So this implements the part of kustomize that
deploy/k8s uses, and refuses anything else, so that a kustomization can never use
a feature this renderer would silently get wrong:

- `resources`: files, and directories holding a kustomization.yaml;
- `namespace`: set on every namespaced object;
- `labels` (`pairs`, `includeSelectors: false`, `includeTemplates`): added to
  `metadata.labels` and, with `includeTemplates`, to pod templates;
- `images` (`name` -> `newName`, `newTag`, `digest`) in containers and init containers;
- `patches` (`path` or inline `patch`, optional `target` by kind and name): a
  strategic merge patch (maps merged, lists of named items merged by name, other
  lists replaced, null deletes) or a JSON 6902 patch (add, replace, remove).

When it was written its output was compared with `kubectl kustomize` (kustomize
v5.5) for both overlays: the same objects, field for field.
"""

import copy
import re
from pathlib import Path
from typing import Any

import yaml

SUPPORTED_KEYS = frozenset(
    {"apiVersion", "kind", "resources", "namespace", "labels", "images", "patches"}
)
CLUSTER_SCOPED_KINDS = frozenset(
    {
        "Namespace",
        "ClusterRole",
        "ClusterRoleBinding",
        "CustomResourceDefinition",
        "PersistentVolume",
        "StorageClass",
        "PriorityClass",
        "IngressClass",
        "ValidatingWebhookConfiguration",
        "MutatingWebhookConfiguration",
    }
)


class UnsupportedKustomization(Exception):
    pass


def load_documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def render(directory: Path) -> list[dict[str, Any]]:
    """The objects `kustomize build <directory>` would output (in no particular order)."""
    kustomization_file = directory / "kustomization.yaml"
    kustomization = yaml.safe_load(kustomization_file.read_text())
    unknown = set(kustomization) - SUPPORTED_KEYS
    if unknown:
        raise UnsupportedKustomization(f"{kustomization_file}: {sorted(unknown)}")

    objects: list[dict[str, Any]] = []
    for entry in kustomization.get("resources", []):
        path = (directory / entry).resolve()
        objects += render(path) if path.is_dir() else load_documents(path)

    for patch in kustomization.get("patches", []):
        _apply_patch(objects, patch, directory)
    for label in kustomization.get("labels", []):
        _apply_labels(objects, label)
    for image in kustomization.get("images", []):
        for obj in objects:
            _set_images(obj, image)
    namespace = kustomization.get("namespace")
    if namespace:
        for obj in objects:
            if obj["kind"] not in CLUSTER_SCOPED_KINDS:
                obj.setdefault("metadata", {})["namespace"] = namespace
    return objects


# --- patches -----------------------------------------------------------------------


def _apply_patch(objects: list[dict], patch: dict, directory: Path) -> None:
    unknown = set(patch) - {"path", "patch", "target"}
    if unknown:
        raise UnsupportedKustomization(f"patch fields {sorted(unknown)}")
    text = (directory / patch["path"]).read_text() if "path" in patch else patch["patch"]
    body = yaml.safe_load(text)
    target = patch.get("target")
    if target is None:
        if not isinstance(body, dict):
            raise UnsupportedKustomization("a JSON 6902 patch needs a target")
        target = {"kind": body["kind"], "name": body["metadata"]["name"]}
    unknown = set(target) - {"kind", "name"}
    if unknown:
        raise UnsupportedKustomization(f"patch target fields {sorted(unknown)}")
    matched = [obj for obj in objects if _matches(obj, target)]
    if not matched:
        raise UnsupportedKustomization(f"patch target {target} matches nothing")
    for obj in matched:
        if isinstance(body, list):
            for operation in body:
                _json6902(obj, operation)
        else:
            body = {key: value for key, value in body.items() if key != "metadata"}
            merged = strategic_merge(obj, body)
            obj.clear()
            obj.update(merged)


def _matches(obj: dict, target: dict) -> bool:
    if "kind" in target and obj["kind"] != target["kind"]:
        return False
    return "name" not in target or re.fullmatch(target["name"], obj["metadata"]["name"]) is not None


def _named(items: list) -> bool:
    return bool(items) and all(isinstance(item, dict) and "name" in item for item in items)


def strategic_merge(base: Any, patch: Any) -> Any:
    if isinstance(base, dict) and isinstance(patch, dict):
        merged = dict(base)
        for key, value in patch.items():
            if value is None:
                merged.pop(key, None)
            elif key in merged:
                merged[key] = strategic_merge(merged[key], value)
            else:
                merged[key] = copy.deepcopy(value)
        return merged
    if isinstance(base, list) and isinstance(patch, list) and _named(base) and _named(patch):
        merged = [dict(item) for item in base]
        for item in patch:
            index = next((i for i, old in enumerate(merged) if old["name"] == item["name"]), None)
            if index is None:
                merged.append(copy.deepcopy(item))
            else:
                merged[index] = strategic_merge(merged[index], item)
        return merged
    return copy.deepcopy(patch)


def _json6902(obj: dict, operation: dict) -> None:
    op, path = operation["op"], operation["path"]
    if op not in {"add", "replace", "remove"}:
        raise UnsupportedKustomization(f"JSON 6902 op {op}")
    parts = [part.replace("~1", "/").replace("~0", "~") for part in path.split("/")[1:]]
    parent: Any = obj
    for part in parts[:-1]:
        parent = parent[int(part)] if isinstance(parent, list) else parent[part]
    last = parts[-1]
    if isinstance(parent, list):
        if op == "add":
            parent.insert(len(parent) if last == "-" else int(last), operation["value"])
        elif op == "replace":
            parent[int(last)] = operation["value"]
        else:
            del parent[int(last)]
        return
    if op == "replace" and last not in parent:
        raise KeyError(f"{path}: nothing to replace")
    if op == "remove":
        del parent[last]
    else:
        parent[last] = copy.deepcopy(operation["value"])


# --- labels and images ---------------------------------------------------------------


def _apply_labels(objects: list[dict], label: dict) -> None:
    unknown = set(label) - {"pairs", "includeSelectors", "includeTemplates"}
    if unknown or label.get("includeSelectors"):
        raise UnsupportedKustomization(f"labels options {sorted(unknown) or 'includeSelectors'}")
    for obj in objects:
        obj.setdefault("metadata", {}).setdefault("labels", {}).update(label["pairs"])
        template = obj.get("spec", {}).get("template")
        if label.get("includeTemplates") and isinstance(template, dict):
            template.setdefault("metadata", {}).setdefault("labels", {}).update(label["pairs"])


def _split_image(image: str) -> tuple[str, str | None, str | None]:
    name, _, digest = image.partition("@")
    tag = None
    if ":" in name.rsplit("/", 1)[-1]:
        name, tag = name.rsplit(":", 1)
    return name, tag, digest or None


def _set_images(node: Any, rule: dict) -> None:
    unknown = set(rule) - {"name", "newName", "newTag", "digest"}
    if unknown:
        raise UnsupportedKustomization(f"images fields {sorted(unknown)}")
    if isinstance(node, list):
        for item in node:
            _set_images(item, rule)
        return
    if not isinstance(node, dict):
        return
    for key in ("containers", "initContainers"):
        for container in node.get(key, []) if isinstance(node.get(key), list) else []:
            name, tag, digest = _split_image(container["image"])
            if name != rule["name"]:
                continue
            name = rule.get("newName", name)
            if "digest" in rule:
                container["image"] = f"{name}@{rule['digest']}"
            else:
                tag = str(rule.get("newTag", tag)) if rule.get("newTag", tag) else None
                container["image"] = (
                    name + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")
                )
    for value in node.values():
        _set_images(value, rule)
