//! Output: a `RESULT key=value ...` line per measurement on standard output for scripts, a
//! line for people on standard error, and at the end the markdown table of medians (Sluice
//! against direct, over the repetitions) on standard output.

use std::fs;
use std::io::{self, Write};

use crate::meter::Moved;
use crate::{Cli, Via};

/// One measured value, filed for the table under (case, field).
#[derive(Debug)]
pub(crate) struct Sample {
    pub(crate) rep: u32,
    pub(crate) via: Via,
    pub(crate) case: &'static str,
    pub(crate) field: &'static str,
    pub(crate) value: f64,
}

/// A line for people, on standard error.
pub(crate) fn say(line: std::fmt::Arguments<'_>) -> io::Result<()> {
    writeln!(io::stderr().lock(), "{line}")
}

/// A line for scripts, on standard output.
pub(crate) fn result_line(line: std::fmt::Arguments<'_>) -> io::Result<()> {
    let mut out = io::stdout().lock();
    writeln!(out, "RESULT {line}")?;
    out.flush()
}

pub(crate) fn report(
    rep: u32,
    via: Via,
    case: &'static str,
    moved: &Moved,
    samples: &mut Vec<Sample>,
) -> io::Result<()> {
    let seconds = moved.seconds.max(1e-9);
    let gb = (moved.bytes as f64 / 1e9).max(1e-12);
    let fields = [
        ("mbps", moved.bytes as f64 / seconds / 1e6),
        ("msgs_per_s", moved.messages as f64 / seconds),
        ("cpu_bench_s_per_gb", moved.cpu_bench / gb),
        ("cpu_sluice_user_s_per_gb", moved.cpu_sluice_user / gb),
        ("cpu_sluice_sys_s_per_gb", moved.cpu_sluice_sys / gb),
    ];
    let mut line = format!(
        "rep={rep} via={} case={case} messages={} bytes={} seconds={seconds:.3}",
        via.label(),
        moved.messages,
        moved.bytes
    );
    for (field, value) in fields {
        line.push_str(&format!(" {field}={value:.2}"));
        samples.push(Sample {
            rep,
            via,
            case,
            field,
            value,
        });
    }
    result_line(format_args!("{line}"))?;
    say(format_args!(
        "  rep {rep} {:<6} {case}: {} messages in {seconds:.2} s, {:.0} MB/s, {:.0} msgs/s; CPU s/GB: \
         client+mock {:.2}, sluice {:.2} user + {:.2} sys",
        via.label(),
        moved.messages,
        fields[0].1,
        fields[1].1,
        fields[2].1,
        fields[3].1,
        fields[4].1
    ))
}

fn median(mut values: Vec<f64>) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(values[n / 2]),
        _ => Some((values[n / 2 - 1] + values[n / 2]) / 2.0),
    }
}

fn show(value: Option<f64>) -> String {
    match value {
        None => "—".to_owned(),
        Some(v) if v.abs() >= 100.0 => format!("{v:.0}"),
        Some(v) => format!("{v:.2}"),
    }
}

/// The markdown table of medians, with Sluice/direct of the medians and of each repetition.
pub(crate) fn table(cli: &Cli, samples: &[Sample]) -> io::Result<()> {
    let (version, _) = rdkafka::util::get_rdkafka_version();
    let (major, minor, patch) = (version >> 24, (version >> 16) & 0xff, (version >> 8) & 0xff);
    let mut out = io::stdout().lock();
    writeln!(out)?;
    writeln!(
        out,
        "Kafka: medians of {} run(s); produce {} messages of {} B (acks={}, linger.ms=5), consume \
         what the {} partitions hold, {} times; librdkafka {major}.{minor}.{patch} and its mock \
         cluster (3 brokers) in one process.",
        cli.repeat, cli.messages, cli.size, cli.acks, cli.partitions, cli.consume_passes
    )?;
    // Where the clients and the mock ran, and Sluice (with `--sluice-cpus`).
    let own = fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let line = status
                .lines()
                .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))?;
            Some(line.trim().to_owned())
        });
    let own = own.as_deref().unwrap_or("?");
    let sluice = cli.sluice_cpus.as_deref().unwrap_or(own);
    writeln!(
        out,
        "CPUs: clients and mock brokers on {own}, Sluice on {sluice}."
    )?;
    if !cli.listener_extra.trim().is_empty() {
        let extra = cli.listener_extra.trim().replace('\n', "; ");
        writeln!(out, "Sluice's Kafka listener adds: `{extra}`.")?;
    }
    writeln!(out)?;
    writeln!(
        out,
        "| measurement | direct | Sluice | Sluice/direct | Sluice/direct per run |"
    )?;
    writeln!(out, "|---|---:|---:|---:|---|")?;
    let k = cli.idle_sessions;
    let rows = [
        ("produce", "mbps", "produce (MB/s)".to_owned()),
        ("produce", "msgs_per_s", "produce (msgs/s)".to_owned()),
        ("consume", "mbps", "consume (MB/s)".to_owned()),
        ("consume", "msgs_per_s", "consume (msgs/s)".to_owned()),
        (
            "produce",
            "cpu_bench_s_per_gb",
            "produce: CPU s/GB, client + mock".to_owned(),
        ),
        (
            "produce",
            "cpu_sluice_user_s_per_gb",
            "produce: CPU s/GB, Sluice user".to_owned(),
        ),
        (
            "produce",
            "cpu_sluice_sys_s_per_gb",
            "produce: CPU s/GB, Sluice system".to_owned(),
        ),
        (
            "consume",
            "cpu_bench_s_per_gb",
            "consume: CPU s/GB, client + mock".to_owned(),
        ),
        (
            "consume",
            "cpu_sluice_user_s_per_gb",
            "consume: CPU s/GB, Sluice user".to_owned(),
        ),
        (
            "consume",
            "cpu_sluice_sys_s_per_gb",
            "consume: CPU s/GB, Sluice system".to_owned(),
        ),
        (
            "idle_silent",
            "kib",
            format!("idle, {k} silent sessions (KiB/session)"),
        ),
        (
            "idle_api_versions",
            "kib",
            format!("idle, {k} sessions after ApiVersions (KiB/session)"),
        ),
    ];
    for (case, field, label) in rows {
        let pick = |via: Via| -> Vec<(u32, f64)> {
            samples
                .iter()
                .filter(|s| s.case == case && s.field == field && s.via == via)
                .map(|s| (s.rep, s.value))
                .collect()
        };
        let (direct, proxied) = (pick(Via::Direct), pick(Via::Sluice));
        if direct.is_empty() && proxied.is_empty() {
            continue;
        }
        let d = median(direct.iter().map(|p| p.1).collect());
        let s = median(proxied.iter().map(|p| p.1).collect());
        // Sluice's own CPU when no client goes through it is noise, not a baseline.
        let baseline = d.filter(|_| !field.starts_with("cpu_sluice") && !direct.is_empty());
        let ratio = |s: f64, d: f64| {
            if d > 0.0 {
                format!("{:.2}", s / d)
            } else {
                "—".to_owned()
            }
        };
        let (median_ratio, per_run) = match baseline {
            Some(d_median) => {
                let per_run: Vec<String> = proxied
                    .iter()
                    .filter_map(|(rep, s)| {
                        direct
                            .iter()
                            .find(|(r, _)| r == rep)
                            .map(|(_, d)| ratio(*s, *d))
                    })
                    .collect();
                (
                    s.map_or("—".to_owned(), |s| ratio(s, d_median)),
                    per_run.join(", "),
                )
            }
            None => (
                "—".to_owned(),
                proxied
                    .iter()
                    .map(|(_, s)| show(Some(*s)))
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
        };
        let d = if baseline.is_some() {
            show(d)
        } else {
            "—".to_owned()
        };
        writeln!(
            out,
            "| {label} | {d} | {} | {median_ratio} | {per_run} |",
            show(s)
        )?;
    }
    writeln!(out)?;
    out.flush()
}
