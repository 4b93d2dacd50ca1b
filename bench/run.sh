#!/usr/bin/env bash
# Benchmarks Sluice against HAProxy (mode tcp) and against no proxy at all ("direct"), in one
# run on this machine, and prints a markdown table of medians. Then the Kafka part: librdkafka
# producing and consuming against its mock cluster, directly and through Sluice (sharing every
# core, then with Sluice on a core of its own, then sharing again with a `quota` stage that never
# throttles, with the audit file sink, and with ACL rules that allow everything, for what each
# costs), with tables of their own.
#
# The TCP part runs in two placements, each with its own backends, nginx and proxies:
#   unpinned  every process may run on every core (as before);
#   one CPU   every process of the measurement (backends, nginx, HAProxy, Sluice, loadgen, wrk)
#             started under `taskset -c 0`; HAProxy keeps nbthread 2, Sluice threads = 2.
# Load comes from loadgen (bulk, request-response, connect, idle) and, as an independent
# client, from wrk against nginx through each proxy in TCP mode: 64-byte responses over
# keep-alive connections, and TLS termination (HAProxy with OpenSSL, Sluice with rustls, the
# same self-signed certificate made here) for handshakes (a new connection per request) and
# 1 MiB responses. Each proxy's CPU time over every measured window (from /proc/PID/stat) gives
# its CPU per request, connection, handshake and GB. docs/performance.md explains each row and
# the fairness choices.
#
#   bench/run.sh           3 repetitions of 4 s per measurement and placement (about 10 minutes),
#                          then Kafka: 3 repetitions of 2M messages, shared, pinned, and shared
#                          with a quota stage, the audit sink, allow-all ACLs (about 4.5 minutes)
#   bench/run.sh --quick   1 repetition of 2 s per measurement and placement (about 1.7 minutes),
#                          then Kafka: 1 repetition of 500k messages, the same runs less the
#                          pinned one (about 30 seconds)
#
# Everything listens on 127.0.0.1 on free ports; every process started here is stopped on exit.
# Installs HAProxy, wrk, nginx and openssl with apt-get when they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { echo "usage: bench/run.sh [--quick]"; }

reps=3
# 4 s rather than 5: with both placements, the wrk and the TLS rows, 5 s took the full run past
# 15 minutes.
seconds=4
mode_name=full
# The Kafka part: repetitions, messages per produce run, reads of the topic per consume run,
# idle Kafka sessions.
kafka_args=(--repeat 3 --messages 2000000 --consume-passes 8 --idle-sessions 2000)
case "${1:-}" in
    "") ;;
    --quick)
        reps=1 seconds=2 mode_name=quick
        kafka_args=(--repeat 1 --messages 500000 --consume-passes 3 --idle-sessions 500)
        ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
esac
(($# <= 1)) || { usage >&2; exit 2; }
idle_sessions=1000

# === tools ===

# Debian installs haproxy and nginx in /usr/sbin, which is not on every user's PATH.
export PATH="$PATH:/usr/sbin:/usr/local/sbin"
missing=()
for tool in haproxy:haproxy wrk:wrk nginx:nginx openssl:openssl taskset:util-linux getconf:libc-bin; do
    command -v "${tool%%:*}" >/dev/null 2>&1 || missing+=("${tool#*:}")
done
if ((${#missing[@]} > 0)); then
    echo "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq </dev/null
    apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null
fi
for tool in cargo python3; do
    command -v "$tool" >/dev/null || { echo "bench: $tool not found" >&2; exit 1; }
done

cargo build --release -p proxy-bin -p sluice-tests --bin sluice --bin loadgen --bin kafka_bench
target_dir=$(cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
sluice="$target_dir/release/sluice"
loadgen="$target_dir/release/loadgen"
kafka_bench="$target_dir/release/kafka_bench"

# Each idle Kafka session is four descriptors: two in Sluice, and two in kafka_bench (the client
# and, as the mock cluster runs in it, the mock's end of Sluice's backend connection).
open_files=$(ulimit -n)
if [[ $open_files != unlimited ]] && ((open_files < 8192)); then
    ulimit -n "$(ulimit -Hn)" 2>/dev/null || ulimit -n 8192 2>/dev/null || true
fi

# === processes ===

work=$(mktemp -d -t sluice-bench.XXXXXX)
started=() # every process this script started, stopped in reverse on exit

# Stops one process started here: SIGTERM, then SIGKILL if it is still there after 5 s.
stop() {
    local pid=$1
    kill -TERM "$pid" 2>/dev/null || return 0
    for _ in $(seq 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    local i pid_file pid
    for ((i = ${#started[@]} - 1; i >= 0; i--)); do
        stop "${started[i]}"
    done
    # A Sluice that kafka_bench started and could not stop (kafka_bench was killed).
    for pid_file in "$work"/kafka*/sluice-*.pid; do
        [[ -f $pid_file ]] || continue
        pid=$(<"$pid_file")
        if [[ $(cat "/proc/$pid/comm" 2>/dev/null) == sluice ]]; then
            stop "$pid"
        fi
    done
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Free loopback ports, as many as asked, distinct (all bound at once, then released).
free_ports() {
    python3 - "$1" <<'EOF'
import socket, sys
held = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    held.append(s)
print(" ".join(str(s.getsockname()[1]) for s in held))
EOF
}

# Waits until 127.0.0.1:PORT accepts connections, or fails when process PID has exited.
wait_port() {
    local port=$1 pid=$2 name=$3
    for _ in $(seq 100); do
        kill -0 "$pid" 2>/dev/null || { echo "bench: $name exited; its log:" >&2; cat "$work/$name.log" >&2; exit 1; }
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
        sleep 0.1
    done
    echo "bench: $name is not listening on port $port after 10 s" >&2
    exit 1
}

# The placement's prefix for every process of a measurement: empty (unpinned) or
# `taskset -c 0` (one CPU). taskset execs its command, so $! is the process itself.
pin=()

# Starts `loadgen serve --mode MODE` on a free port; sets backend_addr.
start_backend() {
    local mode=$1
    "${pin[@]}" "$loadgen" serve --listen 127.0.0.1:0 --mode "$mode" >"$work/$mode.addr" 2>"$work/$mode.log" &
    started+=($!)
    backend_addr=
    for _ in $(seq 100); do
        backend_addr=$(head -n 1 "$work/$mode.addr")
        [[ -n $backend_addr ]] && return 0
        sleep 0.1
    done
    echo "bench: the $mode backend did not start" >&2
    exit 1
}

# One self-signed certificate (ECDSA P-256, for 127.0.0.1 and localhost) for every TLS
# listener: HAProxy reads it with its key from one PEM file, Sluice and nginx from two.
make_certificate() {
    mkdir -p "$work/tls"
    if ! openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
        -subj /CN=127.0.0.1 -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" \
        -keyout "$work/tls/key.pem" -out "$work/tls/cert.pem" </dev/null >"$work/tls/openssl.log" 2>&1; then
        echo "bench: openssl could not make the certificate:" >&2
        cat "$work/tls/openssl.log" >&2
        exit 1
    fi
    cat "$work/tls/cert.pem" "$work/tls/key.pem" >"$work/tls/haproxy.pem"
}

# Starts nginx (one process, no master, running as the current user, everything under
# $work/nginx) with a plain port and a TLS port: /64 answers 64 bytes, /1m is a 1 MiB file.
# Sets nginx_pid, nginx_http and nginx_https.
start_nginx() {
    local ports dir=$work/nginx
    read -r -a ports <<<"$(free_ports 2)"
    nginx_http="127.0.0.1:${ports[0]}"
    nginx_https="127.0.0.1:${ports[1]}"
    mkdir -p "$dir/html"
    [[ -f $dir/html/1m ]] || head -c 1048576 /dev/zero >"$dir/html/1m"
    cat >"$dir/nginx.conf" <<EOF
daemon off;
master_process off;
worker_processes 1;
pid $dir/nginx.pid;
error_log stderr warn;

events {
    worker_connections 4096;
}

http {
    access_log off;
    client_body_temp_path $dir/client_body;
    proxy_temp_path $dir/proxy;
    fastcgi_temp_path $dir/fastcgi;
    uwsgi_temp_path $dir/uwsgi;
    scgi_temp_path $dir/scgi;
    sendfile on;
    # Keep-alive connections stay open for the whole run (the default closes one after
    # 1000 requests).
    keepalive_requests 100000000;
    keepalive_timeout 5m;

    server {
        listen $nginx_http;
        listen $nginx_https ssl;
        ssl_certificate $work/tls/cert.pem;
        ssl_certificate_key $work/tls/key.pem;
        ssl_protocols TLSv1.2 TLSv1.3;
        root $dir/html;
        location = /64 {
            return 200 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        }
    }
}
EOF
    "${pin[@]}" nginx -p "$dir/" -c "$dir/nginx.conf" -e stderr </dev/null >"$work/nginx.log" 2>&1 &
    nginx_pid=$!
    started+=("$nginx_pid")
    wait_port "${ports[0]}" "$nginx_pid" nginx
    wait_port "${ports[1]}" "$nginx_pid" nginx
}

# Starts HAProxy with four frontends (to the echo and to the sink backend, to nginx, and to
# nginx terminating TLS); sets haproxy_pid, haproxy_echo, haproxy_sink, haproxy_nginx and
# haproxy_tls. Two threads, as Sluice runs two workers (`[limits] threads = 2`), in both
# placements; no logging, as Sluice runs with RUST_LOG=warn.
start_haproxy() {
    local ports port
    read -r -a ports <<<"$(free_ports 4)"
    haproxy_echo="127.0.0.1:${ports[0]}"
    haproxy_sink="127.0.0.1:${ports[1]}"
    haproxy_nginx="127.0.0.1:${ports[2]}"
    haproxy_tls="127.0.0.1:${ports[3]}"
    cat >"$work/haproxy.cfg" <<EOF
global
    nbthread 2
    maxconn 4096

defaults
    mode tcp
    maxconn 4096
    timeout connect 5s
    timeout client 5m
    timeout server 5m

frontend to_echo
    bind $haproxy_echo
    default_backend echo

frontend to_sink
    bind $haproxy_sink
    default_backend sink

frontend to_nginx
    bind $haproxy_nginx
    default_backend nginx

frontend tls_to_nginx
    bind $haproxy_tls ssl crt $work/tls/haproxy.pem
    default_backend nginx

backend echo
    server echo $echo_addr

backend sink
    server sink $sink_addr

backend nginx
    server nginx $nginx_http
EOF
    "${pin[@]}" haproxy -db -f "$work/haproxy.cfg" </dev/null >"$work/haproxy.log" 2>&1 &
    haproxy_pid=$!
    started+=("$haproxy_pid")
    for port in "${ports[@]}"; do
        wait_port "$port" "$haproxy_pid" haproxy
    done
}

# Starts Sluice with two worker threads (as HAProxy's two) and four TCP listeners (to the echo
# and to the sink backend, to nginx, and to nginx terminating TLS with the same certificate as
# HAProxy), every other setting at its default; sets sluice_pid, sluice_echo, sluice_sink,
# sluice_nginx and sluice_tls.
start_sluice() {
    local ports port
    read -r -a ports <<<"$(free_ports 4)"
    sluice_echo="127.0.0.1:${ports[0]}"
    sluice_sink="127.0.0.1:${ports[1]}"
    sluice_nginx="127.0.0.1:${ports[2]}"
    sluice_tls="127.0.0.1:${ports[3]}"
    cat >"$work/sluice.toml" <<EOF
[[listener]]
name = "to_echo"
bind = "$sluice_echo"
protocol = "tcp"
cluster = "echo"

[[listener]]
name = "to_sink"
bind = "$sluice_sink"
protocol = "tcp"
cluster = "sink"

[[listener]]
name = "to_nginx"
bind = "$sluice_nginx"
protocol = "tcp"
cluster = "nginx"

[[listener]]
name = "tls_to_nginx"
bind = "$sluice_tls"
protocol = "tcp"
cluster = "nginx"

[listener.tls]
cert = "$work/tls/cert.pem"
key = "$work/tls/key.pem"

[cluster.echo]
backends = ["$echo_addr"]

[cluster.sink]
backends = ["$sink_addr"]

[cluster.nginx]
backends = ["$nginx_http"]

[shutdown]
# Nothing to drain between benchmark runs: stop at once.
accept_grace = "0s"
drain_timeout = "1s"

[limits]
# HAProxy's nbthread 2, in both placements (Sluice's default would be one worker on one CPU).
threads = 2
EOF
    "$sluice" check --config "$work/sluice.toml" >/dev/null
    # One "session closed" line per session is an info line; HAProxy logs nothing here either.
    RUST_LOG=warn "${pin[@]}" "$sluice" run --config "$work/sluice.toml" </dev/null >"$work/sluice.log" 2>&1 &
    sluice_pid=$!
    started+=("$sluice_pid")
    for port in "${ports[@]}"; do
        wait_port "$port" "$sluice_pid" sluice
    done
}

# Stops every process started since `started` had MARK entries, newest first (the end of a
# placement in a repetition: its backends, nginx and proxies).
stop_from() {
    local mark=$1 i
    for ((i = ${#started[@]} - 1; i >= mark; i--)); do
        stop "${started[i]}"
    done
    started=("${started[@]:0:mark}")
}

# === measurements ===

results="$work/results.txt"
: >"$results"
clk_tck=$(getconf CLK_TCK)

# Runs loadgen with ARGS... (in the placement); files its RESULT line under repetition REP,
# PLACEMENT, TARGET (as via=, since the line has its own target=) and CASE.
measure() {
    local rep=$1 placement=$2 target=$3 case_id=$4
    shift 4
    local out
    if ! out=$("${pin[@]}" "$loadgen" "$@" 2>"$work/loadgen.err"); then
        echo "bench: loadgen $* failed: $(cat "$work/loadgen.err")" >&2
        return 0
    fi
    grep '^RESULT ' <<<"$out" |
        sed "s/^RESULT /RESULT rep=$rep placement=$placement via=$target case=$case_id /" >>"$results"
    printf '  %-8s %-10s %s\n' "$target" "$case_id" "$(grep -v '^RESULT ' <<<"$out")"
}

# Process PID's user + system time so far, in clock ticks (fields 14 and 15 of
# /proc/PID/stat, counted after the command name, which may hold spaces).
cpu_ticks() {
    local stat fields
    stat=$(<"/proc/$1/stat")
    read -r -a fields <<<"${stat##*) }"
    echo $((fields[11] + fields[12]))
}

# Runs wrk with ARGS... (in the placement) for CONNECTIONS connections; reads CPU_PID's CPU
# time (none when empty) just before and just after, and files a RESULT line like measure's
# (bench/wrk_result.py turns wrk's report into one).
measure_wrk() {
    local rep=$1 placement=$2 target=$3 case_id=$4 connections=$5 cpu_pid=$6
    shift 6
    local out before after cpu=() line
    [[ -z $cpu_pid ]] || before=$(cpu_ticks "$cpu_pid")
    if ! out=$("${pin[@]}" wrk -t 1 -c "$connections" --latency "$@" 2>&1); then
        echo "bench: wrk $* failed: $out" >&2
        return 0
    fi
    if [[ -n $cpu_pid ]]; then
        after=$(cpu_ticks "$cpu_pid")
        cpu=(--cpu-ticks "$((after - before))" --clk-tck "$clk_tck")
    fi
    if ! line=$(python3 bench/wrk_result.py --connections "$connections" "${cpu[@]}" <<<"$out"); then
        return 0
    fi
    grep '^RESULT ' <<<"$line" |
        sed "s/^RESULT /RESULT rep=$rep placement=$placement via=$target case=$case_id /" >>"$results"
    printf '  %-8s %-10s %s\n' "$target" "$case_id" "$(grep -v '^RESULT ' <<<"$line")"
}

tcp_start=$SECONDS
make_certificate
echo "bench ($mode_name): $reps repetition(s), ${seconds}s per measurement, placements unpinned and one CPU"

# What each placement runs: every row unpinned (idle memory first, on fresh proxies), and
# request-response and connection setup on one CPU.
unpinned_cases=(up1 up8 both8 rr1 rr64 connect16 wrk1 wrk64 tls_handshake16 tls_bulk8)
one_cpu_cases=(rr1 rr64 connect16 wrk1 wrk64)

for rep in $(seq "$reps"); do
    for placement in unpinned one_cpu; do
        # Fresh backends, nginx and proxies for each placement of each repetition, so memory
        # freed by an earlier run cannot hide the cost of the idle sessions, and every process
        # starts where the placement puts it.
        case $placement in
            unpinned) pin=() cases=("${unpinned_cases[@]}") ;;
            one_cpu) pin=(taskset -c 0) cases=("${one_cpu_cases[@]}") ;;
        esac
        mark=${#started[@]}
        start_backend echo
        echo_addr=$backend_addr
        start_backend sink
        sink_addr=$backend_addr
        start_nginx
        start_haproxy
        start_sluice
        echo "repetition $rep/$reps, $placement (haproxy pid $haproxy_pid, sluice pid $sluice_pid," \
            "$(find "/proc/$sluice_pid/task" -mindepth 1 -maxdepth 1 | wc -l) Sluice threads, main and workers)"
        if [[ $placement == unpinned ]]; then
            measure "$rep" "$placement" haproxy idle idle --target "$haproxy_echo" --connections "$idle_sessions" --pid "$haproxy_pid"
            measure "$rep" "$placement" sluice idle idle --target "$sluice_echo" --connections "$idle_sessions" --pid "$sluice_pid"
        fi
        for case_id in "${cases[@]}"; do
            for target in direct haproxy sluice; do
                case $target in
                    direct) echo_at=$echo_addr sink_at=$sink_addr http_at=$nginx_http tls_at=$nginx_https cpu_pid= ;;
                    haproxy) echo_at=$haproxy_echo sink_at=$haproxy_sink http_at=$haproxy_nginx tls_at=$haproxy_tls cpu_pid=$haproxy_pid ;;
                    sluice) echo_at=$sluice_echo sink_at=$sluice_sink http_at=$sluice_nginx tls_at=$sluice_tls cpu_pid=$sluice_pid ;;
                esac
                # wrk: HTTP/1.1 keep-alive to nginx, except the handshake row, which asks for a
                # new connection per request. Its report counts the whole run.
                case $case_id in
                    wrk1 | wrk64)
                        measure_wrk "$rep" "$placement" "$target" "$case_id" "${case_id#wrk}" "$cpu_pid" \
                            -d "${seconds}s" "http://$http_at/64"
                        continue
                        ;;
                    tls_handshake16)
                        measure_wrk "$rep" "$placement" "$target" "$case_id" 16 "$cpu_pid" \
                            -d "${seconds}s" -H "Connection: close" "https://$tls_at/64"
                        continue
                        ;;
                    tls_bulk8)
                        measure_wrk "$rep" "$placement" "$target" "$case_id" 8 "$cpu_pid" \
                            -d "${seconds}s" "https://$tls_at/1m"
                        continue
                        ;;
                esac
                case $case_id in
                    up1) args=(throughput --target "$sink_at" --direction up --connections 1) ;;
                    up8) args=(throughput --target "$sink_at" --direction up --connections 8) ;;
                    both8) args=(throughput --target "$echo_at" --direction both --connections 8) ;;
                    rr1) args=(rr --target "$echo_at" --size 64 --connections 1) ;;
                    rr64) args=(rr --target "$echo_at" --size 64 --connections 64) ;;
                    connect16) args=(connect --target "$echo_at" --concurrency 16) ;;
                esac
                # The proxy's own CPU time over the measured window (/proc/PID/stat), for its cost
                # per request, per connection and per GB.
                [[ -z $cpu_pid ]] || args+=(--cpu-pid "$cpu_pid")
                measure "$rep" "$placement" "$target" "$case_id" "${args[@]}" --seconds "$seconds"
            done
        done
        stop_from "$mark"
    done
done
pin=()

# === Kafka ===

kafka_start=$SECONDS

# kafka_bench starts the mock cluster and its own Sluices (see its --help); it writes its
# progress to standard error and its RESULT lines and table to standard output.
# The pinned run is left out of quick runs, and where there is no second core or no taskset.
kafka_runs=(shared)
if [[ $mode_name == full ]] && command -v taskset >/dev/null && (($(nproc) >= 2)); then
    kafka_runs+=(pinned)
fi
# What a Kafka stage costs: the shared run again with a `quota` stage whose limits are never
# reached (every request is still measured against them).
# And with the audit file sink on (connection and admin events), for what auditing costs.
# And with ACLs ([listener.authorization]) whose rules allow everything: every request is still
# decoded and decided, every Fetch and Metadata answer checked.
kafka_runs+=(quota audit acl)
quota_stage='[[listener.stage]]
kind = "quota"
per = "client_id"
produce_bytes_per_second = "100GiB"
fetch_bytes_per_second = "100GiB"
requests_per_second = 1000000000'
for kafka_run in "${kafka_runs[@]}"; do
    case $kafka_run in
        shared)
            echo "kafka, sharing every core"
            command=("$kafka_bench" "${kafka_args[@]}")
            ;;
        pinned)
            # Sluice on core 1, the clients and the mock brokers on core 0. Memory was
            # measured in the first run.
            echo "kafka, Sluice on a core of its own"
            command=(taskset -c 0 "$kafka_bench" "${kafka_args[@]}" --idle-sessions 0 --sluice-cpus 1)
            ;;
        quota)
            echo "kafka, sharing every core, with a quota stage that never throttles"
            command=("$kafka_bench" "${kafka_args[@]}" --idle-sessions 0 --listener-extra "$quota_stage")
            ;;
        audit)
            echo "kafka, sharing every core, with the audit file sink on"
            # The listener's extra lines end its table: [audit] is a table of its own.
            audit_table="[audit]
sink = \"file\"
path = \"$work/kafka-audit/audit.jsonl\"
events = [\"connection\", \"admin\"]"
            command=("$kafka_bench" "${kafka_args[@]}" --idle-sessions 0 --listener-extra "$audit_table")
            ;;
        acl)
            echo "kafka, sharing every core, with ACL rules that allow everything"
            mkdir -p "$work/kafka-acl"
            for resource in topic group transactional_id cluster; do
                printf '[[rule]]\nprincipal = "ANONYMOUS"\nresource = "%s"\nname = "*"\noperations = ["all"]\n\n' \
                    "$resource"
            done >"$work/kafka-acl/acl.toml"
            acl_table="[listener.authorization]
rules = \"$work/kafka-acl/acl.toml\""
            command=("$kafka_bench" "${kafka_args[@]}" --idle-sessions 0 --listener-extra "$acl_table")
            ;;
    esac
    mkdir -p "$work/kafka-$kafka_run"
    if ! "${command[@]}" --sluice "$sluice" --work-dir "$work/kafka-$kafka_run" \
        >"$work/kafka-$kafka_run.out"; then
        echo "bench: kafka_bench failed; Sluice's logs:" >&2
        tail -n 20 "$work/kafka-$kafka_run"/*.log >&2 2>/dev/null || true
        echo "Kafka ($kafka_run): failed, see above." >"$work/kafka-$kafka_run.out"
    fi
done

# === tables ===

kafka_end=$SECONDS
echo
echo "Medians of $reps run(s) of ${seconds}s each ($mode_name), $(date -u +%Y-%m-%d), $(nproc) cores,"
echo "$(haproxy -v | head -n 1 | cut -d' ' -f1-3), sluice $("$sluice" --version | awk '{print $NF}')."
echo
python3 - "$results" "${one_cpu_cases[*]}" <<'EOF'
import statistics, sys
from collections import defaultdict

runs = defaultdict(list)  # (placement, case, via) -> [fields]
for line in open(sys.argv[1]):
    fields = dict(item.split("=", 1) for item in line.split()[1:])
    # The proxy's CPU per unit of work, from its CPU seconds over the measured window.
    if "cpu_s" in fields:
        cpu = float(fields["cpu_s"])
        if fields.get("requests", "0") != "0":
            fields["cpu_us_per_req"] = cpu * 1e6 / float(fields["requests"])
        if fields.get("connections") and fields.get("mode") == "connect" and fields["connections"] != "0":
            fields["cpu_us_per_conn"] = cpu * 1e6 / float(fields["connections"])
        moved = float(fields.get("bytes_up", 0)) + float(fields.get("bytes_down", 0))
        if moved > 0:
            fields["cpu_s_per_gb"] = cpu / (moved / 1e9)
    runs[(fields["placement"], fields["case"], fields["via"])].append(fields)

placements = {"unpinned": "unpinned", "one_cpu": "one CPU"}
# (case, field, label, higher is better); the one-CPU placement runs the cases bench/run.sh
# lists for it, with the same rows.
unpinned_rows = [
    ("up1", "mbps", "throughput up, 1 conn (MB/s)", True),
    ("up8", "mbps", "throughput up, 8 conns (MB/s)", True),
    ("both8", "mbps", "throughput both ways, 8 conns (MB/s, up + down)", True),
    ("rr1", "rps", "rr 64 B, 1 conn (req/s)", True),
    ("rr1", "p50_us", "rr 64 B, 1 conn p50 (µs)", False),
    ("rr1", "p99_us", "rr 64 B, 1 conn p99 (µs)", False),
    ("rr64", "rps", "rr 64 B, 64 conns (req/s)", True),
    ("rr64", "p50_us", "rr 64 B, 64 conns p50 (µs)", False),
    ("rr64", "p99_us", "rr 64 B, 64 conns p99 (µs)", False),
    ("connect16", "cps", "connect, concurrency 16 (conn/s)", True),
    ("wrk1", "rps", "wrk → nginx 64 B, 1 conn (req/s)", True),
    ("wrk1", "p50_us", "wrk → nginx 64 B, 1 conn p50 (µs)", False),
    ("wrk1", "p99_us", "wrk → nginx 64 B, 1 conn p99 (µs)", False),
    ("wrk64", "rps", "wrk → nginx 64 B, 64 conns (req/s)", True),
    ("wrk64", "p50_us", "wrk → nginx 64 B, 64 conns p50 (µs)", False),
    ("wrk64", "p99_us", "wrk → nginx 64 B, 64 conns p99 (µs)", False),
    ("tls_handshake16", "rps", "TLS handshakes, conn per request, 16 conns (handshakes/s)", True),
    ("tls_bulk8", "mbps", "TLS bulk, 1 MiB responses, 8 conns (MB/s)", True),
    ("up8", "cpu_s_per_gb", "proxy CPU, throughput up, 8 conns (s/GB)", False),
    ("both8", "cpu_s_per_gb", "proxy CPU, both ways, 8 conns (s/GB)", False),
    ("rr1", "cpu_us_per_req", "proxy CPU, rr 64 B, 1 conn (µs/req)", False),
    ("rr64", "cpu_us_per_req", "proxy CPU, rr 64 B, 64 conns (µs/req)", False),
    ("connect16", "cpu_us_per_conn", "proxy CPU, connect (µs/conn)", False),
    ("wrk1", "cpu_us_per_req", "proxy CPU, wrk 64 B, 1 conn (µs/req)", False),
    ("wrk64", "cpu_us_per_req", "proxy CPU, wrk 64 B, 64 conns (µs/req)", False),
    ("tls_handshake16", "cpu_us_per_req", "proxy CPU, TLS handshake (µs/handshake)", False),
    ("tls_bulk8", "cpu_s_per_gb", "proxy CPU, TLS bulk (s/GB)", False),
    ("idle", "kib_per_session", "idle, 1000 sessions (KiB/session)", False),
]
one_cpu_cases = set(sys.argv[2].split())
rows = {
    "unpinned": unpinned_rows,
    "one_cpu": [row for row in unpinned_rows if row[0] in one_cpu_cases],
}

def median(key, field):
    values = [float(r[field]) for r in runs.get(key, []) if field in r]
    return statistics.median(values) if values else None

def errors(key):
    return sum(int(r.get("errors", 0)) for r in runs.get(key, []))

def show(value):
    if value is None:
        return "—"
    if abs(value) >= 100 or value == int(value):
        return f"{value:.0f}"
    return f"{value:.2f}" if abs(value) < 1 else f"{value:.1f}"

def ratio(a, b):
    return "—" if a is None or b is None or b == 0 else f"{a / b:.2f}"

print("| measurement | placement | direct | HAProxy | Sluice | Sluice/HAProxy | Sluice/direct | errors (d/H/S) |")
print("|---|---|---:|---:|---:|---:|---:|---:|")
for placement, placement_rows in rows.items():
    for case, field, label, _higher in placement_rows:
        keys = [(placement, case, t) for t in ("direct", "haproxy", "sluice")]
        d, h, s = (median(key, field) for key in keys)
        errs = "/".join("—" if key not in runs else str(errors(key)) for key in keys)
        print(f"| {label} | {placements[placement]} | {show(d)} | {show(h)} | {show(s)} | {ratio(s, h)} | {ratio(s, d)} | {errs} |")
print()
print("Ratios above 1 are better for throughput, req/s, conn/s and handshakes/s; below 1 for latency,")
print("CPU and memory. Direct TLS rows are nginx terminating TLS itself (OpenSSL); the proxies")
print("terminate TLS and forward plain TCP to nginx's plain port.")
EOF
for kafka_run in "${kafka_runs[@]}"; do
    grep -v '^RESULT ' "$work/kafka-$kafka_run.out"
done
# What a stage and the audit sink cost: each run against the run without them. The runs are
# minutes apart and the mock's speed drifts between them, so each is taken relative to its own
# direct run (Sluice/direct), and the cost is the ratio of those (medians of the repetitions).
python3 - "$work/kafka-shared.out" "$work/kafka-quota.out" "$work/kafka-audit.out" "$work/kafka-acl.out" <<'EOF'
import statistics, sys

def medians(path):
    values = {}
    try:
        lines = open(path).readlines()
    except OSError:
        return {}
    for line in lines:
        if not line.startswith("RESULT "):
            continue
        fields = dict(item.split("=", 1) for item in line.split()[1:])
        if "mbps" in fields:
            values.setdefault((fields["case"], fields["via"]), []).append(float(fields["mbps"]))
    return {key: statistics.median(v) for key, v in values.items()}

def relative(run, case):
    try:
        return run[(case, "sluice")] / run[(case, "direct")]
    except (KeyError, ZeroDivisionError):
        return None

runs = [medians(path) for path in sys.argv[1:]]
print()
print("| Kafka, Sluice/direct (medians) | without | with a quota stage | ratio | with the audit file sink | ratio | with allow-all ACLs | ratio |")
print("|---|---:|---:|---:|---:|---:|---:|---:|")
for case in ("produce", "consume"):
    base, quota, audit, acl = (relative(run, case) for run in runs)
    show = lambda v: "—" if v is None else f"{v:.2f}"
    ratio = lambda v: "—" if v is None or not base else f"{v / base:.2f}"
    print(f"| {case} | {show(base)} | {show(quota)} | {ratio(quota)} | {show(audit)} | {ratio(audit)} | {show(acl)} | {ratio(acl)} |")
EOF
echo
echo "Took $((tcp_start))s for tools and build, $((kafka_start - tcp_start))s for the TCP part," \
    "$((kafka_end - kafka_start))s for the Kafka part."
