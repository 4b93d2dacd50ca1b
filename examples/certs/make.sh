#!/bin/sh
# Throwaway certificates for examples/tls.toml, made with openssl: a demo CA, the proxy's
# server certificate (proxy.example, admin.example, *.tenants.example), and a client
# certificate (CN=sluice) Sluice presents to the backends. Both CA files tls.toml names
# (clients-ca.pem, backend-ca.pem) are the demo CA. Valid for 30 days; for trying the example
# only, never for production.
#
#   sh examples/certs/make.sh [DIR]     # DIR defaults to this script's directory
#
# The test `proxy-bin/tests/cli/check.rs` runs this script and then `sluice check` on every
# example, so the recipe and the example stay in step.
set -eu

out="${1:-$(dirname "$0")}"
mkdir -p "$out"
cd "$out"
days=30
key="-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes"

# The CA.
openssl req -x509 $key -keyout ca-key.pem -out ca.pem -days "$days" \
    -subj "/CN=Sluice example CA" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null

# A leaf signed by the CA: issue NAME CN EXTENSIONS.
issue() {
    openssl req $key -keyout "$1-key.pem" -out "$1.csr" -subj "/CN=$2" 2>/dev/null
    printf '%s\n' "basicConstraints=critical,CA:FALSE" "$3" > "$1.ext"
    openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca-key.pem -CAcreateserial \
        -days "$days" -extfile "$1.ext" -out "$1-chain.pem" 2>/dev/null
    rm "$1.csr" "$1.ext"
}

issue server proxy.example \
    "subjectAltName=DNS:proxy.example,DNS:admin.example,DNS:*.tenants.example
extendedKeyUsage=serverAuth"
issue client sluice "extendedKeyUsage=clientAuth"

cp ca.pem clients-ca.pem
cp ca.pem backend-ca.pem
rm -f ca.srl
echo "certificates for examples/tls.toml written to $(pwd)"
