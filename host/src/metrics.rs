//! Prometheus metrics: one recorder for the process, names in one place.
//!
//! Counters and histograms are recorded where the work happens (a plugin call, an
//! encode, a transfer, a webhook attempt) through the functions below; gauges that
//! describe the whole cluster (jobs by status, queue depth) are read from the database
//! when `/metrics` is scraped, so every node answers the same.

use std::sync::OnceLock;
use std::time::Duration;

use metrics::Histogram;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Seconds buckets from a millisecond plugin call to a long encode.
const SECONDS_BUCKETS: &[f64] = &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0];

/// Installs the process's recorder (once; call it at start, before anything is
/// counted) and returns the handle that renders it.
pub fn handle() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS)
            .expect("the buckets are not empty")
            .build_recorder();
        let handle = recorder.handle();
        // Another recorder can only be installed by a test that made its own: keep ours
        // as the renderer either way.
        let _ = metrics::set_global_recorder(recorder);
        describe();
        handle
    })
}

fn describe() {
    metrics::describe_histogram!("copra_plugin_call_seconds", metrics::Unit::Seconds, "Time of each plugin call, by plugin, function and outcome.");
    metrics::describe_histogram!("copra_encode_seconds", metrics::Unit::Seconds, "Wall time of each output's encode, by format.");
    metrics::describe_counter!("copra_input_bytes_total", metrics::Unit::Bytes, "Bytes of inputs fetched.");
    metrics::describe_counter!("copra_output_bytes_total", metrics::Unit::Bytes, "Bytes of outputs stored.");
    metrics::describe_counter!("copra_webhook_deliveries_total", "Webhook delivery attempts, by result (delivered, retry, failed).");
    metrics::describe_gauge!("copra_jobs", "Jobs in the database by status (all nodes).");
    metrics::describe_gauge!("copra_queue_depth", "Jobs waiting for a worker (no live lease).");
    metrics::describe_gauge!("copra_jobs_running", "Jobs held by a worker's live lease.");
}

/// The call-time histograms of one plugin, per function and outcome, each registered
/// with the recorder on its first use: registering looks the labels up in the
/// recorder's registry, which is too slow to do on every call of a plugin.
#[derive(Default)]
pub struct PluginCalls(std::sync::Mutex<Vec<(&'static str, [Histogram; 2])>>);

impl PluginCalls {
    /// One call of `plugin`'s `function` ended, `ok` or not, after `elapsed`.
    pub fn record(&self, plugin: &str, function: &'static str, ok: bool, elapsed: Duration) {
        let mut known = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let index = match known.iter().position(|(f, _)| *f == function) {
            Some(index) => index,
            None => {
                let histogram = |outcome: &'static str| {
                    metrics::histogram!("copra_plugin_call_seconds", "plugin" => plugin.to_string(), "function" => function, "outcome" => outcome)
                };
                known.push((function, [histogram("error"), histogram("ok")]));
                known.len() - 1
            }
        };
        known[index].1[usize::from(ok)].record(elapsed.as_secs_f64());
    }
}

/// One output was encoded in `elapsed`.
pub fn encoded(format: &str, elapsed: Duration) {
    metrics::histogram!("copra_encode_seconds", "format" => format.to_string()).record(elapsed.as_secs_f64());
}

pub fn input_bytes(bytes: u64) {
    metrics::counter!("copra_input_bytes_total").increment(bytes);
}

pub fn output_bytes(bytes: u64) {
    metrics::counter!("copra_output_bytes_total").increment(bytes);
}

/// A call of the media engine, or one output or measurement of it, failed: `kind` is
/// what failed (`input`, `limit`, `encoder`, `measure`, or how the process ended:
/// `crash`, `memory`, `cpu`, `output_bytes`, `protocol`, `spawn`).
pub fn media_failure(kind: &'static str) {
    metrics::counter!("copra_media_failures_total", "kind" => kind).increment(1);
}

/// A webhook attempt's result: `delivered`, `retry` (failed, will try again) or `failed`
/// (the schedule is exhausted).
pub fn webhook_delivery(result: &'static str) {
    metrics::counter!("copra_webhook_deliveries_total", "result" => result).increment(1);
}

/// The cluster-wide gauges, as read from the database at scrape time.
pub fn set_jobs(by_status: &[(String, i64)], waiting: i64, running: i64) {
    for (status, count) in by_status {
        metrics::gauge!("copra_jobs", "status" => status.clone()).set(*count as f64);
    }
    metrics::gauge!("copra_queue_depth").set(waiting as f64);
    metrics::gauge!("copra_jobs_running").set(running as f64);
}
