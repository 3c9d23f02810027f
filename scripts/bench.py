"""`make bench`: the gateway measured against direct calls, with wrk, then under overload.

Starts the stack (scripts/throwaway_stack.py: sockets handed over, throwaway
databases; rate limits off), then for each target runs wrk from outside the
processes: 32 connections, 2 threads, a warm-up then `BENCH_DURATION` seconds
(default 10). Prints requests/s and p50/p99 latency, and the gateway/direct ratio.

Overload: the catalogue's first page through the gateway with 32, 500 and 1,000
connections and the gateway's /health with 1,000 (`OVERLOAD_DURATION` seconds, default
15; wrk's timeout 10 s, as a client's): the 200s per second, the 503s (refused at once,
with Retry-After), the requests left without an answer after 10 s, and p99 of those
answered. The stack bounds what it works on at once (shared.load_shedding), so more
connections must not mean fewer 200s nor answers that never come.
"""

import os
import platform
import re
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import deque

import httpx

from scripts.postgres import find_or_start_postgres
from scripts.services import ROOT
from scripts.throwaway_stack import StackEnvironment, drop_stack_databases, stack_environment

CONNECTIONS = 32
THREADS = 2
DURATION = int(os.environ.get("BENCH_DURATION", "10"))
OVERLOAD_DURATION = int(os.environ.get("OVERLOAD_DURATION", "15"))
# BENCH_PARTS=direct or overload runs only that table (e.g. to try the bounds' settings).
PARTS = os.environ.get("BENCH_PARTS", "all")
CLIENT_TIMEOUT = 10  # seconds: a request unanswered by then counts as lost
BENCH_ADMIN = ("bench-admin@example.com", "bench-admin-password")
# The bounds under overload (shared.load_shedding) may be tried with other values.
LOAD_SETTINGS = (
    "MAX_CONCURRENT_REQUESTS",
    "MAX_QUEUED_REQUESTS",
    "MAX_QUEUE_WAIT",
    "UPSTREAM_MAX_CONCURRENCY",
    "UPSTREAM_MAX_QUEUE",
    "EVENT_LOOP",
    "DB_POOL_PRE_PING",
)
_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    match = re.match(r"([\d.]+)(us|ms|s)", text)
    if not match:
        raise ValueError(text)
    return float(match.group(1)) * _UNITS[match.group(2)]


def wrk(
    url: str, headers: dict[str, str], duration: int, connections: int = CONNECTIONS
) -> dict[str, float]:
    command = [
        "wrk",
        f"-t{THREADS}",
        f"-c{connections}",
        f"-d{duration}s",
        f"--timeout={CLIENT_TIMEOUT}s",
        "--latency",
        url,
    ]
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
    requests = int(re.search(r"(\d+) requests in", output).group(1))
    socket_errors = {
        kind: int(count)
        for kind, count in re.findall(r"(connect|read|write|timeout) (\d+)", output)
    }
    return {
        "rps": rps,
        "p50": p50,
        "p99": p99,
        "requests": requests,
        "non2xx": int(non_2xx.group(1)) if non_2xx else 0,
        "errors": errors.group(1) if errors else "",
        # Requests that got no answer within the client's timeout, or no connection.
        "unanswered": socket_errors.get("timeout", 0) + socket_errors.get("connect", 0),
    }


def start_stack(environment: StackEnvironment) -> subprocess.Popen:
    process = environment.spawn(stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    ready = threading.Event()
    last_lines: deque[str] = deque(maxlen=30)

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            last_lines.append(line)
            if "all services are up" in line:
                ready.set()

    threading.Thread(target=read, daemon=True).start()
    deadline = time.monotonic() + 120
    while not ready.wait(0.2):
        if process.poll() is not None or time.monotonic() > deadline:
            print("".join(last_lines), end="")
            raise SystemExit("the stack did not start (its last lines are above)")
    return process


def main() -> int:
    if not shutil.which("wrk"):
        print("make bench needs wrk: sudo apt-get install wrk (Debian/Ubuntu) or brew install wrk")
        return 1
    raise_file_limit()
    server = find_or_start_postgres()
    environment = stack_environment(
        server.url("postgres"),
        "bench",
        RATE_LIMIT_ENABLED="false",
        LOG_LEVEL="WARNING",
        ADMIN_EMAIL=BENCH_ADMIN[0],
        ADMIN_PASSWORD=BENCH_ADMIN[1],
        **{name: os.environ[name] for name in LOAD_SETTINGS if name in os.environ},
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
        if PARTS in ("all", "direct"):
            results = []
            for route, where, url, headers in targets:
                wrk(url, headers, 2)  # warm-up
                results.append((route, where, wrk(url, headers, DURATION)))
            print_table(results)
        if PARTS in ("all", "overload"):
            print_overload(overload(gateway))
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=60)
        drop_stack_databases(environment.env)
        if server.stop:
            server.stop()
    return 0


def _add_products(gateway: str, count: int) -> None:
    with httpx.Client(base_url=gateway, timeout=30) as client:
        login = client.post(
            "/api/auth/login", json={"email": BENCH_ADMIN[0], "password": BENCH_ADMIN[1]}
        )
        admin = {"Authorization": f"Bearer {login.json()['token']}"}
        for n in range(count):
            client.post(
                "/api/products",
                json={
                    "name": f"Bench phone {n}",
                    "description": "A phone",
                    "price": "1500.00",
                    "stock": 100,
                    "category": "electronics",
                    "sku": f"BENCH-{n}-{uuid.uuid4().hex[:6]}",
                },
                headers=admin,
            ).raise_for_status()


def raise_file_limit(wanted: int = 4096) -> None:
    """Each connection is a file descriptor, in wrk and in the gateway (which inherits the
    limit from here): the usual soft limit of 1,024 would fail before the stack does."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        ceiling = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (ceiling, hard))


def overload(gateway: str) -> list[tuple[str, int, dict]]:
    """The same routes at 32 connections and far beyond what the stack takes at once."""
    _add_products(gateway, 20)
    runs = [
        ("GET /api/products?limit=10", f"{gateway}/api/products?limit=10", 32),
        ("GET /api/products?limit=10", f"{gateway}/api/products?limit=10", 500),
        ("GET /api/products?limit=10", f"{gateway}/api/products?limit=10", 1000),
        ("GET /health (gateway)", f"{gateway}/health", 1000),
    ]
    results = []
    for route, url, connections in runs:
        wrk(url, {}, 2, connections)  # warm-up
        results.append((route, connections, wrk(url, {}, OVERLOAD_DURATION, connections)))
    return results


def print_overload(results: list[tuple[str, int, dict]]) -> None:
    print(
        f"\noverload: wrk -t{THREADS} -d{OVERLOAD_DURATION}s --timeout {CLIENT_TIMEOUT}s, "
        "through the gateway\n"
    )
    print(
        f"| {'route':<26} | {'conns':>5} | {'200/s':>7} | {'503s':>7} | "
        f"{'unanswered':>10} | {'p50 ms':>7} | {'p99 ms':>7} |"
    )
    print(f"|{'-' * 28}|{'-' * 7}|{'-' * 9}|{'-' * 9}|{'-' * 12}|{'-' * 9}|{'-' * 9}|")
    for route, connections, r in results:
        ok_per_second = (r["requests"] - r["non2xx"]) / OVERLOAD_DURATION
        print(
            f"| {route:<26} | {connections:>5} | {ok_per_second:>7.0f} | {r['non2xx']:>7} | "
            f"{r['unanswered']:>10} | {r['p50']:>7.2f} | {r['p99']:>7.2f} |"
        )
    print(
        "\n503s are refusals with Retry-After (shared.load_shedding); unanswered: no answer "
        f"within {CLIENT_TIMEOUT} s or no connection; p50/p99 of the answered requests."
    )


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
