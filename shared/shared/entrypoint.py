"""How a container starts a service: `python -m shared.entrypoint <package>`.

    python -m shared.entrypoint auth_service   # migrate if RUN_MIGRATIONS=true, then serve
    python -m shared.entrypoint --migrate-only # apply the migrations and exit (a k8s Job)

Run from the service's folder (its `alembic.ini` is there; the images set it as
the working directory). Migrations run only when asked: in development
(`docker compose up`) every start applies them; in production they are a
separate step (`--migrate-only`, the Kubernetes migration Job) so that several
replicas starting at once never race to migrate, and a failed migration stops
the rollout instead of every pod.

Serving replaces this process with `python -m <package>` (exec), so the service
is the container's main process and receives SIGTERM itself.
"""

import argparse
import logging
import os
import sys
from pathlib import Path

from shared.logging import configure_logging

logger = logging.getLogger("shared.entrypoint")

TRUE_VALUES = frozenset({"1", "true", "yes", "on"})


def migrations_requested(environ: dict[str, str] | os._Environ = os.environ) -> bool:
    return environ.get("RUN_MIGRATIONS", "").strip().lower() in TRUE_VALUES


def migrate(alembic_ini: Path) -> None:
    from alembic import command
    from alembic.config import Config

    config = Config(str(alembic_ini))
    # Our JSON logging, not alembic.ini's text format.
    config.attributes["configure_logging"] = False
    logger.info("applying migrations", extra={"config": str(alembic_ini)})
    command.upgrade(config, "head")
    logger.info("migrations applied")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.entrypoint")
    parser.add_argument("package", nargs="?", help="the service's package, e.g. auth_service")
    parser.add_argument("--migrate-only", action="store_true", help="migrate, then exit")
    parser.add_argument("--alembic-ini", type=Path, default=Path("alembic.ini"))
    args = parser.parse_args(argv)
    if not args.migrate_only and not args.package:
        parser.error("name the service's package, or pass --migrate-only")

    configure_logging(args.package or "migrate", os.environ.get("LOG_LEVEL", "INFO"))
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
    return 0  # not reached: exec replaced this process


if __name__ == "__main__":
    sys.exit(main())
