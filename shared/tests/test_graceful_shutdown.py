"""SIGTERM (what Docker and Kubernetes send) with a request in flight: the service
stops taking connections, finishes the request, then stops its workers and exits 0."""

import signal
import socket
import threading
import time

import httpx


def refuses_connections(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) != 0


def test_an_in_flight_request_completes_when_sigterm_arrives(start_sample):
    service = start_sample(SAMPLE_NAME="shutdown")
    result: dict = {}

    def call_slow() -> None:
        try:
            result["response"] = httpx.get(f"{service.url}/slow?seconds=2", timeout=20)
        except httpx.HTTPError as exc:  # recorded for the assertion below
            result["error"] = repr(exc)

    caller = threading.Thread(target=call_slow)
    caller.start()
    service.wait_for_line("slow request started")
    service.process.send_signal(signal.SIGTERM)

    # It stops taking new connections while the request is still being answered.
    deadline = time.monotonic() + 5
    while not refuses_connections(service.port):
        assert time.monotonic() < deadline, "still accepting connections after SIGTERM"
        time.sleep(0.05)
    assert caller.is_alive(), "the slow request should still be in flight"

    caller.join(timeout=20)
    assert "error" not in result, result.get("error")
    assert result["response"].status_code == 200
    assert result["response"].json() == {"slept": 2.0}
    # Uvicorn exits by re-raising the signal it handled, as a process killed by it would.
    assert service.stop(timeout=20) == -signal.SIGTERM

    messages = [record.get("message") for record in service.json_lines()]
    assert messages.index("slow request finished") < messages.index("shutdown complete")
    [done] = [r for r in service.json_lines() if r.get("message") == "shutdown complete"]
    assert done["workerStopped"] is True
    assert "Finished server process" in messages[-1]
