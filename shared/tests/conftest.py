"""Real service processes for the library's tests of shutdown and tracing."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from shared.testing import TestKeys, handed_over, listening_socket

SAMPLE_SERVICE = Path(__file__).resolve().parent / "sample_service.py"


@dataclass
class ServiceProcess:
    process: subprocess.Popen
    port: int
    lines: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def json_lines(self) -> list[dict]:
        records = []
        for line in self.lines:
            try:
                records.append(json.loads(line))
            except ValueError:
                continue
        return records

    def wait_for_line(self, text: str, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while not any(text in line for line in self.lines):
            assert time.monotonic() < deadline, f"no line with {text!r}:\n" + "\n".join(self.lines)
            time.sleep(0.02)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.process.wait(timeout=timeout)


def base_environment(**values: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key in ("PATH", "HOME", "LANG")}
    env.update(
        **TestKeys().settings_for("gateway"),
        PYTHONUNBUFFERED="1",
        **values,
    )
    return env


@pytest.fixture
def service_environment():
    """Builds a service process's environment: fresh secrets plus the given values."""
    return base_environment


@pytest.fixture
def start_process(tmp_path):
    """Starts `argv` (a service) with `env` on a socket bound here and handed over, waits
    until its /health answers."""
    started: list[ServiceProcess] = []

    def start(argv: list[str], env: dict[str, str]) -> ServiceProcess:
        with listening_socket() as sock:
            process = subprocess.Popen(
                argv,
                cwd=tmp_path,  # no developer's .env is read
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                **handed_over(sock, env),
            )
            port = sock.getsockname()[1]
        service = ServiceProcess(process, port)
        started.append(service)

        def read() -> None:
            assert process.stdout is not None
            for line in process.stdout:
                service.lines.append(line.rstrip("\n"))

        threading.Thread(target=read, daemon=True).start()
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{service.url}/health", timeout=1).status_code == 200:
                    return service
            except httpx.TransportError:
                pass
            assert process.poll() is None, "exited early:\n" + "\n".join(service.lines)
            assert time.monotonic() < deadline, "never healthy:\n" + "\n".join(service.lines)
            time.sleep(0.05)

    yield start
    for service in started:
        if service.process.poll() is None:
            service.process.kill()
            service.process.wait(timeout=10)


@pytest.fixture
def start_sample(start_process):
    """The sample service (sample_service.py) as a real process."""

    def start(**env: str) -> ServiceProcess:
        environment = base_environment(**env)
        return start_process([sys.executable, str(SAMPLE_SERVICE)], environment)

    return start
