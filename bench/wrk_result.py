#!/usr/bin/env python3
"""Turns wrk's report (standard input) into loadgen's form: one `RESULT mode=wrk key=value ...`
line for bench/run.sh, then one line for people.

wrk prints times as 12.34us / 1.23ms / 1.23s (and m, h), sizes in binary units (512.00B,
118.15KB, 1.23GB), "Socket errors: connect N, read N, write N, timeout N" only when there
were any, and "Non-2xx or 3xx responses: N" likewise. Every one of them counts as an error.

Options: --connections N (as given to wrk, for the record), --cpu-ticks N and --clk-tck N (the
proxy's utime + stime over the run, from /proc/PID/stat, and the ticks per second), so the
line carries cpu_s as loadgen's --cpu-pid does. Exits 1 when the report has no request count
(wrk failed), printing why.
"""
import argparse
import re
import sys

TIME = {"us": 1.0, "ms": 1e3, "s": 1e6, "m": 60e6, "h": 3600e6}
SIZE = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4, "P": 1024**5}


def micros(number, unit):
    return float(number) * TIME[unit]


def size(number, prefix):
    return float(number) * SIZE[prefix]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--connections", type=int, required=True)
    parser.add_argument("--cpu-ticks", type=int)
    parser.add_argument("--clk-tck", type=int, default=100)
    args = parser.parse_args()
    text = sys.stdin.read()

    total = re.search(
        r"^\s*(\d+) requests in ([\d.]+)(us|ms|s|m|h), ([\d.]+)([KMGTP]?)B read\s*$", text, re.M
    )
    if not total:
        print("wrk_result: no request count in wrk's output:\n" + text, file=sys.stderr)
        return 1
    requests = int(total.group(1))
    seconds = micros(total.group(2), total.group(3)) / 1e6
    bytes_read = size(total.group(4), total.group(5))

    rate = re.search(r"^Requests/sec:\s+([\d.]+)\s*$", text, re.M)
    rps = float(rate.group(1)) if rate else requests / seconds
    transfer = re.search(r"^Transfer/sec:\s+([\d.]+)([KMGTP]?)B\s*$", text, re.M)
    # MB/s in decimal units, as loadgen reports them.
    mbps = size(transfer.group(1), transfer.group(2)) / 1e6 if transfer else bytes_read / seconds / 1e6

    # "Latency Distribution" lines (with --latency): "     50%   95.00us".
    quantiles = {
        q: micros(n, u)
        for q, n, u in re.findall(r"^\s*(50|75|90|99)%\s+([\d.]+)(us|ms|s|m|h)\s*$", text, re.M)
    }

    socket = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text
    )
    connect_errors, read_errors, write_errors, timeouts = (
        (int(n) for n in socket.groups()) if socket else (0, 0, 0, 0)
    )
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    non_2xx = int(bad.group(1)) if bad else 0
    errors = connect_errors + read_errors + write_errors + timeouts + non_2xx

    fields = [
        ("mode", "wrk"),
        ("connections", args.connections),
        ("seconds", f"{seconds:.2f}"),
        ("requests", requests),
        ("rps", f"{rps:.0f}"),
        ("mbps", f"{mbps:.1f}"),
        ("bytes_down", f"{bytes_read:.0f}"),
    ]
    if "50" in quantiles:
        fields.append(("p50_us", f"{quantiles['50']:.0f}"))
    if "99" in quantiles:
        fields.append(("p99_us", f"{quantiles['99']:.0f}"))
    if args.cpu_ticks is not None:
        fields.append(("cpu_s", f"{args.cpu_ticks / args.clk_tck:.3f}"))
    fields += [
        ("errors", errors),
        ("connect", connect_errors),
        ("read", read_errors),
        ("write", write_errors),
        ("timeout", timeouts),
        ("non_2xx", non_2xx),
    ]
    print("RESULT " + " ".join(f"{key}={value}" for key, value in fields))
    human = f"wrk: {rps:.0f} req/s, {mbps:.1f} MB/s"
    if "50" in quantiles and "99" in quantiles:
        human += f", p50 {quantiles['50']:.0f} µs, p99 {quantiles['99']:.0f} µs"
    if args.cpu_ticks is not None:
        cpu = args.cpu_ticks / args.clk_tck
        human += f", proxy CPU {cpu:.2f} s"
        if requests:
            human += f" ({cpu * 1e6 / requests:.1f} µs/req)"
    human += f", {errors} errors"
    print(human)
    return 0


if __name__ == "__main__":
    sys.exit(main())
