# A stand-in for the official `postgres:15-alpine`, made from Debian's PostgreSQL 15 on
# a machine that cannot pull from an image registry (`make compose-test` builds it only
# then). Same interface as far as docker-compose.yml uses it: POSTGRES_USER,
# POSTGRES_PASSWORD and POSTGRES_DB make the cluster on first start, the data in
# /var/lib/postgresql/data, pg_isready on PATH, port 5432.
ARG DEBIAN_IMAGE=ecommerce-offline/debian:bookworm
FROM ${DEBIAN_IMAGE}
RUN apt-get update -qq \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        postgresql-15 >/dev/null \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/* \
    && mkdir -p /var/lib/postgresql/data /var/run/postgresql \
    && chown -R postgres:postgres /var/lib/postgresql /var/run/postgresql \
    && chmod 0700 /var/lib/postgresql/data
COPY postgres-entrypoint.sh /usr/local/bin/postgres-entrypoint
ENV PATH=/usr/lib/postgresql/15/bin:$PATH \
    PGDATA=/var/lib/postgresql/data
USER postgres
VOLUME /var/lib/postgresql/data
EXPOSE 5432
STOPSIGNAL SIGINT
ENTRYPOINT ["postgres-entrypoint"]
