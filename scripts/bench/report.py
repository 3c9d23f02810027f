"""The figures of a run as tables: printed, written to docs/benchmarks.md, and the
README's "Performance" section (between its two markers)."""

from dataclasses import dataclass, field

from scripts.bench.cpu import summary
from scripts.bench.memory import LIMIT_MIB, MIB, ProcessMemory
from scripts.bench.wrk import WrkResult, statuses_text

GATEWAY = "gateway"
README_START = "<!-- make bench: start -->"
README_END = "<!-- make bench: end -->"
STACK_LIMIT_MIB = 1024  # issue 11: the whole stack idle at most 1 GiB


@dataclass(frozen=True)
class RouteRun:
    route: str
    where: str  # GATEWAY, or the service answering directly
    result: WrkResult
    # Microseconds of CPU per request, by process (scripts/bench/cpu.py).
    cpu: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Checkout:
    result: WrkResult
    buyers: int
    connections: int
    seconds: int
    orders: int  # orders the buyers hold after the run (warm-up included)
    created: int  # 201s of the measured run
    stock_before: int
    units: int  # units of the product in the buyers' orders, 2 s after the run
    stock_after: int  # the product's stock then
    # When the stock was off at once: read again until it was exact or the order
    # service's sweeper had had its time (abandoned placements released).
    settled_units: int | None = None
    settled_stock: int | None = None
    settled_after: float | None = None  # seconds after the run
    # Microseconds of CPU per order, by process (scripts/bench/cpu.py).
    cpu: dict[str, float] = field(default_factory=dict)

    @property
    def per_second(self) -> float:
        return self.created / self.result.seconds

    @property
    def exact_at_once(self) -> bool:
        return self.stock_before - self.units == self.stock_after

    @property
    def exact(self) -> bool:
        """Exact 2 s after the run, or once the sweeper has released what placements cut
        off by the end of the run had reserved."""
        if self.exact_at_once:
            return True
        if self.settled_units is None or self.settled_stock is None:
            return False
        return self.stock_before - self.settled_units == self.settled_stock

    def exact_text(self) -> str:
        if self.exact_at_once:
            return "yes"
        off = self.stock_before - self.units - self.stock_after
        at_once = f"{off:+,} units off 2 s after the run"
        if self.exact:
            return f"yes, {self.settled_after:.0f} s after the run ({at_once})"
        return f"no ({at_once})"


@dataclass(frozen=True)
class Mpesa:
    result: WrkResult
    pool: int  # pending orders made for it
    seconds: int
    # Microseconds of CPU per initiation, by process (the callbacks it brings included).
    cpu: dict[str, float] = field(default_factory=dict)

    @property
    def per_second(self) -> float:
        """Initiations accepted (2xx) per second."""
        return self.result.ok_per_second


@dataclass(frozen=True)
class Overload:
    route: str
    connections: int
    result: WrkResult


@dataclass
class Report:
    machine: str
    date: str
    commit: str
    load: str  # wrk's parameters, in words
    catalogue: str  # what the catalogue holds, in words
    routes: list[RouteRun] = field(default_factory=list)
    checkout: Checkout | None = None
    mpesa: Mpesa | None = None
    idle: list[ProcessMemory] = field(default_factory=list)
    loaded: list[ProcessMemory] = field(default_factory=list)
    overload: list[Overload] = field(default_factory=list)
    overload_load: str = ""


@dataclass(frozen=True)
class Target:
    what: str
    target: str
    measured: str
    met: bool | None  # None: not measured in this run


# (route, req/s at least, p99 at most in ms or None), through the gateway (issue 11).
ROUTE_TARGETS = (
    ("GET /api/products?limit=10", 1800, 100.0),
    ("GET /api/products/:id", 2500, 100.0),
    ("GET /api/products?search=<word>&limit=20", 800, None),
    ("GET /api/cart", 1000, None),
    ("GET /api/auth/profile", 1900, None),
)
CHECKOUT_TARGET = 300
MPESA_TARGET = 100


def _mib(value: int) -> str:
    return f"{value / MIB:.0f}"


def _yes(met: bool | None) -> str:
    return {True: "yes", False: "**no**", None: "not measured"}[met]


def route_target(route: str) -> tuple[float, float | None] | None:
    for name, rps, p99 in ROUTE_TARGETS:
        if name == route:
            return rps, p99
    return None


def targets(report: Report) -> list[Target]:
    rows = []
    through = {run.route: run.result for run in report.routes if run.where == GATEWAY}
    for route, rps, p99 in ROUTE_TARGETS:
        wanted = f"≥ {rps:,} req/s" + (f", p99 ≤ {p99:.0f} ms" if p99 is not None else "")
        result = through.get(route)
        if result is None:
            rows.append(Target(f"`{route}`", wanted, "-", None))
            continue
        met = result.rps >= rps and (p99 is None or result.p99 <= p99)
        measured = f"{result.rps:,.0f} req/s" + (
            f", p99 {result.p99:.0f} ms" if p99 is not None else ""
        )
        rows.append(Target(f"`{route}`", wanted, measured, met))
    checkout = report.checkout
    rows.append(
        Target(
            "`POST /api/orders`, one line, 16 connections",
            f"≥ {CHECKOUT_TARGET} orders/s, stock exact afterwards",
            f"{checkout.per_second:,.0f} orders/s, stock exact: {checkout.exact_text()}"
            if checkout
            else "-",
            checkout.per_second >= CHECKOUT_TARGET and checkout.exact if checkout else None,
        )
    )
    mpesa = report.mpesa
    rows.append(
        Target(
            "M-Pesa initiation `POST /api/payments/mpesa` (simulator)",
            f"≥ {MPESA_TARGET} req/s",
            f"{mpesa.per_second:,.0f} req/s" if mpesa else "-",
            mpesa.per_second >= MPESA_TARGET if mpesa else None,
        )
    )
    if report.idle:
        largest = max(report.idle, key=lambda p: p.rss)
        total = sum(p.rss for p in report.idle)
        rows.append(
            Target(
                "idle memory",
                f"no process above {LIMIT_MIB} MiB; the stack ≤ 1 GiB",
                f"largest {_mib(largest.rss)} MiB ({largest.name}); the stack {_mib(total)} MiB",
                largest.rss <= LIMIT_MIB * MIB and total <= STACK_LIMIT_MIB * MIB,
            )
        )
    else:
        rows.append(Target("idle memory", f"no process above {LIMIT_MIB} MiB", "-", None))
    return rows


def _table(header: list[str], rows: list[list[str]], right: set[int] | None = None) -> list[str]:
    right = right or set()
    rule = ["---:" if i in right else "---" for i in range(len(header))]
    return [
        "| " + " | ".join(header) + " |",
        "|" + "|".join(rule) + "|",
        *("| " + " | ".join(row) + " |" for row in rows),
    ]


def routes_table(report: Report) -> list[str]:
    direct = {run.route: run.result for run in report.routes if run.where != GATEWAY}
    rows = []
    for run in report.routes:
        r = run.result
        ratio = ""
        if run.where == GATEWAY and run.route in direct and direct[run.route].rps:
            ratio = f"{r.rps / direct[run.route].rps:.2f}"
        rows.append(
            [
                f"`{run.route}`",
                run.where,
                f"{r.rps:,.0f}",
                f"{r.p50:.1f}",
                f"{r.p99:.1f}",
                f"{r.non2xx:,}",
                ratio,
                summary(run.cpu),
            ]
        )
    header = [
        "route",
        "where",
        "req/s",
        "p50 ms",
        "p99 ms",
        "non-2xx",
        "gateway/direct",
        "CPU µs per request, by process",
    ]
    return _table(header, rows, {2, 3, 4, 5, 6})


BACKTICK, QUOTE = "`", "'"


def example_lines(result: WrkResult) -> list[str]:
    """The first answer of each status but 2xx, as the service wrote it."""
    if not result.examples:
        return []
    return [
        "",
        "The first answer of each status other than 2xx:",
        "",
        *(
            f"- {status}: `{body.replace(BACKTICK, QUOTE)}`"
            for status, body in sorted(result.examples.items())
        ),
    ]


def checkout_lines(checkout: Checkout) -> list[str]:
    r = checkout.result
    lines = [
        f"`POST /api/orders` through the gateway, one line (1 unit), {checkout.connections} "
        f"connections, {checkout.buyers} buyers in turn, {checkout.seconds} s:",
        "",
        *_table(
            ["orders/s", "p50 ms", "p99 ms", "answers", "stock exact"],
            [
                [
                    f"{checkout.per_second:,.0f}",
                    f"{r.p50:.1f}",
                    f"{r.p99:.1f}",
                    statuses_text(r.statuses) or f"{r.non2xx:,} non-2xx",
                    checkout.exact_text() if checkout.exact else f"**{checkout.exact_text()}**",
                ]
            ],
            {0, 1, 2},
        ),
        "",
        f"Stock 2 s after the run: {checkout.stock_before:,} before, {checkout.units:,} units "
        f"in the buyers' {checkout.orders:,} orders (warm-up included), "
        f"{checkout.stock_after:,} after: {checkout.stock_before:,} - {checkout.units:,} "
        + ("=" if checkout.exact_at_once else "≠")
        + f" {checkout.stock_after:,}.",
    ]
    if checkout.cpu:
        lines += ["", f"CPU µs per order, by process: {summary(checkout.cpu)}."]
    if checkout.settled_units is not None and checkout.settled_stock is not None:
        lines += [
            "",
            f"Read again {checkout.settled_after:.0f} s after the run (the M-Pesa pool's "
            f"orders included): {checkout.stock_before:,} - {checkout.settled_units:,} "
            + ("=" if checkout.exact else "≠")
            + f" {checkout.settled_stock:,}. wrk cuts the requests in flight when a run ends; "
            "an order whose placement is cut after its stock was reserved is released by "
            "the order service's sweeper (ORDER_PLACEMENT_GRACE, 120 s, then its next run).",
        ]
    return lines + example_lines(r)


def mpesa_lines(mpesa: Mpesa) -> list[str]:
    r = mpesa.result
    return [
        f"`POST /api/payments/mpesa` through the gateway against the M-Pesa simulator, "
        f"{mpesa.seconds} s, each request another pending order (a pool of {mpesa.pool:,}; "
        "a second initiation of an order answers 409):",
        "",
        *_table(
            ["initiated/s", "p50 ms", "p99 ms", "answers"],
            [
                [
                    f"{mpesa.per_second:,.0f}",
                    f"{r.p50:.1f}",
                    f"{r.p99:.1f}",
                    statuses_text(r.statuses) or f"{r.non2xx:,} non-2xx",
                ]
            ],
            {0, 1, 2},
        ),
        *(
            ["", f"CPU µs per initiation, by process (callbacks included): {summary(mpesa.cpu)}."]
            if mpesa.cpu
            else []
        ),
        *example_lines(r),
    ]


def _flag(idle: int | None, loaded: int | None) -> str:
    limit = LIMIT_MIB * MIB
    if idle is not None and idle > limit:
        return f"⚠ above {LIMIT_MIB} MiB idle"
    if loaded is not None and loaded > limit:
        return f"⚠ above {LIMIT_MIB} MiB after the load"
    return ""


def memory_table(report: Report) -> list[str]:
    after = {p.pid: p for p in report.loaded}
    idle_pids = {p.pid for p in report.idle}
    rows = []
    for p in report.idle:
        loaded = after.get(p.pid)
        rows.append(
            [
                p.name,
                str(p.pid),
                _mib(p.rss),
                _mib(loaded.rss) if loaded else "gone",
                _flag(p.rss, loaded.rss if loaded else None),
            ]
        )
    for p in report.loaded:
        if p.pid not in idle_pids:
            rows.append([p.name, str(p.pid), "-", _mib(p.rss), _flag(None, p.rss)])
    rows.append(
        [
            "**the stack**",
            "",
            _mib(sum(p.rss for p in report.idle)),
            _mib(sum(p.rss for p in report.loaded)),
            "",
        ]
    )
    return _table(["process", "pid", "idle MiB", "after the load MiB", ""], rows, {1, 2, 3})


def overload_table(report: Report) -> list[str]:
    rows = [
        [
            f"`{o.route}`",
            str(o.connections),
            f"{o.result.ok_per_second:,.0f}",
            f"{o.result.non2xx:,}",
            f"{o.result.unanswered:,}",
            f"{o.result.p50:.1f}",
            f"{o.result.p99:.1f}",
        ]
        for o in report.overload
    ]
    header = ["route", "connections", "200/s", "503s", "unanswered", "p50 ms", "p99 ms"]
    return _table(header, rows, {1, 2, 3, 4, 5, 6})


def targets_table(report: Report) -> list[str]:
    return _table(
        ["issue 11", "target", "measured", "met"],
        [[t.what, t.target, t.measured, _yes(t.met)] for t in targets(report)],
    )


def document(report: Report) -> str:
    """docs/benchmarks.md."""
    lines = [
        "# Benchmarks",
        "",
        "Written by `make bench` (scripts/bench/); do not edit by hand, run it again.",
        "",
        f"- machine: {report.machine}",
        f"- date: {report.date}",
        f"- commit: `{report.commit}`",
        f"- load: {report.load}",
        f"- catalogue: {report.catalogue}",
        "",
        "![req/s per route, direct and through the gateway](benchmarks.svg)",
        "",
        "## Against the targets of issue 11",
        "",
        *targets_table(report),
        "",
    ]
    if report.routes:
        lines += ["## Routes: direct and through the gateway", "", *routes_table(report), ""]
        errors = [
            f"- {run.route}, {run.where}: {run.result.errors}"
            for run in report.routes
            if run.result.errors
        ]
        if errors:
            lines += ["Socket errors:", "", *errors, ""]
    if report.checkout:
        lines += ["## Checkout", "", *checkout_lines(report.checkout), ""]
    if report.mpesa:
        lines += ["## M-Pesa initiation", "", *mpesa_lines(report.mpesa), ""]
    if report.idle:
        lines += [
            "## Resident memory",
            "",
            "VmRSS of the supervisor (`make run`'s `python -m scripts.stack`) and every "
            "process under it, idle (after the start, before any load) and after the load.",
            "",
            *memory_table(report),
            "",
        ]
    if report.overload:
        lines += [
            "## Overload",
            "",
            report.overload_load,
            "",
            *overload_table(report),
            "",
            "503s are refusals with Retry-After (shared.load_shedding); unanswered: no answer "
            "within wrk's timeout or no connection; p50/p99 of the answered requests.",
            "",
        ]
    return "\n".join(lines)


def readme_section(report: Report) -> str:
    """The README's figures: the chart, the link, what was measured (not the targets)."""
    lines = [
        README_START,
        "![req/s per route, direct and through the gateway](docs/benchmarks.svg)",
        "",
        f"Measured by `make bench` on {report.date} ({report.machine}; commit "
        f"`{report.commit}`); every table, the targets of issue 11 next to them and the "
        "overload runs: [docs/benchmarks.md](docs/benchmarks.md).",
        "",
    ]
    through = [run for run in report.routes if run.where == GATEWAY]
    if through:
        lines += _table(
            ["through the gateway", "req/s", "p50 ms", "p99 ms"],
            [
                [
                    f"`{run.route}`",
                    f"{run.result.rps:,.0f}",
                    f"{run.result.p50:.1f}",
                    f"{run.result.p99:.1f}",
                ]
                for run in through
            ],
            {1, 2, 3},
        )
        lines.append("")
    if report.checkout:
        c = report.checkout
        lines.append(
            f"- checkout (`POST /api/orders`, {c.connections} connections, {c.buyers} buyers): "
            f"{c.per_second:,.0f} orders/s, p50 {c.result.p50:.0f} ms, p99 {c.result.p99:.0f} ms; "
            f"stock exact afterwards: {c.exact_text()}"
        )
    if report.mpesa:
        lines.append(
            f"- M-Pesa initiation against the simulator: {report.mpesa.per_second:,.0f} req/s"
        )
    if report.idle:
        largest = max(report.idle, key=lambda p: p.rss)
        lines.append(
            f"- idle resident memory: {_mib(sum(p.rss for p in report.idle))} MiB for the "
            f"whole stack, the largest process {_mib(largest.rss)} MiB ({largest.name})"
        )
    lines.append(README_END)
    return "\n".join(lines)


def replace_section(readme: str, section: str) -> str:
    """The README with its figures between the markers replaced; ValueError without them."""
    start, end = readme.find(README_START), readme.find(README_END)
    if start < 0 or end < start:
        raise ValueError(f"the README has no {README_START} ... {README_END} section")
    return readme[:start] + section + readme[end + len(README_END) :]


def print_lines(report: Report) -> str:
    """What the terminal shows at the end: the same tables."""
    return document(report).split("\n", 4)[4]
