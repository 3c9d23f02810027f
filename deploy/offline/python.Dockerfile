# A stand-in for the official `python:3.11-slim-bookworm`, made from Debian's own
# packages on a machine that cannot pull from an image registry (`make compose-test`
# builds it only then). It has what the project's Dockerfile relies on: `python` and
# `python3.11` on PATH, `python -m venv` (with pip, for installing uv in the builder).
ARG DEBIAN_IMAGE=ecommerce-offline/debian:bookworm
FROM ${DEBIAN_IMAGE}
RUN apt-get update -qq \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        python3.11 python3.11-venv python-is-python3 >/dev/null \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/*
CMD ["python3"]
