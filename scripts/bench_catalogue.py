"""The catalogue with 10,000 products: how fast the listing answers, and which indexes it uses.

`uv run python -m scripts.bench_catalogue` (wrk optional; `BENCH_DURATION` seconds per
target under load, default 10; `BENCH_PRODUCTS`, default 10000):

1. creates a throwaway database on the PostgreSQL `make run` would use, applies the product
   service's migrations and seeds it with 10,000 products (5 % inactive), then
   `VACUUM ANALYZE`, as after any bulk load;
2. starts the product service as a real process (`python -m product_service`);
3. over HTTP, per target: the latency of one client alone (sequential requests, p50/p99),
   then, when wrk is installed, requests/s and p50/p99 under 32 connections;
4. prints the table, and the EXPLAIN ANALYZE plans of the service's own queries (built
   by `product_service.repository`, so they are the queries the service runs);
5. stops the service and drops the database.
"""

import asyncio
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from scripts.bench import CONNECTIONS, DURATION, THREADS, machine, wrk
from scripts.postgres import find_or_start_postgres
from scripts.services import ROOT
from shared.provisioning import create_database, drop_database
from shared.settings import database_url_for_asyncpg
from shared.testing import TestKeys, handed_over, listening_socket, migrate

PRODUCTS = int(os.environ.get("BENCH_PRODUCTS", "10000"))
SEQUENTIAL_REQUESTS = 300
WHERE = "at start; the service, PostgreSQL and the client on this one machine"
LIMIT = 20
SERVICE_DIR = ROOT / "product-service"

SEED = text(
    """
    INSERT INTO products
        (id, name, description, price, stock, category, sku, is_active, created_at, updated_at)
    SELECT gen_random_uuid(),
           adjective || ' ' || noun || ' ' || i,
           'A ' || lower(adjective) || ' ' || lower(noun) || ' by ' || brand
               || ', made to last. Ships within two days; one year warranty. Model '
               || i || '.',
           ((i * 7919) % 5000000) / 100.0,
           i % 80,
           (ARRAY['Electronics', 'Clothing', 'Home', 'Kitchen', 'Office', 'Garden', 'Toys',
                  'Books', 'Sports', 'Beauty'])[i % 10 + 1],
           'SKU-' || i,
           i % 20 <> 0,
           now() - i * interval '1 minute',
           now() - i * interval '1 minute'
    FROM generate_series(1, :count) AS i,
    LATERAL (SELECT
        (ARRAY['Classic', 'Compact', 'Deluxe', 'Eco', 'Heavy-duty', 'Mini', 'Portable',
               'Premium', 'Smart', 'Stainless', 'Vintage', 'Wireless'])[i % 12 + 1]
            AS adjective,
        (ARRAY['Kettle', 'Blender', 'Lamp', 'Chair', 'Backpack', 'Speaker', 'Jacket',
               'Notebook', 'Phone', 'Watch', 'Bottle', 'Headphones', 'Toaster', 'Desk',
               'Drill', 'Mug', 'Sneakers', 'Camera', 'Router', 'Pillow', 'Blanket', 'Kite',
               'Tent', 'Charger', 'Grinder'])[i % 25 + 1] AS noun,
        (ARRAY['Acme', 'Jua Kali Works', 'Savanna', 'Kilima', 'Nuru', 'Baraka', 'Tembo',
               'Pwani', 'Mto', 'Simba', 'Zuri', 'Amani', 'Upendo', 'Bahari', 'Jabali'])
            [i % 15 + 1] AS brand) AS words
    """
)
RARE = text(
    "UPDATE products SET name = 'Zanzibar spice grinder 100% teak', is_active = true"
    " WHERE sku = 'SKU-4242'"
)


def last_page(total: int) -> int:
    return max(1, (total + LIMIT - 1) // LIMIT)


def targets(active: int, kitchen: int) -> list[tuple[str, str, dict]]:
    """(label, path and query, the repository query it runs)."""
    return [
        # The floor: what any request to this process costs on this machine (no database).
        ("health (reference)", "/health", {}),
        ("search, common word", f"/api/products?search=kettle&limit={LIMIT}", {"search": "kettle"}),
        (
            "search, one match",
            f"/api/products?search=zanzibar&limit={LIMIT}",
            {"search": "zanzibar"},
        ),
        ("first page", f"/api/products?page=1&limit={LIMIT}", {"page": 1}),
        (
            "last page",
            f"/api/products?page={last_page(active)}&limit={LIMIT}",
            {"page": last_page(active)},
        ),
        (
            "category, last page",
            f"/api/products?category=Kitchen&page={last_page(kitchen)}&limit={LIMIT}",
            {"category": "Kitchen", "page": last_page(kitchen)},
        ),
        (
            "price range, by price",
            f"/api/products?minPrice=1000&maxPrice=2000&sort=price_asc&limit={LIMIT}",
            {"min_price": 1000, "max_price": 2000, "sort": "price_asc"},
        ),
    ]


async def prepare_database(url: str) -> tuple[int, int]:
    """The throwaway database, migrated and seeded; (active products, active in Kitchen)."""
    await create_database(url, if_missing=True)
    await migrate(SERVICE_DIR, url)
    engine = create_async_engine(database_url_for_asyncpg(url))
    try:
        started = time.perf_counter()
        async with engine.begin() as connection:
            await connection.execute(SEED, {"count": PRODUCTS})
            await connection.execute(RARE)
        seeded = time.perf_counter() - started
        async with engine.connect() as connection:
            await connection.execution_options(isolation_level="AUTOCOMMIT")
            await connection.execute(text("VACUUM ANALYZE products"))
            active = await connection.scalar(text("SELECT count(*) FROM products WHERE is_active"))
            kitchen = await connection.scalar(
                text("SELECT count(*) FROM products WHERE is_active AND category = 'Kitchen'")
            )
            version = await connection.scalar(text("SHOW server_version"))
        print(
            f"seeded {PRODUCTS} products in {seeded:.1f} s ({active} active); PostgreSQL {version}"
        )
        return int(active), int(kitchen)
    finally:
        await engine.dispose()


def start_service(url: str, sock: socket.socket) -> subprocess.Popen:
    """The product service on `sock` (bound here, handed over: shared.server)."""
    port = sock.getsockname()[1]
    env = {key: value for key, value in os.environ.items() if key in ("PATH", "HOME", "LANG")}
    env.update(
        PRODUCT_DATABASE_URL=url,
        HOST="127.0.0.1",
        LOG_LEVEL="WARNING",
        WORKERS_ENABLED="false",
        **TestKeys().settings_for("product"),
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "product_service"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        **handed_over(sock, env),
    )
    sock.close()  # the service's now
    deadline = time.monotonic() + 60
    with httpx.Client(timeout=2) as client:
        while True:
            try:
                if client.get(f"http://127.0.0.1:{port}/health").status_code == 200:
                    return process
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                stop(process)
                raise SystemExit(f"the product service did not start:\n{process.stderr.read()}")
            time.sleep(0.2)


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a process has used so far (Linux; 0 elsewhere)."""
    stat = Path(f"/proc/{pid}/stat")
    if not stat.exists():
        return 0.0
    fields = stat.read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def sequential(client: httpx.Client, url: str, service_pid: int) -> dict:
    """One client alone: the latency of a request when nothing else is asked, and the CPU
    the service spends on it (which other load on the machine hardly changes)."""
    for _ in range(20):  # warm-up: connections, prepared statements, caches
        client.get(url).raise_for_status()
    timings, found = [], 0
    cpu_before = cpu_seconds(service_pid)
    for _ in range(SEQUENTIAL_REQUESTS):
        started = time.perf_counter()
        response = client.get(url)
        timings.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
        found = response.json().get("totalProducts", "-")
    cpu = (cpu_seconds(service_pid) - cpu_before) / SEQUENTIAL_REQUESTS * 1000
    timings.sort()
    return {
        "cpu": cpu,
        "p50": statistics.median(timings),
        "p99": timings[int(len(timings) * 0.99) - 1],
        "rps": len(timings) / (sum(timings) / 1000),
        "found": found,
    }


async def explain(url: str, cases: list[tuple[str, str, dict]]) -> None:
    from product_service.repository import (
        CatalogueQuery,
        catalogue_count_statement,
        catalogue_statement,
    )

    engine = create_async_engine(database_url_for_asyncpg(url))
    try:
        async with engine.connect() as connection:
            for label, path, params in cases:
                if not path.startswith("/api/products"):
                    continue
                page = params.pop("page", 1)
                query = CatalogueQuery(**params)
                for title, statement in (
                    ("page", catalogue_statement(query, offset=(page - 1) * LIMIT, limit=LIMIT)),
                    ("count", catalogue_count_statement(query)),
                ):
                    sql = statement.compile(
                        engine.sync_engine, compile_kwargs={"literal_binds": True}
                    )
                    rows = await connection.execute(text(f"EXPLAIN (ANALYZE, BUFFERS) {sql}"))
                    print(f"--- {label}: {title} query")
                    print("\n".join(row[0] for row in rows))
                    print()
    finally:
        await engine.dispose()


def main() -> int:
    server = find_or_start_postgres()
    url = server.url(f"bench_catalogue_{uuid.uuid4().hex[:8]}")
    sock = listening_socket()
    port = sock.getsockname()[1]
    process = None
    try:
        cases = targets(*asyncio.run(prepare_database(url)))
        process = start_service(url, sock)
        base = f"http://127.0.0.1:{port}"
        has_wrk = shutil.which("wrk") is not None
        rows = []
        with httpx.Client(base_url=base, timeout=30) as client:
            for label, path, _ in cases:
                alone = sequential(client, path, process.pid)
                loaded = None
                if has_wrk:
                    wrk(base + path, duration=2)  # warm-up
                    loaded = wrk(base + path, duration=DURATION)
                rows.append((label, path, alone, loaded))
        print_table(rows, has_wrk)
        asyncio.run(explain(url, cases))
    finally:
        if process is not None:
            stop(process)
        asyncio.run(drop_database(url))
        if server.stop:
            server.stop()
    return 0


def print_table(rows, has_wrk: bool) -> None:
    print(f"\nmachine: {machine(WHERE)}")
    print(
        f"{PRODUCTS} products, limit={LIMIT}; 'alone': {SEQUENTIAL_REQUESTS} sequential requests"
        " from one client (httpx); CPU/req: the service process's CPU time per request"
        + (
            f"; 'loaded': wrk -t{THREADS} -c{CONNECTIONS} -d{DURATION}s"
            if has_wrk
            else "; wrk not installed: no figures under load"
        )
        + "\n"
    )
    print(
        f"| {'target':<22} | {'found':>5} | {'alone p50':>9} | {'alone p99':>9} | "
        f"{'CPU/req':>8} | "
        f"{'loaded req/s':>12} | {'loaded p50':>10} | {'loaded p99':>10} | {'non-2xx':>7} |"
    )
    print(
        f"|{'-' * 24}|{'-' * 7}|{'-' * 11}|{'-' * 11}|{'-' * 10}|{'-' * 14}|{'-' * 12}|{'-' * 12}|"
        f"{'-' * 9}|"
    )
    for label, _, alone, loaded in rows:
        load_cells = (
            f"{loaded.rps:>12.0f} | {loaded.p50:>7.2f} ms | {loaded.p99:>7.2f} ms | "
            f"{loaded.non2xx:>7}"
            if loaded
            else f"{'-':>12} | {'-':>10} | {'-':>10} | {'-':>7}"
        )
        print(
            f"| {label:<22} | {alone['found']:>5} | {alone['p50']:>6.2f} ms | "
            f"{alone['p99']:>6.2f} ms | {alone['cpu']:>5.2f} ms | {load_cells} |"
        )
    print()
    for label, path, _, _ in rows:
        print(f"{label}: GET {path}")
    print()


if __name__ == "__main__":
    sys.exit(main())
