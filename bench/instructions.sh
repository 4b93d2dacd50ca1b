#!/usr/bin/env bash
# Counts the user-space instructions Sluice and HAProxy (mode tcp) execute per proxied
# request and per connection, under valgrind's callgrind: a figure that does not move with
# the machine's noise, for comparing builds and finding where a proxy's CPU goes. Kernel work
# (the syscalls themselves, the loopback) is not counted; bench/run.sh measures all of it.
#
#   bench/instructions.sh                    both proxies, both loads
#   bench/instructions.sh --sluice PATH      another sluice binary (a build to compare)
#
# Each proxy runs under callgrind with instrumentation off, in front of a `loadgen serve`
# echo backend; a 2 s warm-up runs first, then instrumentation is switched on for a 6 s run
# of `loadgen rr --connections 8` (64 B there and back on long connections) or `loadgen
# connect --concurrency 4` (a new connection per request), and the count is divided by the
# requests or connections of that run (scaled from its measured 90% to all of it). Repeated
# runs of the same build agree within about 3%. Installs valgrind and HAProxy with apt-get
# when they are missing. Everything listens on 127.0.0.1; every process is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

sluice=target/release/sluice
case "${1:-}" in
    "") ;;
    --sluice) sluice=${2:?usage: bench/instructions.sh [--sluice PATH]} ;;
    *) echo "usage: bench/instructions.sh [--sluice PATH]" >&2; exit 2 ;;
esac
export PATH="$PATH:/usr/sbin:/sbin"
for tool in valgrind:valgrind haproxy:haproxy; do
    if ! command -v "${tool%%:*}" >/dev/null; then
        if [[ $(id -u) == 0 ]]; then
            DEBIAN_FRONTEND=noninteractive apt-get update -qq
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${tool##*:}" >/dev/null
        else
            echo "bench/instructions.sh: ${tool%%:*} is missing (apt-get install ${tool##*:})" >&2
            exit 1
        fi
    fi
done
if [[ $sluice == target/release/sluice ]]; then
    cargo build --release -p proxy-bin -p sluice-tests --bin sluice --bin loadgen
else
    cargo build --release -p sluice-tests --bin loadgen
fi
loadgen=target/release/loadgen
work=$(mktemp -d)
pids=()
cleanup() {
    local pid
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

"$loadgen" serve --mode echo --listen 127.0.0.1:0 >"$work/echo.out" 2>&1 &
pids+=($!)
for _ in $(seq 50); do grep -qE '127.0.0.1:[0-9]+' "$work/echo.out" && break; sleep 0.1; done
echo_addr=$(grep -oE '127.0.0.1:[0-9]+' "$work/echo.out" | head -n 1)

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Runs PROXY (sluice|haproxy) under callgrind for MODE (rr|connect); prints instructions per op.
count() {
    local proxy=$1 mode=$2 port pid out ops key args total
    port=$(free_port)
    case $proxy in
        sluice)
            printf '[[listener]]\nname = "to_echo"\nbind = "127.0.0.1:%s"\nprotocol = "tcp"\ncluster = "echo"\n\n[cluster.echo]\nbackends = ["%s"]\n\n[shutdown]\naccept_grace = "0s"\n' \
                "$port" "$echo_addr" >"$work/sluice.toml"
            RUST_LOG=warn valgrind --tool=callgrind --instr-atstart=no \
                --callgrind-out-file="$work/cg.$proxy.$mode.%p" \
                "$sluice" run --config "$work/sluice.toml" </dev/null >"$work/$proxy.log" 2>&1 &
            ;;
        haproxy)
            printf 'global\n    nbthread 2\ndefaults\n    mode tcp\n    timeout connect 5s\n    timeout client 5m\n    timeout server 5m\nfrontend f\n    bind 127.0.0.1:%s\n    default_backend b\nbackend b\n    server s %s\n' \
                "$port" "$echo_addr" >"$work/haproxy.cfg"
            valgrind --tool=callgrind --instr-atstart=no \
                --callgrind-out-file="$work/cg.$proxy.$mode.%p" \
                haproxy -db -f "$work/haproxy.cfg" </dev/null >"$work/$proxy.log" 2>&1 &
            ;;
    esac
    pid=$!
    pids+=("$pid")
    for _ in $(seq 300); do
        (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
        sleep 0.1
    done
    case $mode in
        rr) args=(--connections 8) key=requests ;;
        connect) args=(--concurrency 4) key=connections ;;
    esac
    "$loadgen" "$mode" --target "127.0.0.1:$port" "${args[@]}" --seconds 2 >/dev/null
    callgrind_control -i on "$pid" >/dev/null 2>&1
    out=$("$loadgen" "$mode" --target "127.0.0.1:$port" "${args[@]}" --seconds 6 | grep '^RESULT')
    callgrind_control -i off "$pid" >/dev/null 2>&1
    callgrind_control -d "$pid" >/dev/null 2>&1
    sleep 1
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    total=$(grep -h "^totals:" "$work/cg.$proxy.$mode".* | sort -k2 -n | tail -n 1 | awk "{print \$2}")
    ops=$(grep -oE " $key=[0-9]+" <<<"$out" | cut -d= -f2)
    # loadgen counts 90% of the run (its first tenth is a warm-up); callgrind counted all of it.
    awk -v total="$total" -v ops="$ops" -v measured="$(grep -oE 'seconds=[0-9.]+' <<<"$out" | cut -d= -f2)" \
        'BEGIN { printf "%.0f", total / (ops * 6 / measured) }'
}

printf '| load | HAProxy (instructions per op) | Sluice | Sluice/HAProxy |\n|---|---:|---:|---:|\n'
for mode in rr connect; do
    h=$(count haproxy "$mode")
    s=$(count sluice "$mode")
    case $mode in
        rr) label="rr 64 B, 8 conns (per request)" ;;
        connect) label="connect, concurrency 4 (per connection)" ;;
    esac
    awk -v l="$label" -v h="$h" -v s="$s" 'BEGIN { printf "| %s | %d | %d | %.2f |\n", l, h, s, s / h }'
done
