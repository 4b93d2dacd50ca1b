//! `/metrics`, encoded by `prometheus-client`: the Prometheus text format (version 0.0.4), or
//! OpenMetrics 1.0 when the scraper prefers it (`Accept: application/openmetrics-text`).
//!
//! Every value is read at scrape time from counters the library crates already keep (close
//! counts, live resources, the session registry, probe results): one [`Collector`] per scrape
//! walks the admin state, so there is no second copy of the state to keep in step. The library
//! crates know nothing of Prometheus; the modules beside this one say which metric each counter
//! is. Names, types and labels are the contract dashboards rely on: a counter is given here
//! with its exposed name, `_total` included, and the encoder's own suffix replaces it.

use std::fmt;
use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeGaugeValue, EncodeLabelSet, MetricEncoder, NoLabelSet,
    prometheus_text, text,
};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use super::state::AdminState;

/// The exposition format a scrape gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Format {
    /// The Prometheus text format, version 0.0.4: what every scraper reads.
    Prometheus,
    /// OpenMetrics text 1.0.0, ending in `# EOF`.
    OpenMetrics,
}

// === impl Format ===

impl Format {
    const OPENMETRICS: &'static str = "application/openmetrics-text";

    /// The format an `Accept` header prefers: OpenMetrics when it names
    /// `application/openmetrics-text` with a quality at least that of any other type it
    /// accepts (Prometheus asks so by default); the Prometheus text format otherwise.
    pub(super) fn negotiate(accept: Option<&str>) -> Self {
        let Some(accept) = accept else {
            return Self::Prometheus;
        };
        let mut openmetrics = 0.0_f32;
        let mut other = 0.0_f32;
        for range in accept.split(',') {
            let mut parts = range.split(';');
            let media = parts.next().unwrap_or("").trim();
            let quality = parts
                .filter_map(|param| param.split_once('='))
                .find(|(key, _)| key.trim().eq_ignore_ascii_case("q"))
                .map_or(Some(1.0), |(_, q)| q.trim().parse::<f32>().ok())
                .unwrap_or(0.0);
            if media.eq_ignore_ascii_case(Self::OPENMETRICS) {
                openmetrics = openmetrics.max(quality);
            } else {
                other = other.max(quality);
            }
        }
        if openmetrics > 0.0 && openmetrics >= other {
            Self::OpenMetrics
        } else {
            Self::Prometheus
        }
    }

    pub(super) fn content_type(self) -> &'static str {
        match self {
            Self::Prometheus => prometheus_text::CONTENT_TYPE,
            Self::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

/// The exposition of `state` in `format`.
pub(super) fn render(state: &Arc<AdminState>, format: Format) -> Result<String, fmt::Error> {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Scrape(state.clone())));
    let mut out = String::with_capacity(8192);
    match format {
        Format::Prometheus => prometheus_text::encode(&mut out, &registry)?,
        Format::OpenMetrics => text::encode(&mut out, &registry)?,
    }
    Ok(out)
}

/// One scrape of the admin state.
#[derive(Debug)]
struct Scrape(Arc<AdminState>);

impl Collector for Scrape {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> fmt::Result {
        let state = &*self.0;
        let out = &mut encoder;
        super::session_metrics::encode(state, out)?;
        super::backend_metrics::encode(state, out)?;
        super::limits_metrics::encode(state, out)?;
        super::limits_metrics::encode_admin(state, out)?;
        super::kafka_metrics::encode(state, out)?;
        super::quota_metrics::encode(state, out)?;
        super::authorization_metrics::encode(state, out)?;
        super::tenant_metrics::encode(state, out)?;
        super::audit_metrics::encode(state, out)?;
        super::sasl_metrics::encode(state, out)?;
        super::frame_metrics::encode(state, out)?;
        super::tls_metrics::encode(state, out)?;
        super::reload_metrics::encode(state, out)?;
        gauge(
            out,
            "sluice_ready",
            "1 when /readyz answers 200.",
            u32::from(state.readiness().is_ok()),
        )?;
        super::process_metrics::encode(out)
    }
}

// === encoding helpers ===

/// Starts the family `name`; a counter's `name` ends in `_total`, as exposed.
pub(super) fn family<'a>(
    out: &'a mut DescriptorEncoder<'_>,
    name: &'a str,
    help: &str,
    kind: MetricType,
) -> Result<MetricEncoder<'a>, fmt::Error> {
    // The encoders append `_total` to a counter's name themselves.
    let name = match kind {
        MetricType::Counter => name.strip_suffix("_total").unwrap_or(name),
        _ => name,
    };
    out.encode_descriptor(name, help, None, kind)
}

/// A gauge family with one sample and no labels.
pub(super) fn gauge(
    out: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    value: impl EncodeGaugeValue,
) -> fmt::Result {
    family(out, name, help, MetricType::Gauge)?.encode_gauge(&value)
}

/// A counter family with one sample and no labels.
pub(super) fn counter(
    out: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    value: u64,
) -> fmt::Result {
    count(&mut family(out, name, help, MetricType::Counter)?, value)
}

/// A counter sample of the family `metric` has started (with its labels, if any).
pub(super) fn count(metric: &mut MetricEncoder<'_>, value: u64) -> fmt::Result {
    metric.encode_counter::<NoLabelSet, _, u64>(&value, None)
}

/// A counter sample with `labels`.
pub(super) fn count_with(
    metric: &mut MetricEncoder<'_>,
    labels: &impl EncodeLabelSet,
    value: u64,
) -> fmt::Result {
    count(&mut metric.encode_family(labels)?, value)
}

/// A histogram's buckets as the encoders take them: each bucket's own count, from the
/// cumulative counts read for `bounds` and then `+Inf` (the encoders add them up again).
pub(super) fn own_buckets(bounds: &[f64], cumulative: &[u64]) -> Vec<(f64, u64)> {
    let mut below = 0;
    bounds
        .iter()
        .copied()
        .chain([f64::INFINITY])
        .zip(cumulative)
        .map(|(le, &cumulative)| {
            let own = cumulative.saturating_sub(below);
            below = cumulative;
            (le, own)
        })
        .collect()
}

/// A gauge sample with `labels`.
pub(super) fn gauge_with(
    metric: &mut MetricEncoder<'_>,
    labels: &impl EncodeLabelSet,
    value: impl EncodeGaugeValue,
) -> fmt::Result {
    metric.encode_family(labels)?.encode_gauge(&value)
}

#[cfg(test)]
#[path = "metrics_tests.rs"]
mod tests;
