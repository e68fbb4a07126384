# maintenant: a static musl binary on an empty base image.
#
#   docker build -t maintenant .
#
# Stage 1 builds with the Rust toolchain on Alpine (musl, so the binary is
# static); stage 2 is `scratch` plus CA certificates (HTTPS checks verify
# against the system roots) and a writable /data for the sled database.
# Not verified here: the machine this was written on cannot pull base images.

FROM rust:1.95-alpine AS build
RUN apk add --no-cache musl-dev ca-certificates
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src src
COPY benches benches
RUN cargo build --profile dist --locked --bin maintenant \
 && mkdir -p /out/data \
 && chown 65532:65532 /out/data

FROM scratch
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /src/target/dist/maintenant /usr/local/bin/maintenant
COPY --from=build --chown=65532:65532 /out/data /data
ENV MAINTENANT_DB=/data/maintenant.db \
    MAINTENANT_ADDR=0.0.0.0:8080 \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
# Non-root. Reading /var/run/docker.sock needs the socket's group: run with
# `--group-add $(stat -c %g /var/run/docker.sock)` (compose: `group_add`), or
# as root where the socket is root:root (Docker Desktop).
USER 65532:65532
WORKDIR /data
VOLUME /data
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/maintenant"]
