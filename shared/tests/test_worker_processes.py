"""WEB_CONCURRENCY=2 (shared.server): two worker processes serve one handed-over socket,
only one of them runs the periodic workers, and SIGTERM stops them all cleanly."""

import os
import signal
import socket
import time

import httpx


def pids_answering(url: str, want: int, timeout: float = 20) -> dict[int, int]:
    """pid -> ticks of its periodic worker, from fresh connections until `want` processes
    have answered (the kernel gives each new connection to one of them)."""
    seen: dict[int, int] = {}
    deadline = time.monotonic() + timeout
    while len(seen) < want:
        assert time.monotonic() < deadline, f"only {sorted(seen)} answered"
        with httpx.Client(timeout=5) as client:  # a new connection each time
            body = client.get(f"{url}/ticks").json()
        seen[body["pid"]] = max(body["ticks"], seen.get(body["pid"], 0))
    return seen


def startups(service) -> list[dict]:
    return [r for r in service.json_lines() if r.get("message") == "Application startup complete."]


def shutdowns(service) -> list[dict]:
    return [r for r in service.json_lines() if r.get("message") == "shutdown complete"]


def refuses_connections(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) != 0


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_two_worker_processes_answer_run_the_periodic_workers_once_and_stop(start_sample):
    service = start_sample(SAMPLE_NAME="workers", WEB_CONCURRENCY="2")
    service.wait_for_line("periodic workers run in worker process 0, not here")
    deadline = time.monotonic() + 30
    while len(startups(service)) < 2:  # each worker starts the app on its own
        assert time.monotonic() < deadline, "\n".join(service.lines)
        time.sleep(0.05)

    # The tick worker runs every 0.1 s (after up to 0.1 s at random) in the one that runs it.
    while True:
        ticks = pids_answering(service.url, want=2)
        if any(ticks.values()) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    workers = sorted(ticks)
    assert service.process.pid not in workers  # the parent forks them and serves nothing
    # One process ticks, the other never: the periodic workers run once per service.
    assert sorted(value > 0 for value in ticks.values()) == [False, True], ticks
    messages = [r.get("message") for r in service.json_lines()]
    assert messages.count("periodic workers started") == 1

    assert service.stop(timeout=30) == 0
    assert refuses_connections(service.port)
    assert not any(alive(pid) for pid in workers)
    deadline = time.monotonic() + 10  # the last lines may still be on their way here
    while len(done := shutdowns(service)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [record["workerStopped"] for record in done] == [True, True]


def test_a_worker_process_that_dies_is_started_again(start_sample):
    service = start_sample(SAMPLE_NAME="workers", WEB_CONCURRENCY="2")
    first = sorted(pids_answering(service.url, want=2))
    os.kill(first[1], signal.SIGKILL)
    service.wait_for_line("worker process exited; starting it again")
    # Two processes answer again: the one left and the new one.
    now = pids_answering(service.url, want=2)
    assert first[0] in now
    assert first[1] not in now
    assert service.stop(timeout=30) == 0
