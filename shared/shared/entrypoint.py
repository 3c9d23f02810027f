"""How a container starts a service: `python -m shared.entrypoint <package>`.

    python -m shared.entrypoint auth_service   # migrate if RUN_MIGRATIONS=true, then serve
    python -m shared.entrypoint --migrate-only # apply the migrations and exit (a k8s Job)
    python -m shared.entrypoint --wait-for-migrations  # until the database is at head

Run from the service's folder (its `alembic.ini` is there; the images set it as
the working directory). Migrations run only when asked: in development
(`docker compose up`) every start applies them; in production they are a
separate step (`--migrate-only`, the Kubernetes migration Job) so that several
replicas starting at once never race to migrate, and a failed migration stops
the rollout instead of every pod.

`--wait-for-migrations` is a Kubernetes init container's: a new version's pods
wait until its migration Job has brought the database to their schema.

Serving replaces this process with `python -m <package>` (exec), so the service
is the container's main process and receives SIGTERM itself.
"""

import argparse
import io
import logging
import os
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from shared.logging import configure_logging

if TYPE_CHECKING:
    from alembic.config import Config

logger = logging.getLogger("shared.entrypoint")

RUN_MIGRATIONS_VARIABLE = "RUN_MIGRATIONS"
TRUE_VALUES = frozenset({"1", "true", "yes", "on"})
WAIT_INTERVAL_SECONDS = 3.0


def migrations_requested(environ: Mapping[str, str] = os.environ) -> bool:
    return environ.get(RUN_MIGRATIONS_VARIABLE, "").strip().lower() in TRUE_VALUES


def _alembic_config(alembic_ini: Path) -> "Config":
    from alembic.config import Config

    config = Config(str(alembic_ini))
    # Our JSON logging, not alembic.ini's text format.
    config.attributes["configure_logging"] = False
    return config


def migrate(alembic_ini: Path) -> None:
    from alembic import command

    logger.info("applying migrations", extra={"config": str(alembic_ini)})
    command.upgrade(_alembic_config(alembic_ini), "head")
    logger.info("migrations applied")


def at_head(alembic_ini: Path) -> bool:
    """Whether the database's revision is every head of the service's migrations."""
    from alembic import command
    from alembic.script import ScriptDirectory

    config = _alembic_config(alembic_ini)
    config.stdout = io.StringIO()
    command.current(config)  # prints e.g. "0003 (head)"
    current = config.stdout.getvalue()
    heads = ScriptDirectory.from_config(config).get_heads()
    return all(f"{head} (head)" in current for head in heads)


def wait_for_migrations(alembic_ini: Path, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if at_head(alembic_ini):
                logger.info("database schema is up to date")
                return True
            reason = "migrations pending"
        except Exception as exc:  # the database may not be up yet
            reason = type(exc).__name__
        if time.monotonic() > deadline:
            logger.error("gave up waiting for migrations", extra={"reason": reason})
            return False
        logger.info("waiting for migrations", extra={"reason": reason})
        time.sleep(WAIT_INTERVAL_SECONDS)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.entrypoint")
    parser.add_argument("package", nargs="?", help="the service's package, e.g. auth_service")
    parser.add_argument("--migrate-only", action="store_true", help="migrate, then exit")
    parser.add_argument(
        "--wait-for-migrations",
        action="store_true",
        help="wait until the database is at the migrations' head, then exit",
    )
    parser.add_argument("--timeout", type=float, default=600.0, help="of the wait, in seconds")
    parser.add_argument("--alembic-ini", type=Path, default=Path("alembic.ini"))
    args = parser.parse_args(argv)
    if not (args.migrate_only or args.wait_for_migrations or args.package):
        parser.error("name the service's package, or pass --migrate-only/--wait-for-migrations")

    configure_logging(args.package or "migrations", os.environ.get("LOG_LEVEL", "INFO"))
    # Alembic announces each of its plugins at INFO; keep its "Running upgrade" lines.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    if args.wait_for_migrations:
        return 0 if wait_for_migrations(args.alembic_ini, args.timeout) else 1
    if args.migrate_only or migrations_requested():
        try:
            migrate(args.alembic_ini)
        except Exception:
            logger.exception("migrations failed")
            return 1
    if args.migrate_only:
        return 0
    sys.stdout.flush()
    # The package name is ours (the image's CMD), not user input.
    os.execv(sys.executable, [sys.executable, "-m", args.package])  # noqa: S606


if __name__ == "__main__":
    sys.exit(main())
