# dbkeep in a container: the binary plus the client tools it runs.
#   docker build -t dbkeep .
#   docker run --rm -v "$PWD/dbkeep.yaml:/etc/dbkeep/config.yaml:ro" -v dbkeep-backups:/backups dbkeep backup
# A `local` storage in that config uses `path: /backups`.

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
# The release profile strips the binary.
RUN cargo build --release --locked

FROM debian:bookworm-slim
# Debian bookworm's postgresql-client is PostgreSQL 15, and dbkeep refuses a
# pg_dump older than the server. For a newer server, take the client from the
# PGDG apt repository instead: replace `postgresql-client` below with
# `postgresql-common`, then add
#   && /usr/share/postgresql-common/pgdg/apt.postgresql.org.sh -y \
#   && apt-get install -y --no-install-recommends postgresql-client-17 \
# (17 = the server's major version). A job's `bin_dir` can pick one of
# several installed versions, e.g. /usr/lib/postgresql/17/bin.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      ca-certificates postgresql-client mariadb-client redis-tools tini \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 dbkeep \
 && useradd --system --uid 10001 --gid dbkeep --home-dir /backups --shell /usr/sbin/nologin dbkeep \
 && mkdir -p /backups /etc/dbkeep \
 && chown dbkeep:dbkeep /backups \
 && chmod 0700 /backups
COPY --from=build /src/target/release/dbkeep /usr/local/bin/dbkeep
USER 10001:10001
WORKDIR /backups
VOLUME ["/backups"]
ENV DBKEEP_CONFIG=/etc/dbkeep/config.yaml
# tini passes SIGTERM to dbkeep, which stops the dump tool, removes the partial
# objects and exits 130.
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/dbkeep"]
CMD ["--help"]
