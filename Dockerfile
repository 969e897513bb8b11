# The settlement service image. At the repository root because the build context is
# the whole workspace (Cargo.toml, Cargo.lock, crates/, migrations/, openapi.yaml).
#
#   docker build -t settlement:dev .
#
# The base images are build arguments whose defaults are the public images. Where no
# registry can be reached, scripts/images builds local stand-ins from Debian's packages
# and docker-compose passes their names (see README, "Containers"):
#
#   docker build --build-arg BUILDER_IMAGE=settlement-local/rust:1.95-slim-bookworm \
#       --build-arg RUNTIME_IMAGE=settlement-local/distroless-cc:nonroot -t settlement:dev .
#
# No BuildKit-only syntax is used, so the classic builder (DOCKER_BUILDKIT=0) builds it.
#
# Stage 1 builds the dependencies alone, from the manifests and the lock file, so
# that layer is reused until a dependency changes; stage 2 builds the service;
# the runtime is distroless (no shell, no package manager) and runs as non-root.

ARG BUILDER_IMAGE=rust:1.95-slim-bookworm
ARG RUNTIME_IMAGE=gcr.io/distroless/cc-debian12:nonroot

FROM ${BUILDER_IMAGE} AS deps
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
# Every workspace member's manifest: cargo loads the whole workspace to build one.
COPY crates/domain/Cargo.toml crates/domain/Cargo.toml
COPY crates/wire/Cargo.toml crates/wire/Cargo.toml
COPY crates/store/Cargo.toml crates/store/Cargo.toml
COPY crates/engine/Cargo.toml crates/engine/Cargo.toml
COPY crates/bankfiles/Cargo.toml crates/bankfiles/Cargo.toml
COPY crates/i18n/Cargo.toml crates/i18n/Cargo.toml
COPY crates/api/Cargo.toml crates/api/Cargo.toml
COPY crates/settlementd/Cargo.toml crates/settlementd/Cargo.toml
COPY crates/simulator/Cargo.toml crates/simulator/Cargo.toml
COPY crates/bench/Cargo.toml crates/bench/Cargo.toml
# Empty targets stand in for the sources, so only the dependencies compile here.
RUN for c in domain wire store engine bankfiles i18n api; do mkdir -p crates/$c/src && echo "" > crates/$c/src/lib.rs; done \
    && for c in settlementd simulator bench; do mkdir -p crates/$c/src && echo "fn main() {}" > crates/$c/src/main.rs; done \
    && mkdir -p tests/api tests/reliability \
    && echo "" > tests/api/main.rs && echo "" > tests/reliability/main.rs \
    && cargo build --release --locked -p settlementd \
    && rm -rf crates/*/src target/release/.fingerprint/settlement*

FROM deps AS build
# The store's checked statements read their offline query data (crates/store/.sqlx),
# never a database.
ENV SQLX_OFFLINE=true
# The source revision the build_info metric names.
ARG REVISION=unknown
COPY crates crates
COPY migrations migrations
COPY openapi.yaml openapi.yaml
RUN SETTLEMENT_REVISION="${REVISION}" cargo build --release --locked -p settlementd \
    && cp target/release/settlementd /settlementd

FROM ${RUNTIME_IMAGE} AS runtime
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
