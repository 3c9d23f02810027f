"""The catalogue's queries use the indexes of the migrations (plans, not timings: the
figures are measured by scripts/bench_catalogue.py)."""

import pytest
from sqlalchemy import text

from product_service.repository import (
    CatalogueQuery,
    catalogue_count_statement,
    catalogue_page_with_count_statement,
    catalogue_statement,
)

PRODUCTS = 5000

# Enough rows, with statistics, for the planner to prefer indexes where they pay.
SEED = text(
    """
    INSERT INTO products (id, name, description, price, stock, category, is_active, created_at)
    SELECT gen_random_uuid(),
           (ARRAY['Phone', 'Laptop', 'Shirt', 'Kettle', 'Chair'])[i % 5 + 1] || ' model ' || i,
           'Sturdy item number ' || i || ' for home and office',
           (i % 997) * 10 + 0.99,
           i % 50,
           (ARRAY['Electronics', 'Clothing', 'Home', 'Office', 'Garden', 'Toys', 'Books',
                  'Sports'])[i % 8 + 1],
           i % 20 <> 0,
           now() - i * interval '1 minute'
    FROM generate_series(1, :count) AS i
    """
)


@pytest.fixture
async def big_catalogue(engine):
    async with engine.begin() as connection:
        await connection.execute(SEED, {"count": PRODUCTS})
        await connection.execute(
            text(
                "INSERT INTO products (id, name, description, price) VALUES"
                " (gen_random_uuid(), 'Zebra mug 50%_off', 'Rare find', 12.00)"
            )
        )
    async with engine.connect() as connection:
        await connection.execution_options(isolation_level="AUTOCOMMIT")
        # As after any bulk load (autovacuum would, a little later): statistics, and the
        # trigram indexes' pending list merged, so that the planner prices them right.
        await connection.execute(text("VACUUM ANALYZE products"))


async def _plan(engine, statement) -> str:
    compiled = statement.compile(engine.sync_engine, compile_kwargs={"literal_binds": True})
    async with engine.connect() as connection:
        rows = await connection.execute(text(f"EXPLAIN {compiled}"))
        return "\n".join(row[0] for row in rows)


# (query, offset, the index its plan must use)
CASES = [
    (CatalogueQuery(), 0, "ix_products_active_newest"),
    (CatalogueQuery(), 4700, "ix_products_active_newest"),
    (CatalogueQuery(sort="price_asc"), 0, "ix_products_active_price"),
    (CatalogueQuery(sort="price_desc"), 0, "ix_products_active_price"),
    (CatalogueQuery(sort="name"), 0, "ix_products_active_name"),
    (CatalogueQuery(max_stock=2, sort="stock_asc"), 0, "ix_products_active_stock"),
    (CatalogueQuery(category="Toys"), 550, "ix_products_active_category"),
    (CatalogueQuery(search="50%_off"), 0, "ix_products_name_trgm"),
    (CatalogueQuery(search="zebra"), 0, "ix_products_description_trgm"),
    (CatalogueQuery(include_inactive=True), 0, "ix_products_newest"),
]


async def test_every_filter_and_sort_uses_an_index(big_catalogue, engine):
    # One test for every case: the catalogue is seeded once (tables are emptied per test).
    failures = []
    for query, offset, index in CASES:
        plan = await _plan(engine, catalogue_statement(query, offset=offset, limit=20))
        if index not in plan or "Seq Scan" in plan:
            failures.append(f"{query} offset {offset}: expected {index}\n{plan}")
    # What the service runs: the page with the count as a subquery run once (InitPlan),
    # each part with its own plan.
    for query, offset, index in CASES:
        statement = catalogue_page_with_count_statement(query, offset=offset, limit=20)
        plan = await _plan(engine, statement)
        if index not in plan or "InitPlan" not in plan:
            failures.append(f"page and count: {query} offset {offset}: expected {index}\n{plan}")
    count_plan = await _plan(engine, catalogue_count_statement(CatalogueQuery(search="zebra")))
    if "ix_products_name_trgm" not in count_plan or "Seq Scan" in count_plan:
        failures.append(f"count of a search\n{count_plan}")
    assert not failures, "\n\n".join(failures)
