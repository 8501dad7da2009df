# Multi-stage build. Not exercised by CI (no Docker engine on the build machines); kept honest
# by building with the same SQLX_OFFLINE metadata CI uses.
FROM rust:1.95-bookworm AS build
WORKDIR /src
ENV SQLX_OFFLINE=true
COPY Cargo.toml Cargo.lock rustfmt.toml build.rs ./
COPY .cargo .cargo
COPY .sqlx .sqlx
COPY migrations migrations
COPY catalog catalog
COPY src src
RUN cargo build --release --locked --bin feedwatch

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home /nonexistent --shell /usr/sbin/nologin feedwatch
COPY --from=build /src/target/release/feedwatch /usr/local/bin/feedwatch
USER feedwatch
ENV FEEDWATCH_LISTEN=0.0.0.0:8080 FEEDWATCH_LOG_FORMAT=json
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD curl -fsS http://127.0.0.1:8080/readyz || exit 1
ENTRYPOINT ["/usr/local/bin/feedwatch"]
CMD ["serve"]
