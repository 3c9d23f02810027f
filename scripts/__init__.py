"""Developer tooling behind the Makefile: `make run` (stack.py), PostgreSQL
discovery and provisioning (postgres.py), `make bench` (bench/)."""
