//! Prometheus metrics: what deskgate decided, what the upstream answered and how long it
//! took, sign-ins, failures by source, sessions, reloads. Kept across reloads; exposed in
//! the Prometheus text format on a listener of their own (`[metrics]`).

use std::time::Duration;

use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

/// Every metric deskgate exports.
#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Registry,
    /// `deskgate_requests_total{decision, reason}`: proxied requests by decision.
    requests: IntCounterVec,
    /// `deskgate_request_duration_seconds`: allowed requests, from the decision to the
    /// upstream's response headers.
    latency: Histogram,
    /// `deskgate_sign_ins_total{provider, result}`.
    sign_ins: IntCounterVec,
    /// `deskgate_errors_total{source}`: failures answered 5xx, by what failed.
    errors: IntCounterVec,
    /// `deskgate_config_reloads_total{result}`.
    reloads: IntCounterVec,
    /// `deskgate_sessions`: sessions in the memory store (0 with Redis).
    sessions: IntGauge,
    /// The counters every proxied request touches, looked up once: allow, login, and
    /// `deskgate_upstream_responses_total{class}` for 1xx..5xx and error.
    allowed: IntCounter,
    login: IntCounter,
    classes: [IntCounter; 6],
}

/// How a sign-in ended, for [`Metrics::sign_in`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignIn {
    /// A session was started.
    Success,
    /// The credentials or the provider's answer were not accepted.
    Failure,
    /// Refused before any check (limits, no account, disabled account).
    Refused,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

fn counter(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let vec = IntCounterVec::new(Opts::new(name, help), labels).unwrap_or_else(|_| unreachable_metric(name));
    let _ = registry.register(Box::new(vec.clone()));
    vec
}

/// Metric names and labels here are constants that are valid; a failure to build one is a
/// programming error caught by the tests, so it is not worth an error path.
fn unreachable_metric(name: &str) -> ! {
    panic!("metric {name} is malformed")
}

impl Metrics {
    /// A fresh set of metrics with the build info set.
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let requests = counter(
            &registry,
            "deskgate_requests_total",
            "Proxied requests by decision (allow, login, deny) and deny reason.",
            &["decision", "reason"],
        );
        let upstream = counter(
            &registry,
            "deskgate_upstream_responses_total",
            "Upstream answers to allowed requests by status class (2xx .. 5xx), or error when none came.",
            &["class"],
        );
        let latency = Histogram::with_opts(
            HistogramOpts::new(
                "deskgate_request_duration_seconds",
                "Allowed requests, from the decision to the upstream's response headers.",
            )
            .buckets(vec![0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]),
        )
        .unwrap_or_else(|_| unreachable_metric("deskgate_request_duration_seconds"));
        let _ = registry.register(Box::new(latency.clone()));
        let sign_ins = counter(
            &registry,
            "deskgate_sign_ins_total",
            "Sign-ins by provider and result (success, failure, refused).",
            &["provider", "result"],
        );
        let errors = counter(
            &registry,
            "deskgate_errors_total",
            "Requests that failed with a 5xx, by what failed (upstream, session_store, account_store, provider, internal).",
            &["source"],
        );
        let reloads = counter(
            &registry,
            "deskgate_config_reloads_total",
            "Config reloads by result (success, failure).",
            &["result"],
        );
        let sessions = IntGauge::new(
            "deskgate_sessions",
            "Sessions in the memory store (0 when sessions live in Redis).",
        )
        .unwrap_or_else(|_| unreachable_metric("deskgate_sessions"));
        let _ = registry.register(Box::new(sessions.clone()));
        let build = IntGaugeVec::new(
            Opts::new("deskgate_build_info", "The running build: always 1, with its version as a label."),
            &["version"],
        )
        .unwrap_or_else(|_| unreachable_metric("deskgate_build_info"));
        build.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        let _ = registry.register(Box::new(build));
        let allowed = requests.with_label_values(&["allow", ""]);
        let login = requests.with_label_values(&["login", ""]);
        let classes = ["1xx", "2xx", "3xx", "4xx", "5xx", "error"].map(|c| upstream.with_label_values(&[c]));
        Metrics { registry, requests, latency, sign_ins, errors, reloads, sessions, allowed, login, classes }
    }

    /// Counts a decision; `reason` is the deny reason's code, empty otherwise.
    pub fn decision(&self, decision: &str, reason: &str) {
        match (decision, reason) {
            ("allow", "") => self.allowed.inc(),
            ("login", "") => self.login.inc(),
            _ => self.requests.with_label_values(&[decision, reason]).inc(),
        }
    }

    /// Counts an upstream answer (`None`: none came) and how long it took.
    pub fn upstream(&self, status: Option<http::StatusCode>, took: Duration) {
        let class = match status.map(|s| s.as_u16() / 100) {
            Some(n @ 1..=5) => usize::from(n) - 1,
            _ => 5,
        };
        self.classes[class].inc();
        self.latency.observe(took.as_secs_f64());
    }

    /// Counts a sign-in through `provider`.
    pub fn sign_in(&self, provider: &str, result: SignIn) {
        let result = match result {
            SignIn::Success => "success",
            SignIn::Failure => "failure",
            SignIn::Refused => "refused",
        };
        self.sign_ins.with_label_values(&[provider, result]).inc();
    }

    /// Counts a failure answered 5xx.
    pub fn error(&self, source: &str) {
        self.errors.with_label_values(&[source]).inc();
    }

    /// Counts a config reload.
    pub fn reload(&self, succeeded: bool) {
        self.reloads.with_label_values(&[if succeeded { "success" } else { "failure" }]).inc();
    }

    /// The metrics in the Prometheus text format, with `sessions` as the session gauge.
    pub fn render(&self, sessions: usize) -> String {
        self.sessions.set(i64::try_from(sessions).unwrap_or(i64::MAX));
        let mut out = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::warn!(error = %e, "Cannot encode the metrics");
        }
        String::from_utf8(out).unwrap_or_default()
    }
}

/// The content type of [`Metrics::render`].
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_conventions_and_counts_show() {
        let m = Metrics::new();
        m.decision("allow", "");
        m.decision("deny", "no-rule");
        m.upstream(Some(http::StatusCode::OK), Duration::from_millis(3));
        m.upstream(None, Duration::from_millis(3));
        m.sign_in("builtin", SignIn::Success);
        m.reload(false);
        let text = m.render(7);
        for line in [
            "deskgate_requests_total{decision=\"allow\",reason=\"\"} 1",
            "deskgate_requests_total{decision=\"deny\",reason=\"no-rule\"} 1",
            "deskgate_upstream_responses_total{class=\"2xx\"} 1",
            "deskgate_upstream_responses_total{class=\"error\"} 1",
            "deskgate_request_duration_seconds_count 2",
            "deskgate_sign_ins_total{provider=\"builtin\",result=\"success\"} 1",
            "deskgate_config_reloads_total{result=\"failure\"} 1",
            "deskgate_sessions 7",
            "deskgate_build_info{version=\"",
        ] {
            assert!(text.contains(line), "{line} in\n{text}");
        }
    }
}
