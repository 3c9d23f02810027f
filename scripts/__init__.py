"""Developer tooling behind the Makefile: `make run` (stack.py), PostgreSQL
discovery and provisioning (postgres.py), `make bench` (bench/)."""

import shared  # noqa: F401  (first: it keeps httpx's command line out of memory, see there)
