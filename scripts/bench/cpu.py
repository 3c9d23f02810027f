"""CPU time per request, by process: what each process of the stack, and PostgreSQL, spent
during a measured run, divided by the requests answered in it. Unlike requests per second,
it barely moves with whatever else the machine is doing, and it says where the time went.
Read from /proc (utime + stime, Linux)."""

import os

from scripts.bench.memory import PROC, stack_memory

TICKS = os.sysconf("SC_CLK_TCK")
POSTGRES = "postgres"
# Processes below this share of a request are left out of the summary.
SHOWN_MICROSECONDS = 20


def _seconds(pid: int) -> float | None:
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def _postgres_pids() -> list[int]:
    found = []
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == POSTGRES:
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def snapshot(supervisor: int) -> dict[str, float]:
    """CPU seconds so far of each process of the stack (by name; workers of one service
    added up) and of every PostgreSQL process (server and backends) as one."""
    totals: dict[str, float] = {}
    named = [(process.pid, process.name) for process in stack_memory(supervisor)]
    named += [(pid, POSTGRES) for pid in _postgres_pids()]
    for pid, name in named:
        seconds = _seconds(pid)
        if seconds is not None:
            key = name.split("/")[0]
            totals[key] = totals.get(key, 0.0) + seconds
    return totals


def per_request(
    before: dict[str, float], after: dict[str, float], requests: int
) -> dict[str, float]:
    """Microseconds of CPU per request, by process (a process that ended or began in
    between counts from what is known)."""
    if requests <= 0:
        return {}
    return {
        name: (after[name] - before.get(name, 0.0)) * 1e6 / requests
        for name in after
        if after[name] > before.get(name, 0.0)
    }


def summary(microseconds: dict[str, float]) -> str:
    """`api_gateway 420 + product_service 980 + postgres 210 = 1,610` (the largest first)."""
    if not microseconds:
        return ""
    shown = sorted(
        ((name, value) for name, value in microseconds.items() if value >= SHOWN_MICROSECONDS),
        key=lambda item: -item[1],
    )
    parts = " + ".join(f"{name} {value:,.0f}" for name, value in shown)
    return f"{parts} = {sum(microseconds.values()):,.0f}"
