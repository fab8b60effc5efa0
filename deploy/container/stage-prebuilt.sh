#!/bin/bash
# Stage Celeris release binaries, and the Swift runtime libraries they load, for the image's
# `--target runtime` path (an image built without a Swift toolchain image):
#
#   swift build -c release
#   deploy/container/stage-prebuilt.sh "$(swift build -c release --show-bin-path)" /tmp/celeris-context
#   podman build --format docker --target runtime --build-arg PREBUILT=prebuilt -f Dockerfile -t celeris:0.2.0 /tmp/celeris-context
#
# Writes CONTEXT/prebuilt/bin/{celeris-frontend,celeris-worker,celeris-beat,celeris-healthcheck} and
# CONTEXT/prebuilt/lib/ (every library ldd resolves from the Swift toolchain). The other libraries
# the binaries need must come from Debian packages the image installs: the script fails if one
# is neither a Swift library nor in that list (so a new dependency is noticed, not shipped broken).
# The Dockerfile's builder stage runs the same script.
set -euo pipefail
bin=${1:?usage: stage-prebuilt.sh BIN_DIR CONTEXT_DIR}
out=${2:?usage: stage-prebuilt.sh BIN_DIR CONTEXT_DIR}/prebuilt
here=$(cd "$(dirname "$0")" && pwd)
rm -rf "$out" && mkdir -p "$out/bin" "$out/lib"
for b in celeris-frontend celeris-worker celeris-beat; do
  install -m 0755 "$bin/$b" "$out/bin/$b"
  strip --strip-unneeded "$out/bin/$b" 2>/dev/null || true
done
install -m 0755 "$here/celeris-healthcheck" "$out/bin/celeris-healthcheck"
# Libraries the runtime stage installs from Debian (libhiredis0.14 libevent-2.1-7
# libssl3 liburing2 libhttp-parser2.9) or that every Debian base has
# (libc, libstdc++, libgcc, zlib).
debian='^(libhiredis\.so\.0\.14|libevent-2\.1\.so\.7|libssl\.so\.3|libcrypto\.so\.3|liburing\.so\.2|libhttp_parser\.so\.2\.9|libc\.so\.6|libm\.so\.6|libdl\.so\.2|libpthread\.so\.0|librt\.so\.1|libutil\.so\.1|libstdc\+\+\.so\.6|libgcc_s\.so\.1|libz\.so\.1|ld-linux-x86-64\.so\.2|ld-linux-aarch64\.so\.1|linux-vdso\.so\.1|linux-gate\.so\.1)$'
for b in celeris-frontend celeris-worker celeris-beat; do
  ldd "$bin/$b" | while read -r name arrow path _; do
    if [[ $arrow != "=>" ]]; then continue; fi
    if [[ $path == "not" ]]; then echo "stage-prebuilt: $b needs $name, not found" >&2; exit 1; fi
    if [[ $path == */swift/* ]]; then
      [[ -e "$out/lib/$name" ]] || install -m 0644 "$path" "$out/lib/$name"
    elif ! [[ $name =~ $debian ]]; then
      echo "stage-prebuilt: $b needs $name ($path): add its Debian package to the Dockerfile's runtime stage and to this list" >&2
      exit 1
    fi
  done
done
strip --strip-unneeded "$out"/lib/*.so* 2>/dev/null || true
echo "staged $(ls "$out/bin" | wc -l) binaries and $(ls "$out/lib" | wc -l) Swift libraries in $out ($(du -sh "$out" | cut -f1))"
