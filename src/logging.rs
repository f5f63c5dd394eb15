//! Where `deskgate serve` logs: text or one JSON object per line on standard output, and the
//! audit events (`target: "deskgate::audit"`: sign-ins, sign-outs, administrators' changes)
//! optionally in a file of their own. `RUST_LOG` filters as usual.

use std::path::PathBuf;
use std::sync::Mutex;

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
