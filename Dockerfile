# syntax=docker/dockerfile:1
# The settlement service image. At the repository root because the build context is
# the whole workspace (Cargo.toml, Cargo.lock, crates/, migrations/, openapi.yaml).
#
#   docker build -t settlement:dev .
#
# Stage 1 builds the dependencies alone, from the manifests and the lock file, so
# that layer is reused until a dependency changes; stage 2 builds the service;
# the runtime is distroless (no shell, no package manager) and runs as non-root.

ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-slim-bookworm AS deps
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY crates/domain/Cargo.toml crates/domain/Cargo.toml
COPY crates/store/Cargo.toml crates/store/Cargo.toml
COPY crates/api/Cargo.toml crates/api/Cargo.toml
COPY crates/settlementd/Cargo.toml crates/settlementd/Cargo.toml
# Empty targets stand in for the sources, so only the dependencies compile here.
RUN for c in domain store api; do mkdir -p crates/$c/src && echo "" > crates/$c/src/lib.rs; done \
    && mkdir -p crates/settlementd/src tests/api \
    && echo "fn main() {}" > crates/settlementd/src/main.rs \
    && echo "" > tests/api/main.rs \
    && cargo build --release --locked -p settlementd \
    && rm -rf crates/*/src target/release/.fingerprint/settlement*

FROM deps AS build
# The store's checked statements read their offline query data (crates/store/.sqlx),
# never a database.
ENV SQLX_OFFLINE=true
COPY crates crates
COPY migrations migrations
COPY openapi.yaml openapi.yaml
RUN cargo build --release --locked -p settlementd \
    && cp target/release/settlementd /settlementd

FROM gcr.io/distroless/cc-debian12:nonroot AS runtime
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="settlementd" \
      org.opencontainers.image.description="Acquirer-side batch settlement service" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://example.invalid/settlement"
COPY --from=build /settlementd /usr/local/bin/settlementd
# Numeric (distroless' nonroot is 65532:65532): Kubernetes' runAsNonRoot can only verify
# a numeric user, and it matches runAsUser/runAsGroup in deploy/k8s.
USER 65532:65532
ENV SETTLEMENT_LISTEN_ADDR=0.0.0.0:8080 \
    METRICS_LISTEN_ADDR=0.0.0.0:9090 \
    LOG_FORMAT=json
EXPOSE 8080 9090
# The probe subcommand needs no shell or curl; orchestrators use /readyz and /healthz.
HEALTHCHECK --interval=10s --timeout=4s --start-period=10s --retries=3 \
    CMD ["/usr/local/bin/settlementd", "probe", "--url", "http://127.0.0.1:8080/readyz"]
ENTRYPOINT ["/usr/local/bin/settlementd"]
CMD ["serve"]
