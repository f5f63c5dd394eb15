//! The one place errors become responses: handlers return [`GatewayError`], which logs
//! the cause and marks the response; the `rescue` layer renders the mark as a generic page
//! (or JSON) with the request id. No internal error text ever reaches the client.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};

use crate::accounts::AccountError;
use crate::html;
use crate::metrics::Metrics;
use crate::proxy::{BodyFault, ProxyError};
use crate::session::StoreError;
use crate::web::wants_html;

/// A failure while handling a request.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The upstream could not be reached or broke the exchange.
    #[error("upstream failed")]
    Upstream(#[from] ProxyError),
    /// The session store failed.
    #[error("session store failed")]
    SessionStore(#[from] StoreError),
    /// The account store failed.
    #[error("account store failed")]
    Accounts(#[from] AccountError),
    /// A provider's identity source failed.
    #[error("identity source failed")]
    IdentitySource(#[source] deskgate_provider::AuthError),
    /// A background task failed.
    #[error("internal task failed")]
    Task(#[from] tokio::task::JoinError),
}

/// What the client is told about a failure.
#[derive(Debug, Clone, Copy)]
struct Failure {
    status: StatusCode,
    title: &'static str,
    text: &'static str,
    /// What failed, for `deskgate_errors_total` (5xx only).
    source: &'static str,
}

impl GatewayError {
    fn failure(&self) -> Failure {
        let (status, title, text) = match self {
            GatewayError::Upstream(ProxyError::ClientBody(BodyFault::Malformed)) => (
                StatusCode::BAD_REQUEST,
                "The request is malformed",
                "The body of the request is not valid HTTP.",
            ),
            GatewayError::Upstream(ProxyError::ClientBody(BodyFault::TooLarge)) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "The request is too large",
                "What was sent is larger than this gateway accepts.",
            ),
            GatewayError::Upstream(ProxyError::Timeout) => (
                StatusCode::GATEWAY_TIMEOUT,
                "The application did not answer in time",
                "The service behind this gateway took too long to answer. Please try again.",
            ),
            GatewayError::Upstream(_) => (
                StatusCode::BAD_GATEWAY,
                "The application is unavailable",
                "The service behind this gateway could not be reached. Please try again shortly.",
            ),
            GatewayError::Accounts(e) if unreachable(e) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "Accounts are unavailable",
                "The account database cannot be reached. Please try again shortly.",
            ),
            GatewayError::SessionStore(StoreError::Full(_)) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "Too busy",
                "Too many sign-ins are in progress right now. Please try again in a few minutes.",
            ),
            GatewayError::SessionStore(_) | GatewayError::IdentitySource(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "Sign-in is unavailable",
                "A service needed to check who you are is unavailable. Please try again shortly.",
            ),
            GatewayError::Accounts(_) | GatewayError::Task(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                "The gateway could not complete your request. Please try again.",
            ),
        };
        let source = match self {
            GatewayError::Upstream(_) => "upstream",
            GatewayError::SessionStore(_) => "session_store",
            GatewayError::Accounts(_) => "account_store",
            GatewayError::IdentitySource(_) => "provider",
            _ => "internal",
        };
        Failure { status, title, text, source }
    }
}

/// Whether an account store failure is the database being out of reach (a 503: try again
/// later) rather than a failure of the request itself.
fn unreachable(error: &AccountError) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = cause {
        if let Some(sql) = e.downcast_ref::<sqlx::Error>() {
            return matches!(
                sql,
                sqlx::Error::Io(_)
                    | sqlx::Error::Tls(_)
                    | sqlx::Error::PoolTimedOut
                    | sqlx::Error::PoolClosed
            );
        }
        cause = e.source();
    }
    false
}

impl IntoResponse for GatewayError {
    fn into_response(self) -> Response {
        let failure = self.failure();
        // A full store is a limit, not a fault: the store's notice logs it once a minute.
        if matches!(self, GatewayError::SessionStore(StoreError::Full(_))) {
            let mut resp = failure.status.into_response();
            resp.extensions_mut().insert(failure);
            return resp;
        }
        let cause = deskgate_provider::error_chain(&self);
        if failure.status.is_client_error() {
            tracing::info!(status = failure.status.as_u16(), %cause, "Refused a client's faulty request");
        } else {
            tracing::error!(status = failure.status.as_u16(), %cause, "Request failed");
        }
        let mut resp = failure.status.into_response();
        resp.extensions_mut().insert(failure);
        resp
    }
}

/// Renders marked failures with the request id; passes everything else through.
pub async fn rescue(State(metrics): State<Arc<Metrics>>, req: Request, next: Next) -> Response {
    let id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("-").to_owned();
    let html = wants_html(req.headers());
    render(&metrics, &id, html, next.run(req).await)
}

/// The answer to a request with id `id` (whose client `html` wants a page) for what the
/// handlers answered: a marked failure becomes its page or JSON, a body limit's bare 413
/// too; everything else is answered as it is.
pub fn render(metrics: &Metrics, id: &str, html: bool, mut resp: Response) -> Response {
    // Body limits (the layer's, and axum's extractors') answer 413 with a bare or plain-text
    // body; give it the same clear page as every other failure.
    if resp.status() == StatusCode::PAYLOAD_TOO_LARGE {
        resp.extensions_mut().insert(Failure {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            title: "The request is too large",
            text: "What was sent is larger than this gateway accepts.",
            source: "client",
        });
    }
    let Some(f) = resp.extensions_mut().remove::<Failure>() else {
        return resp;
    };
    if f.status.is_server_error() {
        metrics.error(f.source);
    }
    if html {
        let body = format!(
            "<p>{}</p><p class=\"muted\">Request id: <code>{}</code></p>",
            html::esc(f.text),
            html::esc(id)
        );
        html::page(f.status, f.title, &body)
    } else {
        let mut r =
            (f.status, serde_json::json!({"error": f.title, "request_id": id}).to_string()).into_response();
        r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        r
    }
}

/// Answers a panic like any other internal failure; the panic message stays in the log.
pub fn panic_response(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let detail = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_default();
    tracing::error!(panic = %detail, "Request handler panicked");
    html::message(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong",
        "The gateway could not complete your request.",
        None,
    )
}
