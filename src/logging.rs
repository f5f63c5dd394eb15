//! Where `deskgate serve` logs: text or one JSON object per line on standard output, and the
//! audit events (`target: "deskgate::audit"`: sign-ins, sign-outs, administrators' changes)
//! optionally in a file of their own. `RUST_LOG` filters as usual. Also the once-a-minute
//! log lines of reached bounds ([`Notice`]).

use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use tracing_subscriber::filter::{Targets, filter_fn};
use tracing_subscriber::fmt;
use tracing_subscriber::prelude::*;
use tracing_subscriber::{EnvFilter, Layer, Registry};

/// The target of audit events.
pub const AUDIT: &str = "deskgate::audit";

/// How log lines are written (`[log] format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, with the request span's fields (the request id).
    Json,
}

/// `[log]`
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Log {
    /// Line format.
    pub format: Format,
    /// Where audit events go instead of standard output, when set.
    pub audit_file: Option<PathBuf>,
}

/// Why logging could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The audit file cannot be opened for appending.
    #[error("cannot open the audit log {path}")]
    AuditFile {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A global subscriber was already set.
    #[error("logging was already set up")]
    Installed(#[from] tracing_subscriber::util::TryInitError),
}

type Boxed = Box<dyn Layer<Registry> + Send + Sync>;

fn layer<W>(format: Format, writer: W, ansi: bool) -> Boxed
where
    W: for<'w> fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    match format {
        Format::Text => fmt::layer().with_writer(writer).with_ansi(ansi).boxed(),
        Format::Json => {
            fmt::layer().json().with_current_span(true).with_span_list(false).with_writer(writer).boxed()
        }
    }
}

/// Installs the process's log subscriber for `log`.
pub fn init(log: &Log) -> Result<(), LogError> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,tower_http=warn"));
    let mut layers: Vec<Boxed> = Vec::new();
    match &log.audit_file {
        None => layers.push(layer(log.format, std::io::stdout, true).with_filter(filter).boxed()),
        Some(path) => {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|source| LogError::AuditFile { path: path.clone(), source })?;
            let not_audit = filter_fn(|meta| meta.target() != AUDIT);
            layers.push(
                layer(log.format, std::io::stdout, true).with_filter(filter).with_filter(not_audit).boxed(),
            );
            let audit = Targets::new().with_target(AUDIT, tracing::Level::INFO);
            layers.push(layer(log.format, Mutex::new(file), false).with_filter(audit).boxed());
        }
    }
    tracing_subscriber::registry().with(layers).try_init()?;
    Ok(())
}

/// Seconds between two log lines of one [`Notice`].
const NOTICE_INTERVAL: u64 = 60;

/// A log line for a bound that was reached, written at most once a minute with the number
/// of refusals since the last one, so that a flood cannot flood the log as well.
#[derive(Debug)]
pub struct Notice {
    what: &'static str,
    /// When the last line was written (Unix seconds; 0: never).
    logged_at: AtomicU64,
    /// Refusals not yet reported.
    pending: AtomicU64,
}

impl Notice {
    /// A notice for the bound named `what`.
    pub const fn new(what: &'static str) -> Notice {
        Notice { what, logged_at: AtomicU64::new(0), pending: AtomicU64::new(0) }
    }

    /// Counts one refusal at `now`; writes the line when the last is a minute old.
    pub fn hit(&self, now: u64, detail: &'static str) {
        self.pending.fetch_add(1, Ordering::Relaxed);
        let last = self.logged_at.load(Ordering::Relaxed);
        if (last == 0 || now >= last + NOTICE_INTERVAL)
            && self.logged_at.compare_exchange(last, now.max(1), Ordering::Relaxed, Ordering::Relaxed).is_ok()
        {
            let refused = self.pending.swap(0, Ordering::Relaxed);
            tracing::warn!(
                limit = self.what,
                detail,
                refused,
                "Limit reached: requests refused (one line a minute at most, with the count since the last)"
            );
        }
    }
}

/// The notices of one running config, one per bound of `crate::limits`.
#[derive(Debug)]
pub struct Notices {
    /// Sign-ins refused by the attempt limits.
    pub sign_in: Notice,
    /// Sign-ups refused by their limits.
    pub sign_up: Notice,
    /// Validation mails not sent because of their limits.
    pub mail: Notice,
    /// Sign-ins and sign-ups refused because every password check turn was taken.
    pub hashing: Notice,
}

impl Default for Notices {
    fn default() -> Self {
        Notices {
            sign_in: Notice::new("sign-in attempts"),
            sign_up: Notice::new("sign-ups"),
            mail: Notice::new("validation mails"),
            hashing: Notice::new("password checks at once"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_notice_logs_at_most_once_a_minute_and_counts_what_it_held_back() {
        let n = Notice::new("test");
        n.hit(1_000, "x");
        assert_eq!(n.pending.load(Ordering::Relaxed), 0, "the first refusal is logged at once");
        for _ in 0..500 {
            n.hit(1_030, "x");
        }
        assert_eq!(n.pending.load(Ordering::Relaxed), 500, "held back within the minute");
        n.hit(1_060, "x");
        assert_eq!(n.pending.load(Ordering::Relaxed), 0, "reported with the next line");
        assert_eq!(n.logged_at.load(Ordering::Relaxed), 1_060);
    }
}
