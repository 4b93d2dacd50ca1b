#!/usr/bin/env bash
# Installs the system packages the tests need, when missing: the real peers they drive (HAProxy,
# OpenSSL, and Debian's kcat, an old Kafka client: it links the system's librdkafka, 2.0.2 on
# bookworm), the Prometheus project's Python parsers for /metrics scrapes, and the C libraries
# the Kafka client used as a test peer links (librdkafka is built with OpenSSL for SCRAM). Safe
# without a terminal (CI sets CI=true and gives no standard input).
set -euo pipefail

# Debian installs haproxy in /usr/sbin, which is not on every user's PATH.
export PATH="$PATH:/usr/sbin:/usr/local/sbin"

# Commands, as "command:debian-package".
commands=("haproxy:haproxy" "openssl:openssl" "pkg-config:pkg-config")
# Files a package provides, as "path:debian-package". kcat by path: the test runs Debian's, not
# another one on PATH built with a newer librdkafka.
files=("/usr/include/openssl/ssl.h:libssl-dev" "/usr/bin/kcat:kcat"
    # The Prometheus project's own parsers, for the /metrics scrapes (proxy-bin/tests/admin.rs).
    "/usr/lib/python3/dist-packages/prometheus_client/parser.py:python3-prometheus-client")

missing=()
for entry in "${commands[@]}"; do
    command -v "${entry%%:*}" >/dev/null 2>&1 || missing+=("${entry#*:}")
done
for entry in "${files[@]}"; do
    [[ -e "${entry%%:*}" ]] || missing+=("${entry#*:}")
done
if ((${#missing[@]})); then
    echo "installing test dependencies: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq </dev/null
    apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null
fi
