# One image recipe for every Python service of the workspace; the service is a build
# argument (its folder). The build context is the repository root:
#
#   docker build --build-arg SERVICE=auth-service -t ecommerce/auth-service .
#
# docker-compose.yml builds each service this way. Stages:
#   runtime   what every image shares: the Python base, an unprivileged user, no pip
#   locked    only the workspace's pyproject.toml files and uv.lock (a layer that
#             changes only when the dependencies do)
#   builder   uv installs exactly what uv.lock pins for SERVICE into /app/.venv:
#             third-party packages first (cached across code changes), then the
#             shared library and the service, as wheels (no source tree needed)
#   final     runtime + /app: the environment, the Alembic migrations, a start script
#
# PYTHON_IMAGE is the base of every stage. Its default is the official image; a
# machine that cannot pull it passes a local one with the same layout (python3.11 on
# PATH, `python -m venv` working): `make compose-test` makes such an image when needed.
# Only features of the Dockerfile frontend built into Docker 20.10 and later are used
# (no `# syntax=` line: that would pull a frontend image from a registry).

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---- runtime: the layers every service image shares --------------------------------
FROM ${PYTHON_IMAGE} AS runtime
# pip, setuptools and wheel of the base image are build tools a service never uses.
RUN if python -m pip --version >/dev/null 2>&1; then \
        python -m pip uninstall --yes --quiet --root-user-action=ignore pip setuptools wheel; \
    fi \
    && groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin app
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONNODEBUGRANGES=1 \
    HOST=0.0.0.0 \
    RUN_MIGRATIONS=false

# ---- locked: the dependency declarations alone --------------------------------------
FROM ${PYTHON_IMAGE} AS locked
WORKDIR /src
COPY . .
# Keep uv.lock and every pyproject.toml, drop the rest: the builder's first `uv sync`
# then reruns only when these change, not on every code change.
RUN find . -type f ! -name pyproject.toml ! -name uv.lock -delete \
    && find . -depth -type d -empty -delete

# ---- builder --------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS builder
ARG UV_VERSION=0.13.9
# uv from PyPI (its own image lives on a registry an offline machine cannot reach).
RUN python -m venv /opt/uv \
    && /opt/uv/bin/python -m pip install --quiet --disable-pip-version-check "uv==${UV_VERSION}"
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv
ARG SERVICE
RUN test -n "${SERVICE}" || { echo "pass --build-arg SERVICE=<folder>, e.g. auth-service" >&2; exit 1; }
WORKDIR /src
COPY --from=locked /src ./
RUN --mount=type=cache,target=/root/.cache/uv \
    /opt/uv/bin/uv sync --locked --no-dev --no-install-workspace --package "${SERVICE}" \
        --python "$(command -v python3.11)"
COPY . .
RUN --mount=type=cache,target=/root/.cache/uv \
    /opt/uv/bin/uv sync --locked --no-dev --no-editable --package "${SERVICE}" \
        --python "$(command -v python3.11)"
# /app/service: the working directory of the final image, with the service's Alembic
# files when it has a database; /app/start: how the image starts the service.
RUN set -e; \
    package="$(echo "${SERVICE}" | tr - _)"; \
    mkdir -p /app/service; \
    if [ -f "${SERVICE}/alembic.ini" ]; then \
        cp "${SERVICE}/alembic.ini" /app/service/; \
        cp -r "${SERVICE}/migrations" /app/service/; \
        main="shared.entrypoint ${package}"; \
    else \
        main="${package}"; \
    fi; \
    test -f "/app/.venv/lib/python3.11/site-packages/${package}/__main__.py"; \
    printf '#!/bin/sh\n# Migrates first when RUN_MIGRATIONS=true (services with a database), then\n# serves; exec, so the service is the main process and gets SIGTERM itself.\nexec python -m %s "$@"\n' \
        "${main}" > /app/start; \
    chmod 0755 /app/start; \
    find /app/service -name __pycache__ -prune -exec rm -rf {} +

# ---- final ----------------------------------------------------------------------------
FROM runtime AS final
ARG SERVICE
ARG PORT
ENV SERVICE_NAME=${SERVICE} \
    SERVICE_PORT=${PORT}
COPY --from=builder /app /app
WORKDIR /app/service
USER 10001:10001
EXPOSE ${PORT}
# No curl in a slim image: the probe is standard-library Python (the simulator has no
# shared library). SERVICE_PORT is the port the service listens on by default.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ['SERVICE_PORT'], timeout=3)"]
CMD ["/app/start"]
