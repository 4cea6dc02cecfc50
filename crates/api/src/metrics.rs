//! A small Prometheus registry with Coder's metric names (02 §7). Kept in-process and
//! rendered in the text exposition format.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};

pub const OAUTH2_TOKEN_REQUESTS: &str = "hangar_oauth2_token_requests_total";
pub const OAUTH2_TOKEN_DURATION: &str = "hangar_oauth2_token_request_duration_seconds";
pub const OAUTH2_AUTHORIZATIONS: &str = "hangar_oauth2_authorizations_total";
pub const OAUTH2_REGISTRATIONS: &str = "hangar_oauth2_registrations_total";
pub const OAUTH2_REVOCATIONS: &str = "hangar_oauth2_revocations_total";
pub const OAUTH2_REUSE: &str = "hangar_oauth2_token_reuse_detected_total";
pub const OAUTH2_AUDIENCE_REJECTIONS: &str = "hangar_oauth2_audience_rejections_total";
pub const OAUTH2_SWEEP_DELETED: &str = "hangar_oauth2_sweep_deleted_total";
pub const MCP_TOOL_CALLS: &str = "hangar_mcp_tool_calls_total";
pub const MCP_TOOL_DURATION: &str = "hangar_mcp_tool_call_duration_seconds";

/// Declares the OAuth2 and MCP families of 03 §8.
pub fn declare_oauth2(r: &hangar_core::metrics::Registry) {
    use hangar_core::metrics::Kind::{Counter, Histogram};
    r.declare(
        OAUTH2_TOKEN_REQUESTS,
        Counter,
        "Token endpoint requests by grant type and result.",
    );
    r.declare(
        OAUTH2_TOKEN_DURATION,
        Histogram,
        "Token endpoint latency by grant type.",
    );
    r.declare(
        OAUTH2_AUTHORIZATIONS,
        Counter,
        "Authorization requests by result.",
    );
    r.declare(
        OAUTH2_REGISTRATIONS,
        Counter,
        "Dynamic client registrations by result.",
    );
    r.declare(
        OAUTH2_REVOCATIONS,
        Counter,
        "Revocation requests by result.",
    );
    r.declare(
        OAUTH2_REUSE,
        Counter,
        "Reused codes or refresh tokens that revoked a grant family.",
    );
    r.declare(
        OAUTH2_AUDIENCE_REJECTIONS,
        Counter,
        "OAuth2 tokens refused for their audience, by route.",
    );
    r.declare(
        OAUTH2_SWEEP_DELETED,
        Counter,
        "Rows the OAuth2 sweeper deleted, by kind.",
    );
    r.declare(
        MCP_TOOL_CALLS,
        Counter,
        "MCP tool calls by tool and result.",
    );
    r.declare(
        MCP_TOOL_DURATION,
        Histogram,
        "MCP tool call latency by tool.",
    );
}

const BUCKETS: [f64; 11] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

#[derive(Default)]
struct Histogram {
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(u16, String, String), u64>>,
    latencies: Mutex<BTreeMap<(String, String), Histogram>>,
    concurrent: AtomicI64,
    logins: Mutex<BTreeMap<&'static str, u64>>,
    key_writes: Mutex<BTreeMap<&'static str, u64>>,
    /// The domain areas' metrics (workspaces, provisioners, …), rendered after these.
    pub registry: std::sync::Arc<hangar_core::metrics::Registry>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Metrics {
    pub fn request_started(&self) {
        self.concurrent.fetch_add(1, Ordering::Relaxed);
    }

    pub fn request_finished(&self, code: u16, method: &str, path: &str, seconds: f64) {
        self.concurrent.fetch_sub(1, Ordering::Relaxed);
        *lock(&self.requests)
            .entry((code, method.to_string(), path.to_string()))
            .or_default() += 1;
        let mut lat = lock(&self.latencies);
        let h = lat
            .entry((method.to_string(), path.to_string()))
            .or_default();
        h.count += 1;
        h.sum += seconds;
        for (i, b) in BUCKETS.iter().enumerate() {
            if seconds <= *b {
                h.buckets[i] += 1;
            }
        }
    }

    /// `result` is `success`, `bad_credentials`, `suspended` or `rate_limited`.
    pub fn login_attempt(&self, result: &'static str) {
        *lock(&self.logins).entry(result).or_default() += 1;
    }

    /// `reason` is `last_used` or `expiry_refresh`.
    pub fn api_key_write(&self, reason: &'static str) {
        *lock(&self.key_writes).entry(reason).or_default() += 1;
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP coderd_api_requests_processed_total The total number of processed API requests."
        );
        let _ = writeln!(out, "# TYPE coderd_api_requests_processed_total counter");
        for ((code, method, path), n) in lock(&self.requests).iter() {
            let _ = writeln!(
                out,
                "coderd_api_requests_processed_total{{code=\"{code}\",method=\"{}\",path=\"{}\"}} {n}",
                escape(method),
                escape(path)
            );
        }
        let _ = writeln!(
            out,
            "# HELP coderd_api_concurrent_requests The number of concurrent API requests."
        );
        let _ = writeln!(out, "# TYPE coderd_api_concurrent_requests gauge");
        let _ = writeln!(
            out,
            "coderd_api_concurrent_requests {}",
            self.concurrent.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP coderd_api_request_latencies_seconds Latency distribution of requests in seconds."
        );
        let _ = writeln!(out, "# TYPE coderd_api_request_latencies_seconds histogram");
        for ((method, path), h) in lock(&self.latencies).iter() {
            let labels = format!("method=\"{}\",path=\"{}\"", escape(method), escape(path));
            for (i, b) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "coderd_api_request_latencies_seconds_bucket{{{labels},le=\"{b}\"}} {}",
                    h.buckets[i]
                );
            }
            let _ = writeln!(
                out,
                "coderd_api_request_latencies_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "coderd_api_request_latencies_seconds_sum{{{labels}}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "coderd_api_request_latencies_seconds_count{{{labels}}} {}",
                h.count
            );
        }
        let _ = writeln!(
            out,
            "# HELP hangar_login_attempts_total Password login attempts by result."
        );
        let _ = writeln!(out, "# TYPE hangar_login_attempts_total counter");
        for (result, n) in lock(&self.logins).iter() {
            let _ = writeln!(
                out,
                "hangar_login_attempts_total{{result=\"{result}\"}} {n}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP hangar_api_key_writes_total Conditional API key usage writes by reason."
        );
        let _ = writeln!(out, "# TYPE hangar_api_key_writes_total counter");
        for (reason, n) in lock(&self.key_writes).iter() {
            let _ = writeln!(
                out,
                "hangar_api_key_writes_total{{reason=\"{reason}\"}} {n}"
            );
        }
        out.push_str(&self.registry.render());
        out
    }
}
