# A stand-in for the official `redis:7-alpine`, made from Debian's Redis on a machine
# that cannot pull from an image registry (`make compose-test` builds it only then).
ARG DEBIAN_IMAGE=ecommerce-offline/debian:bookworm
FROM ${DEBIAN_IMAGE}
RUN apt-get update -qq \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        redis-server >/dev/null \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/*
USER redis
EXPOSE 6379
CMD ["redis-server", "--bind", "0.0.0.0", "--protected-mode", "no", "--save", "", "--appendonly", "no"]
