"""`make bench`: every route of issue 11 measured with wrk from outside the processes,
directly on its service and through the gateway, the checkout and M-Pesa initiation,
resident memory, then the overload runs; writes docs/benchmarks.md, docs/benchmarks.svg
and the README's "Performance" figures (run.py says how).

wrk.py runs wrk and reads its output; data.py makes what the routes read; memory.py
reads VmRSS; report.py the tables; chart.py the SVG; *.lua the POSTs' requests."""

import os
import platform
from pathlib import Path

from scripts.bench.wrk import CONNECTIONS, THREADS, WrkResult, wrk

DURATION = int(os.environ.get("BENCH_DURATION", "10"))


def machine(where: str) -> str:
    """The machine a benchmark ran on: cores, CPU model, Python, the load when it began,
    then `where` (what ran where)."""
    model = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"{os.cpu_count()} cores ({model}), Python {platform.python_version()}, "
        f"load average {load:.2f} {where}"
    )


__all__ = ["CONNECTIONS", "DURATION", "THREADS", "WrkResult", "machine", "wrk"]
