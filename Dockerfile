# Celeris: one image with celeris-frontend, celeris-worker and celeris-beat (OCI; docker, podman, buildah).
#
# From source (a Swift toolchain image builds release binaries, the runtime stage keeps only them):
#   docker build -t celeris:0.2.0 .
# (Where swift:6.3-bookworm cannot be pulled, deploy/container/verify-source-build.sh builds this
# target with podman and a local stand-in for it, made on the bookworm base image ContainerTests
# builds with debootstrap: about 4 minutes on 2 cores, a 202 MB image.)
# From binaries built on the host (no Swift image needed; see deploy/container/stage-prebuilt.sh):
#   swift build -c release
#   deploy/container/stage-prebuilt.sh "$(swift build -c release --show-bin-path)" /tmp/celeris-context
#   podman build --format docker --target runtime -f Dockerfile -t celeris:0.2.0 /tmp/celeris-context
# (podman/buildah: `--format docker` keeps the HEALTHCHECK, which the OCI image format has no field for.)
# Run (the frontend is the default entrypoint; a worker overrides it):
#   docker run -p 8000:8000 -e CELERIS_BROKER_URL=redis://redis:6379/0 celeris:0.2.0
#   docker run --entrypoint celeris-worker -e CELERIS_BROKER_URL=redis://redis:6379/0 celeris:0.2.0 -Q celery -c 4
#
# BASE is the runtime's Debian 12 image; BUILDER a Swift 6 toolchain on the same Debian (the binaries
# link the system's libhiredis 0.14, libevent 2.1 (+ its OpenSSL bufferevents), OpenSSL 3, liburing 2
# and http-parser 2.9). ca-certificates is the system CA store rediss:// verifies against by default
# (ElastiCache's and other public CAs' roots; ?ssl_ca_certs=/path for a private CA).
ARG BASE=debian:bookworm-slim
ARG BUILDER=swift:6.3-bookworm

# ---- builder: release binaries + the Swift runtime libraries they load, in /out/prebuilt ----
FROM ${BUILDER} AS builder
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libhiredis-dev libevent-dev liburing-dev libhttp-parser-dev libssl-dev binutils \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Package.swift Package.resolved* ./
RUN swift package resolve
COPY Sources Sources
COPY deploy/container deploy/container
# Tests/ is not copied: the package's test target is not built (swift build builds products only).
RUN mkdir -p Tests/CelerisTests && swift build -c release --product celeris-frontend \
 && swift build -c release --product celeris-worker && swift build -c release --product celeris-beat \
 && deploy/container/stage-prebuilt.sh "$(swift build -c release --show-bin-path)" /out

# ---- runtime-base: Debian + the runtime libraries + user 10001; no compilers, no headers ----
FROM ${BASE} AS runtime-base
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libhiredis0.14 libevent-2.1-7 libssl3 liburing2 libhttp-parser2.9 ca-certificates \
 && apt-get clean && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/log/apt /var/log/dpkg.log \
 && echo 'celeris:x:10001:10001:Celeris:/nonexistent:/usr/sbin/nologin' >> /etc/passwd \
 && echo 'celeris:x:10001:' >> /etc/group \
 && echo /opt/celeris/lib > /etc/ld.so.conf.d/celeris.conf
ENV PATH=/opt/celeris/bin:$PATH \
    CELERIS_BROKER_URL=redis://redis:6379/0
# /health: 200 when the frontend reaches Redis. A worker container checks its metrics server
# instead (--metrics-port 9808): `celeris-healthcheck 9808 /health` (200 while it consumes with
# its broker link up, 503 while Redis is unreachable or it is shutting down) or
# `celeris-healthcheck 9808 /livez` (200 while the process serves, whatever Redis does).
HEALTHCHECK --interval=10s --timeout=5s --start-period=5s --retries=3 CMD ["celeris-healthcheck"]
USER 10001:10001
WORKDIR /tmp
EXPOSE 8000
# Under the default seccomp profile (Docker's and podman's refuse io_uring_setup) the worker's
# `--io auto` uses plain sockets and read(2), and says so in its log once at start-up:
# "io_uring refused (EPERM): using sockets and read(2)" (ENOSYS under podman's profile); then
# "connected to … (socket)".
ENTRYPOINT ["celeris-frontend"]
CMD ["--host", "0.0.0.0", "--port", "8000"]

# ---- runtime: binaries from the build context (PREBUILT, staged by stage-prebuilt.sh) ----
FROM runtime-base AS runtime
ARG PREBUILT=prebuilt
USER 0
COPY ${PREBUILT}/ /opt/celeris/
RUN ldconfig && celeris-worker --help > /dev/null && celeris-frontend --help > /dev/null
USER 10001:10001

# ---- image (default target): binaries from the builder stage ----
FROM runtime-base AS image
USER 0
COPY --from=builder /out/prebuilt/ /opt/celeris/
RUN ldconfig && celeris-worker --help > /dev/null && celeris-frontend --help > /dev/null
USER 10001:10001
