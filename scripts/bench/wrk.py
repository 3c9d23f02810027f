"""wrk from outside the processes: one run, and its output read into figures."""

import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

CONNECTIONS = 32
THREADS = 2
CLIENT_TIMEOUT = 10  # seconds: a request unanswered by then counts as lost
_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


@dataclass(frozen=True)
class WrkResult:
    rps: float
    p50: float  # ms
    p99: float  # ms
    requests: int
    non2xx: int  # wrk counts "Non-2xx or 3xx responses"
    errors: str  # wrk's "Socket errors" line, "" when none
    # Requests that got no answer within the client's timeout, or no connection.
    unanswered: int
    seconds: float  # how long wrk says it ran
    # Answers by status, when the script counts them (checkout.lua, mpesa.lua).
    statuses: dict[int, int] = field(default_factory=dict)
    # The first body of each status but 2xx (the same scripts).
    examples: dict[int, str] = field(default_factory=dict)

    @property
    def ok_per_second(self) -> float:
        """2xx/3xx answers per second."""
        return (self.requests - self.non2xx) / self.seconds if self.seconds else 0.0


def milliseconds(text: str) -> float:
    """wrk's durations ("812.00us", "4.31ms", "1.02s", "1.50m") in milliseconds."""
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    if not match:
        raise ValueError(f"not a wrk duration: {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def _seconds(text: str) -> float:
    return milliseconds(text) / 1000


def parse(output: str) -> WrkResult:
    """The figures of `wrk --latency` output; ValueError when it has none."""
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    p50 = re.search(r"^\s+50%\s+(\S+)", output, re.MULTILINE)
    p99 = re.search(r"^\s+99%\s+(\S+)", output, re.MULTILINE)
    done = re.search(r"(\d+) requests in ([\d.]+\w+),", output)
    if not (rps and p50 and p99 and done):
        raise ValueError(f"no figures in wrk's output:\n{output}")
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    errors = re.search(r"Socket errors: (.*)", output)
    socket_errors = {
        kind: int(count)
        for kind, count in re.findall(r"(connect|read|write|timeout) (\d+)", output)
    }
    return WrkResult(
        rps=float(rps.group(1)),
        p50=milliseconds(p50.group(1)),
        p99=milliseconds(p99.group(1)),
        requests=int(done.group(1)),
        non2xx=int(non_2xx.group(1)) if non_2xx else 0,
        errors=errors.group(1).strip() if errors else "",
        unanswered=socket_errors.get("timeout", 0) + socket_errors.get("connect", 0),
        seconds=_seconds(done.group(2)),
        statuses={
            int(status): int(count)
            for status, count in re.findall(r"(\d{3})=(\d+)", _line(output, "statuses:"))
        },
        examples={
            int(status): body.strip()
            for status, body in re.findall(r"^example (\d{3}): (.*)$", output, re.MULTILINE)
        },
    )


def _line(output: str, prefix: str) -> str:
    for line in output.splitlines():
        if line.startswith(prefix):
            return line
    return ""


def statuses_text(statuses: dict[int, int]) -> str:
    """{201: 480, 503: 2} -> "201: 480, 503: 2"."""
    return ", ".join(f"{status}: {count:,}" for status, count in sorted(statuses.items()))


def wrk(
    url: str,
    headers: dict[str, str] | None = None,
    duration: int = 10,
    connections: int = CONNECTIONS,
    script: Path | None = None,
    script_args: tuple[str, ...] = (),
) -> WrkResult:
    command = [
        "wrk",
        f"-t{THREADS}",
        f"-c{connections}",
        f"-d{duration}s",
        f"--timeout={CLIENT_TIMEOUT}s",
        "--latency",
    ]
    if script is not None:
        command += ["-s", str(script)]
    for name, value in (headers or {}).items():
        command += ["-H", f"{name}: {value}"]
    command.append(url)
    if script_args:
        command += ["--", *script_args]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    return parse(output)
