#!/usr/bin/env bash
# Build the Dockerfile's default target (the Swift builder stage, then the runtime) on a machine
# that cannot pull the public swift image, and check the image runs.
#
# The stand-in for swift:6.3-bookworm is the local Debian bookworm base (ContainerTests makes
# localhost/bookworm-base with debootstrap) with the packages the official image installs, and
# this machine's toolchain mounted at /opt/swift. Swift packages come from wherever this
# machine's git config points github.com (mounted read-only, when it is a local directory).
#
#     deploy/container/verify-source-build.sh            # tags localhost/celeris:source
#     TOOLCHAIN=/opt/swift BASE=localhost/bookworm-base:latest deploy/container/verify-source-build.sh
set -euo pipefail
cd "$(dirname "$0")/../.."

TOOLCHAIN=${TOOLCHAIN:-/opt/swift}
BASE=${BASE:-localhost/bookworm-base:latest}
TAG=${TAG:-localhost/celeris:source}
RUNTIME=${RUNTIME:-$(command -v runc || command -v crun || true)}
[ -n "$RUNTIME" ] || { echo "no OCI runtime: apt-get install podman runc"; exit 1; }
export CONTAINERS_CONF=${CONTAINERS_CONF:-$PWD/deploy/container/containers.conf}
podman() { command podman --runtime "$RUNTIME" "$@"; }

step() { printf '== %s (%s)\n' "$*" "$(date +%T)"; }

podman image exists "$BASE" || { echo "no $BASE: run System/ContainerTests once (it builds it)"; exit 1; }
[ -x "$TOOLCHAIN/usr/bin/swift" ] || { echo "no Swift toolchain at $TOOLCHAIN"; exit 1; }

# github.com → a local mirror, as on this machine (git config url.<dir>.insteadOf, any scope).
mirror=$( { git config --get-regexp '^url\..*\.insteadof$' || true; } | awk '$2 == "https://github.com/" {print $1}' \
    | sed -E 's/^url\.(.*)\.insteadof$/\1/' | head -1)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mounts=(-v "$TOOLCHAIN:/opt/swift:ro")
printf '[safe]\n\tdirectory = *\n' > "$work/gitconfig"
if [ -n "$mirror" ] && [ -d "$mirror" ]; then
    mounts+=(-v "$mirror:$mirror:ro")
    printf '[url "%s"]\n\tinsteadOf = https://github.com/\n' "$mirror" >> "$work/gitconfig"
fi
cat > "$work/Containerfile" <<EOF
FROM $BASE
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \\
      binutils libicu-dev libcurl4-openssl-dev libedit-dev libsqlite3-dev libncurses-dev libpython3-dev \\
      libxml2-dev pkg-config uuid-dev tzdata git gcc libstdc++-12-dev ca-certificates \\
 && rm -rf /var/lib/apt/lists/*
ENV PATH=/opt/swift/usr/bin:\$PATH
COPY gitconfig /etc/gitconfig
EOF
step "stand-in builder image (swift:6.3-bookworm's packages on $BASE)"
podman build --network host -t localhost/celeris-swift-builder:bookworm -f "$work/Containerfile" "$work"

step "Dockerfile, default target: swift build -c release in the builder stage, then the runtime stage"
start=$(date +%s)
podman build --network host --format docker "${mounts[@]}" \
    --build-arg BUILDER=localhost/celeris-swift-builder:bookworm --build-arg BASE="$BASE" -t "$TAG" .
echo "built in $(( $(date +%s) - start )) s"

step "the image runs"
podman run --rm --network host "$TAG" --help | head -3
podman run --rm --network host --entrypoint celeris-worker "$TAG" --help | head -3
podman image inspect "$TAG" --format 'size {{.Size}} bytes, user {{.Config.User}}, healthcheck {{.Config.Healthcheck.Test}}'
