"""`make bench`: every route of issue 11 measured with wrk from outside the processes,
directly on its service and through the gateway, the checkout and M-Pesa initiation,
resident memory, then the overload runs; writes docs/benchmarks.md, docs/benchmarks.svg
and the README's "Performance" figures (run.py says how).

wrk.py runs wrk and reads its output; data.py makes what the routes read; memory.py
reads VmRSS; report.py the tables; chart.py the SVG; *.lua the POSTs' requests."""

import os

from scripts.bench.wrk import CONNECTIONS, THREADS, WrkResult, wrk

DURATION = int(os.environ.get("BENCH_DURATION", "10"))

__all__ = ["CONNECTIONS", "DURATION", "THREADS", "WrkResult", "wrk"]
