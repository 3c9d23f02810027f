"""Resident memory (VmRSS) of the stack's processes, read from /proc (Linux)."""

from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
MIB = 1024 * 1024
LIMIT_MIB = 100  # issue 11: no process above 100 MiB idle


@dataclass(frozen=True)
class ProcessMemory:
    pid: int
    name: str
    rss: int  # bytes


def _parent(pid: int) -> int | None:
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # "pid (comm) state ppid ...": comm may hold spaces and parentheses.
    return int(stat.rsplit(")", 1)[1].split()[1])


def _rss(pid: int) -> int | None:
    try:
        status = (PROC / str(pid) / "status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            value, unit = line.split()[1:3]
            assert unit == "kB", line
            return int(value) * 1024
    return None  # a zombie: no memory


def _command(pid: int) -> list[str]:
    try:
        raw = (PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def process_name(command: list[str]) -> str:
    """`python -m product_service` -> product_service; anything else: its first words."""
    if "-m" in command[:-1]:
        return command[command.index("-m") + 1]
    joined = " ".join(command)
    if "-c" in command and "multiprocessing" in joined:
        return "resource tracker" if "resource_tracker" in joined else "worker"
    return " ".join(Path(part).name if i == 0 else part for i, part in enumerate(command[:3]))


def descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            parent = _parent(int(entry.name))
            if parent is not None:
                children.setdefault(parent, []).append(int(entry.name))
    found, stack = [], [root]
    while stack:
        for child in sorted(children.get(stack.pop(), [])):
            found.append(child)
            stack.append(child)
    return found


def stack_memory(supervisor: int) -> list[ProcessMemory]:
    """The supervisor (`python -m scripts.stack`) and every process under it; a process
    started by a service (a worker) is named after it: `product_service/worker`."""
    names = {supervisor: "scripts.stack (supervisor)"}
    found = []
    for pid in [supervisor, *descendants(supervisor)]:
        rss = _rss(pid)
        if rss is None:
            continue
        if pid not in names:
            name = process_name(_command(pid))
            parent = _parent(pid)
            if parent in names and parent != supervisor:
                name = f"{names[parent]}/{name}"
            names[pid] = name
        found.append(ProcessMemory(pid, names[pid], rss))
    return found
