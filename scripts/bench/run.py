"""`make bench`, step by step (progress lines with the seconds elapsed):

1. starts the stack as `make run` does (scripts/throwaway_stack.py: throwaway databases,
   sockets handed over; the M-Pesa simulator in it), rate limits off, LOG_LEVEL=WARNING,
   and reads every process's resident memory (idle);
2. inserts 10,000 products into the product service's database (scripts/bench_catalogue's
   SEED, then VACUUM ANALYZE), makes the checkout product through the API (as the admin,
   BENCH_ADMIN), a customer with a cart of two lines and BUYERS buyers;
3. routes (BENCH_PARTS "direct"): wrk -t2 -c32, WARMUP s then BENCH_DURATION s, each
   route on its service and through the gateway;
4. checkout ("checkout"): POST /api/orders through the gateway, 16 connections, the
   buyers in turn, each request its own Idempotency-Key (checkout.lua); then the stock
   (read from the product database: no cache in between) checked equal to the stock
   before minus the units in the buyers' orders;
5. M-Pesa ("mpesa"): POST /api/payments/mpesa through the gateway against the simulator,
   each request another pending order (the checkout's, topped up to MPESA_POOL);
6. memory again (after the load), then the overload runs ("overload");
7. prints the tables; a full run (BENCH_PARTS unset or "all") writes docs/benchmarks.md,
   docs/benchmarks.svg and the README's figures.

BENCH_PARTS takes one part or several ("direct,checkout").
"""

import asyncio
import dataclasses
import os
import resource
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections import deque
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from scripts.bench import DURATION, chart, cpu, data, machine, report
from scripts.bench.memory import stack_memory
from scripts.bench.wrk import (
    CLIENT_TIMEOUT,
    CONNECTIONS,
    THREADS,
    WrkResult,
    statuses_text,
    wrk,
)
from scripts.postgres import find_or_start_postgres
from scripts.services import ROOT
from scripts.stack import DEFAULT_WORKERS
from scripts.throwaway_stack import StackEnvironment, drop_stack_databases, stack_environment
from shared.settings import database_url_for_asyncpg

HERE = Path(__file__).parent
WARMUP = 3
OVERLOAD_DURATION = int(os.environ.get("OVERLOAD_DURATION", "15"))
CHECKOUT_CONNECTIONS = 16
BUYERS = 6
# ORDER_PLACEMENT_GRACE (120 s) and ORDER_SWEEP_INTERVAL (30 s) of the order service.
SETTLE_SECONDS = 155
MPESA_POOL = int(os.environ.get("MPESA_POOL", "2000"))
ALL_PARTS = ("direct", "checkout", "mpesa", "overload")
_parts = os.environ.get("BENCH_PARTS", "all")
PARTS = set(ALL_PARTS) if _parts == "all" else {p.strip() for p in _parts.split(",")}
BENCH_ADMIN = ("bench-admin@example.com", "bench-admin-password")
# Settings of the stack a run may try other values of (passed on when set).
LOAD_SETTINGS = (
    "MAX_CONCURRENT_REQUESTS",
    "MAX_QUEUED_REQUESTS",
    "MAX_QUEUE_WAIT",
    "UPSTREAM_MAX_CONCURRENCY",
    "UPSTREAM_MAX_QUEUE",
    "EVENT_LOOP",
    "DB_POOL_PRE_PING",
    "DB_POOL_SIZE",
    "WEB_CONCURRENCY",
    "PAYMENT_WEB_CONCURRENCY",
)
_STARTED = time.monotonic()


def progress(message: str) -> None:
    print(f"[{time.monotonic() - _STARTED:5.0f} s] {message}", flush=True)


async def _postgres(url: str) -> str:
    engine = create_async_engine(database_url_for_asyncpg(url))
    try:
        async with engine.connect() as connection:
            version = await connection.scalar(text("SHOW server_version"))
            limit = await connection.scalar(text("SHOW max_connections"))
            used = await connection.scalar(text("SELECT count(*) FROM pg_stat_activity"))
        return f"PostgreSQL {version} (max_connections {limit}, {used} in use at the start)"
    finally:
        await engine.dispose()


def postgres(url: str) -> str:
    """Its version and how many of its connections others already hold: past
    max_connections the services answer 503 (a shared machine's, not the stack's)."""
    return asyncio.run(_postgres(url))


def commit() -> str:
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()

    try:
        head = git("rev-parse", "--short", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def raise_file_limit(wanted: int = 4096) -> None:
    """Each connection is a file descriptor, in wrk and in the gateway (which inherits the
    limit from here): the usual soft limit of 1,024 would fail before the stack does."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        ceiling = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (ceiling, hard))


def start_stack(environment: StackEnvironment) -> subprocess.Popen[str]:
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


def measure(
    label: str, url: str, supervisor: int, **options: object
) -> tuple[WrkResult, dict[str, float]]:
    """A warm-up, then the measured run, with the CPU each process spent per request."""
    wrk(url, duration=WARMUP, **options)  # type: ignore[arg-type]
    before = cpu.snapshot(supervisor)
    result = wrk(url, duration=DURATION, **options)  # type: ignore[arg-type]
    used = cpu.per_request(before, cpu.snapshot(supervisor), result.requests)
    progress(
        f"  {label}: {result.rps:,.0f} req/s, p50 {result.p50:.1f} ms, p99 {result.p99:.1f} ms"
        + (f", {result.non2xx:,} non-2xx" if result.non2xx else "")
        + f"; CPU µs/request {cpu.summary(used)}"
    )
    return result, used


def run_routes(
    env: StackEnvironment, customer: data.User, catalogue: data.Catalogue, supervisor: int
):
    gateway = env.url("gateway")
    auth, product, cart = env.url("auth"), env.url("product"), env.url("cart")
    by_id = f"/api/products/{catalogue.product_id}"
    search = f"/api/products?search={data.SEARCH_WORD}&limit=20"
    signed_in = customer.authorization
    post = ROOT / "scripts" / "wrk-post.lua"
    routes = [
        ("GET /health", "auth service", f"{auth}/health", {}, None),
        ("GET /health", report.GATEWAY, f"{gateway}/health", {}, None),
        (
            "GET /api/products?limit=10",
            "product service",
            f"{product}/api/products?limit=10",
            {},
            None,
        ),
        (
            "GET /api/products?limit=10",
            report.GATEWAY,
            f"{gateway}/api/products?limit=10",
            {},
            None,
        ),
        ("GET /api/products/:id", "product service", product + by_id, {}, None),
        ("GET /api/products/:id", report.GATEWAY, gateway + by_id, {}, None),
        ("GET /api/products?search=<word>&limit=20", "product service", product + search, {}, None),
        ("GET /api/products?search=<word>&limit=20", report.GATEWAY, gateway + search, {}, None),
        ("GET /api/cart", "cart service", f"{cart}/api/cart", signed_in, None),
        ("GET /api/cart", report.GATEWAY, f"{gateway}/api/cart", signed_in, None),
        ("GET /api/auth/profile", "auth service", f"{auth}/api/profile", signed_in, None),
        ("GET /api/auth/profile", report.GATEWAY, f"{gateway}/api/auth/profile", signed_in, None),
        # No token: the auth service answers 401 from memory, so this pair isolates what
        # the proxy itself costs.
        ("POST /api/auth/verify (401)", "auth service", f"{auth}/api/verify", {}, post),
        ("POST /api/auth/verify (401)", report.GATEWAY, f"{gateway}/api/auth/verify", {}, post),
    ]
    runs = []
    for route, where, url, headers, script in routes:
        result, used = measure(f"{route}, {where}", url, supervisor, headers=headers, script=script)
        runs.append(report.RouteRun(route, where, result, used))
    return runs


async def _stock(database_url: str, product_id: str) -> int:
    engine = create_async_engine(database_url_for_asyncpg(database_url))
    try:
        async with engine.connect() as connection:
            value = await connection.scalar(
                text("SELECT stock FROM products WHERE id = :id"), {"id": product_id}
            )
            return int(value)
    finally:
        await engine.dispose()


def stock_in_database(env: StackEnvironment, product_id: str) -> int:
    return asyncio.run(_stock(env.env["PRODUCT_DATABASE_URL"], product_id))


def run_checkout(
    env: StackEnvironment, buyers: list[data.User], product: dict, work: Path, supervisor: int
):
    gateway = env.url("gateway")
    tokens = work / "buyers.txt"
    tokens.write_text("".join(f"{buyer.token}\n" for buyer in buyers))
    before = stock_in_database(env, product["id"])
    options = dict(connections=CHECKOUT_CONNECTIONS, script=HERE / "checkout.lua")
    arguments = (str(tokens), product["id"], product["name"])
    wrk(f"{gateway}/api/orders", duration=WARMUP, script_args=(*arguments, "warm-up"), **options)
    cpu_before = cpu.snapshot(supervisor)
    result = wrk(
        f"{gateway}/api/orders", duration=DURATION, script_args=(*arguments, "run"), **options
    )
    cpu_after = cpu.snapshot(supervisor)
    ended = time.monotonic()
    time.sleep(2)  # the requests wrk left in flight end
    orders = [order for buyer in buyers for order in data.orders_of(gateway, buyer)]
    checkout = report.Checkout(
        result=result,
        buyers=len(buyers),
        connections=CHECKOUT_CONNECTIONS,
        seconds=DURATION,
        orders=len(orders),
        created=result.requests - result.non2xx,
        stock_before=before,
        units=data.units_ordered(orders, product["id"]),
        stock_after=stock_in_database(env, product["id"]),
        cpu=cpu.per_request(cpu_before, cpu_after, result.requests - result.non2xx),
    )
    progress(
        f"  checkout: {checkout.per_second:,.0f} orders/s, p50 {result.p50:.1f} ms, "
        f"p99 {result.p99:.1f} ms, answers {statuses_text(result.statuses)}; stock exact: "
        + checkout.exact_text()
    )
    return checkout, ended


def settle_stock(
    env: StackEnvironment,
    buyers: list[data.User],
    product: dict[str, Any],
    checkout: report.Checkout,
    ended: float,
) -> report.Checkout:
    """The stock read again until exact, for at most SETTLE_SECONDS after the run: a
    placement cut by the end of a wrk run keeps its reservation until the order
    service's sweeper releases it."""
    progress(f"  the stock was off: read again until exact ({SETTLE_SECONDS} s at most)")
    gateway = env.url("gateway")
    while True:
        orders = [order for buyer in buyers for order in data.orders_of(gateway, buyer)]
        units = data.units_ordered(orders, product["id"])
        stock = stock_in_database(env, product["id"])
        settled = dataclasses.replace(
            checkout,
            settled_units=units,
            settled_stock=stock,
            settled_after=time.monotonic() - ended,
        )
        if settled.exact or time.monotonic() - ended > SETTLE_SECONDS:
            progress(f"  checkout: stock exact: {settled.exact_text()}")
            return settled
        time.sleep(5)


def run_mpesa(
    env: StackEnvironment, buyers: list[data.User], product: dict, work: Path, supervisor: int
):
    gateway = env.url("gateway")
    pending = [
        (buyer.token, order["id"])
        for buyer in buyers
        for order in data.orders_of(gateway, buyer)
        if order["status"] == "pending" and order["paymentStatus"] == "pending"
    ]
    if len(pending) < MPESA_POOL:
        progress(f"  placing {MPESA_POOL - len(pending):,} more orders for the M-Pesa pool")
        tokens = {buyer.id: buyer.token for buyer in buyers}
        placed = data.place_orders(gateway, buyers, product, MPESA_POOL - len(pending))
        pending += [(tokens[order["userId"]], order["id"]) for order in placed]
    pool = work / "mpesa-pool.txt"
    pool.write_text("".join(f"{token} {order_id}\n" for token, order_id in pending))
    options = dict(script=HERE / "mpesa.lua")
    url = f"{gateway}/api/payments/mpesa"
    common = (str(pool), data.MPESA_PHONE)
    wrk(url, duration=WARMUP, script_args=(*common, "backward", str(THREADS)), **options)
    before = cpu.snapshot(supervisor)
    result = wrk(url, duration=DURATION, script_args=(*common, "forward", str(THREADS)), **options)
    used = cpu.per_request(before, cpu.snapshot(supervisor), result.requests - result.non2xx)
    mpesa = report.Mpesa(result=result, pool=len(pending), seconds=DURATION, cpu=used)
    if result.requests - result.non2xx >= len(pending) // 2:
        progress(
            f"  the measured run took most of the pool: MPESA_POOL={2 * len(pending)} is safer"
        )
    progress(
        f"  M-Pesa initiation: {mpesa.per_second:,.0f} req/s, p50 {result.p50:.1f} ms, "
        f"p99 {result.p99:.1f} ms, answers {statuses_text(result.statuses)} "
        f"(pool of {len(pending):,} orders); CPU µs/initiation {cpu.summary(used)}"
    )
    return mpesa


def run_overload(gateway: str) -> list[report.Overload]:
    """The same routes at 32 connections and far beyond what the stack takes at once."""
    runs = [
        ("GET /api/products?limit=10", f"{gateway}/api/products?limit=10", 32),
        ("GET /api/products?limit=10", f"{gateway}/api/products?limit=10", 500),
        ("GET /api/products?limit=10", f"{gateway}/api/products?limit=10", 1000),
        ("GET /health (gateway)", f"{gateway}/health", 1000),
    ]
    results = []
    for route, url, connections in runs:
        wrk(url, duration=2, connections=connections)  # warm-up
        result = wrk(url, duration=OVERLOAD_DURATION, connections=connections)
        progress(
            f"  overload {route}, {connections} connections: {result.ok_per_second:,.0f} 200/s, "
            f"{result.non2xx:,} 503s, {result.unanswered:,} unanswered"
        )
        results.append(report.Overload(route, connections, result))
    return results


def write_outputs(result: report.Report) -> None:
    docs = ROOT / "docs"
    (docs / "benchmarks.md").write_text(report.document(result))
    (docs / "benchmarks.svg").write_text(chart.svg(result))
    readme = ROOT / "README.md"
    readme.write_text(report.replace_section(readme.read_text(), report.readme_section(result)))
    progress("wrote docs/benchmarks.md, docs/benchmarks.svg and README.md's Performance figures")


def main() -> int:
    if not shutil.which("wrk"):
        print("make bench needs wrk: sudo apt-get install wrk (Debian/Ubuntu) or brew install wrk")
        return 1
    unknown = PARTS - set(ALL_PARTS)
    if unknown:
        print(f"BENCH_PARTS: unknown {', '.join(sorted(unknown))} (parts: {', '.join(ALL_PARTS)})")
        return 1
    raise_file_limit()
    result = report.Report(
        machine=machine("at the start; the stack, PostgreSQL and wrk on this machine"),
        date=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        commit=commit(),
        load=f"wrk -t{THREADS} -c{CONNECTIONS}, {WARMUP} s warm-up then {DURATION} s per run",
        catalogue=(f"{data.PRODUCTS:,} products; search word `{data.SEARCH_WORD}`"),
        overload_load=(
            f"wrk -t{THREADS}, 2 s warm-up then {OVERLOAD_DURATION} s, timeout {CLIENT_TIMEOUT} s,"
            " through the gateway"
        ),
    )
    progress(
        f"machine: {result.machine}; commit {result.commit}; parts: {', '.join(sorted(PARTS))}"
    )
    server = find_or_start_postgres()
    database = postgres(server.url("postgres"))
    result.machine += "; " + database
    progress(database)
    environment = stack_environment(
        server.url("postgres"),
        "bench",
        RATE_LIMIT_ENABLED="false",
        LOG_LEVEL="WARNING",
        ADMIN_EMAIL=BENCH_ADMIN[0],
        ADMIN_PASSWORD=BENCH_ADMIN[1],
        # The worker processes `make run` gives the payment service (the throwaway stacks
        # of the tests give it one).
        PAYMENT_WEB_CONCURRENCY=DEFAULT_WORKERS["payment"],
        **{name: os.environ[name] for name in LOAD_SETTINGS if name in os.environ},
    )
    progress("starting the stack")
    process = start_stack(environment)
    checkout_ended = 0.0
    try:
        time.sleep(2)  # idle: nothing asked yet
        result.idle = stack_memory(process.pid)
        progress(
            f"stack up: {len(result.idle)} processes, "
            f"{sum(p.rss for p in result.idle) / 2**20:,.0f} MiB resident"
        )
        gateway = environment.url("gateway")
        catalogue = data.seed_catalogue(environment.env["PRODUCT_DATABASE_URL"])
        result.catalogue = (
            f"{data.PRODUCTS:,} products ({catalogue.active:,} active), inserted into the "
            f"product database then VACUUM ANALYZE; the search word `{data.SEARCH_WORD}` "
            f"matches {catalogue.matching:,} active products"
        )
        admin = data.login(gateway, *BENCH_ADMIN)
        product = data.checkout_product(gateway, admin)
        customer = data.customer_with_cart(gateway, catalogue.cart_products)
        buyers = data.buyers(gateway, BUYERS)
        progress(f"data: {result.catalogue}; a customer with 2 cart lines; {BUYERS} buyers")
        with tempfile.TemporaryDirectory(prefix="bench-") as folder:
            work = Path(folder)
            if "direct" in PARTS:
                progress("routes, direct and through the gateway")
                result.routes = run_routes(environment, customer, catalogue, process.pid)
            if "checkout" in PARTS:
                progress("checkout: POST /api/orders")
                result.checkout, checkout_ended = run_checkout(
                    environment, buyers, product, work, process.pid
                )
            if "mpesa" in PARTS:
                progress("M-Pesa initiation: POST /api/payments/mpesa")
                result.mpesa = run_mpesa(environment, buyers, product, work, process.pid)
        if "overload" in PARTS:
            progress("overload")
            result.overload = run_overload(gateway)
        result.loaded = stack_memory(process.pid)
        if result.checkout and not result.checkout.exact_at_once:
            result.checkout = settle_stock(
                environment, buyers, product, result.checkout, checkout_ended
            )
    finally:
        progress("stopping the stack")
        process.send_signal(signal.SIGINT)
        process.wait(timeout=60)
        drop_stack_databases(environment.env)
        if server.stop:
            server.stop()
    print()
    print(report.print_lines(result))
    if PARTS.issuperset(ALL_PARTS):
        write_outputs(result)
    else:
        progress("a partial run (BENCH_PARTS): docs/benchmarks.md and the README left as they are")
    progress("done")
    return 0
