#!/usr/bin/env bash
# Builds the Sluice container image from a `sluice` binary built on this machine:
#
#   scripts/build-image.sh BINARY [TAG]
#   scripts/build-image.sh target/release/sluice                 # localhost/sluice:VERSION
#   scripts/build-image.sh target/release/sluice registry.example.com/sluice:0.1.0
#
# VERSION is what `BINARY --version` says; localhost/sluice:VERSION is the image the manifests
# in deploy/kubernetes/ name. It stages a build context in a temporary directory: the
# Containerfile at the repository's root, the binary at rootfs/usr/local/bin/sluice, and every
# shared library `ldd BINARY` lists at the path it lists it (the dynamic loader included), so
# the image holds what this binary needs and nothing else. Then `buildah bud` builds it from
# `scratch`, pulling nothing. It prints the tag on standard output, and what it copied on
# standard error.
#
# Needs buildah (scripts/install-deps.sh installs it) and, with buildah's default storage, root.
# buildah's own environment applies: STORAGE_DRIVER=vfs where overlay mounts are not allowed,
# CONTAINERS_STORAGE_CONF for another image store. The Containerfile has no RUN step, so no
# container runtime and no isolation is needed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

if (($# < 1 || $# > 2)); then
    echo "usage: $0 BINARY [TAG]" >&2
    exit 2
fi
[[ -f $1 && -x $1 ]] || { echo "$1: not an executable file" >&2; exit 2; }
# A path, so that running it never searches PATH.
binary=$(realpath -- "$1")
if ! command -v buildah >/dev/null; then
    echo "buildah not found: run scripts/install-deps.sh" >&2
    exit 1
fi

# "sluice 0.1.0"
version=$("$binary" --version | awk '$1 == "sluice" { print $2 }')
[[ -n $version ]] || { echo "$binary --version does not say \"sluice VERSION\"" >&2; exit 1; }
tag=${2:-localhost/sluice:$version}

context=$(mktemp -d)
trap 'rm -rf "$context"' EXIT
cp "$root/Containerfile" "$context/Containerfile"
# /run is root's; only /run/sluice (the Containerfile's second COPY) is the user's.
mkdir -p "$context/rootfs/usr/local/bin" "$context/rootfs/run" "$context/run-sluice"
cp "$binary" "$context/rootfs/usr/local/bin/sluice"
chmod 0755 "$context/rootfs/usr/local/bin/sluice"

# ldd's lines: "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" for a library,
# "/lib64/ld-linux-x86-64.so.2 (0x...)" for the loader, "linux-vdso.so.1 (0x...)" for the
# kernel's (no file), "libx.so => not found" for one missing here. A static binary has none
# ("not a dynamic executable", exit 1).
if ldd_out=$(ldd "$binary" 2>&1); then
    if grep -q "not found" <<<"$ldd_out"; then
        echo "$binary links libraries this machine lacks:" >&2
        echo "$ldd_out" >&2
        exit 1
    fi
    libraries=$(awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' <<<"$ldd_out")
elif grep -q "not a dynamic executable" <<<"$ldd_out"; then
    libraries=""
else
    echo "ldd $binary failed: $ldd_out" >&2
    exit 1
fi
for library in $libraries; do
    # At the path the loader looks for it, as a file: on a merged-/usr system /lib is a link to
    # usr/lib, and the loader's path is a link to the real file.
    mkdir -p "$context/rootfs$(dirname "$library")"
    cp -L "$library" "$context/rootfs$library"
    echo "library: $library" >&2
done

buildah bud --quiet --format oci --build-arg "VERSION=$version" \
    -f "$context/Containerfile" -t "$tag" "$context" >/dev/null
echo "built $tag" >&2
echo "$tag"
