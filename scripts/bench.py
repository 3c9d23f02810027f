"""`make bench`: the gateway measured against direct calls, with wrk.

Starts the stack (scripts/throwaway_stack.py: sockets handed over, throwaway
databases; rate limits off), then for each target runs wrk from outside the
processes: 32 connections, 2 threads, a warm-up then `BENCH_DURATION` seconds
(default 10). Prints requests/s and p50/p99 latency, and the gateway/direct ratio.
"""

import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import threading
import time

import httpx

from scripts.postgres import find_or_start_postgres
from scripts.services import ROOT
from scripts.throwaway_stack import StackEnvironment, drop_stack_databases, stack_environment

CONNECTIONS = 32
THREADS = 2
DURATION = int(os.environ.get("BENCH_DURATION", "10"))
_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    match = re.match(r"([\d.]+)(us|ms|s)", text)
    if not match:
        raise ValueError(text)
    return float(match.group(1)) * _UNITS[match.group(2)]


def wrk(url: str, headers: dict[str, str], duration: int) -> dict[str, float]:
    command = ["wrk", f"-t{THREADS}", f"-c{CONNECTIONS}", f"-d{duration}s", "--latency", url]
    if "/verify" in url:
        command[1:1] = ["-s", str(ROOT / "scripts" / "wrk-post.lua")]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    p50 = _ms(re.search(r"\s50%\s+(\S+)", output).group(1))
    p99 = _ms(re.search(r"\s99%\s+(\S+)", output).group(1))
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    errors = re.search(r"Socket errors: (.*)", output)
    return {
        "rps": rps,
        "p50": p50,
        "p99": p99,
        "non2xx": int(non_2xx.group(1)) if non_2xx else 0,
        "errors": errors.group(1) if errors else "",
    }


def start_stack(environment: StackEnvironment) -> subprocess.Popen:
    process = environment.spawn(stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    ready = threading.Event()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            if "all services are up" in line:
                ready.set()

    threading.Thread(target=read, daemon=True).start()
    deadline = time.monotonic() + 120
    while not ready.wait(0.2):
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("the stack did not start; run `make run` to see why")
    return process


def main() -> int:
    if not shutil.which("wrk"):
        print("make bench needs wrk: sudo apt-get install wrk (Debian/Ubuntu) or brew install wrk")
        return 1
    server = find_or_start_postgres()
    environment = stack_environment(
        server.url("postgres"), "bench", RATE_LIMIT_ENABLED="false", LOG_LEVEL="WARNING"
    )
    process = start_stack(environment)
    try:
        gateway = environment.url("gateway")
        auth = environment.url("auth")
        with httpx.Client(timeout=30) as client:
            body = {"name": "Bench", "email": "bench@example.com", "password": "bench-password"}
            token = client.post(f"{gateway}/api/auth/register", json=body).json()["token"]
        authorization = {"Authorization": f"Bearer {token}"}
        targets = [
            ("GET /health", "direct (auth service)", f"{auth}/health", {}),
            ("GET /health", "gateway", f"{gateway}/health", {}),
            (
                "GET /api/auth/profile",
                "direct (auth service)",
                f"{auth}/api/profile",
                authorization,
            ),
            (
                "GET /api/auth/profile",
                "through the gateway",
                f"{gateway}/api/auth/profile",
                authorization,
            ),
            # No token: the auth service answers 401 without touching its database, so
            # this pair isolates what the proxy itself costs.
            ("POST /api/auth/verify 401", "direct (auth service)", f"{auth}/api/verify", {}),
            ("POST /api/auth/verify 401", "through the gateway", f"{gateway}/api/auth/verify", {}),
        ]
        results = []
        for route, where, url, headers in targets:
            wrk(url, headers, 2)  # warm-up
            results.append((route, where, wrk(url, headers, DURATION)))
        print_table(results)
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=60)
        drop_stack_databases(environment.env)
        if server.stop:
            server.stop()
    return 0


def print_table(results) -> None:
    cpu = platform.processor() or platform.machine()
    print(
        f"\nmachine: {os.cpu_count()} cores ({cpu}), Python {platform.python_version()}; "
        f"wrk -t{THREADS} -c{CONNECTIONS} -d{DURATION}s, every process on this machine\n"
    )
    print(
        f"| {'route':<26} | {'where':<22} | {'req/s':>8} | {'p50 ms':>7} | {'p99 ms':>7} | "
        f"{'non-2xx':>7} |"
    )
    print(f"|{'-' * 28}|{'-' * 24}|{'-' * 10}|{'-' * 9}|{'-' * 9}|{'-' * 9}|")
    for route, where, r in results:
        print(
            f"| {route:<26} | {where:<22} | {r['rps']:>8.0f} | {r['p50']:>7.2f} | "
            f"{r['p99']:>7.2f} | {r['non2xx']:>7} |"
        )
    print()
    by_route: dict[str, list[dict]] = {}
    for route, _, r in results:
        by_route.setdefault(route, []).append(r)
    for route, (direct, through) in by_route.items():
        print(
            f"{route}: gateway/direct throughput {through['rps'] / direct['rps']:.2f}, "
            f"p50 added {through['p50'] - direct['p50']:+.2f} ms"
        )
    for route, where, r in results:
        if r["errors"]:
            print(f"socket errors ({route}, {where}): {r['errors']}")


if __name__ == "__main__":
    sys.exit(main())
