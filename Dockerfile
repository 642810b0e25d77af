# dbkeep in a container: the binary plus the client tools it runs.
#   docker build -t dbkeep .
#   docker run --rm -v "$PWD/dbkeep.yaml:/etc/dbkeep/config.yaml:ro" -v dbkeep-backups:/backups dbkeep backup

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked && strip target/release/dbkeep

FROM debian:bookworm-slim
# Debian bookworm's PostgreSQL client is 15. dbkeep refuses a pg_dump older than the
# server: for a newer server, install postgresql-client-NN from the PGDG apt repository
# (apt.postgresql.org) here instead, or set `bin_dir`.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates postgresql-client mariadb-client redis-tools tini \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /backups --shell /usr/sbin/nologin dbkeep \
 && mkdir -p /backups /etc/dbkeep \
 && chown dbkeep:dbkeep /backups \
 && chmod 0700 /backups
COPY --from=build /src/target/release/dbkeep /usr/local/bin/dbkeep
USER 10001:10001
WORKDIR /backups
VOLUME ["/backups"]
ENV DBKEEP_CONFIG=/etc/dbkeep/config.yaml
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/dbkeep"]
CMD ["--help"]
