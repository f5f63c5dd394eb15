//! An example helpdesk portal that runs behind deskgate.
//!
//! It trusts deskgate's identity contract: plain `X-Deskgate-*` headers describe the visitor,
//! and for signed-in people a signed JWT proves those headers. The portal believes a
//! signed-in identity only when the JWT verifies against deskgate's JWKS and agrees with the
//! headers; anything else is shown as a guest with a visible warning.

mod api;
mod chat;
mod clock;
mod content;
mod error;
mod html;
mod identity;
mod jwt;
mod pages;

use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use tokio::net::TcpListener;

use crate::clock::{Clock, SystemClock};
use crate::content::CommentStore;
use crate::identity::HeaderNames;
use crate::jwt::Verifier;

/// How the helpdesk finds and checks deskgate's identity.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where deskgate publishes its signing keys, e.g. `http://127.0.0.1:8080/.deskgate/jwks.json`.
    pub jwks_url: String,
    /// Prefix of the identity headers, `X-Deskgate-` unless deskgate is configured otherwise.
    pub header_prefix: String,
    /// The `iss` the JWT must carry (deskgate's public URL); not checked when `None`.
    pub issuer: Option<String>,
    /// The `aud` the JWT must carry; not checked when `None`.
    pub audience: Option<String>,
}

impl Settings {
    /// Settings for deskgate's defaults: prefix `X-Deskgate-`, audience `deskgate`, any issuer.
    pub fn new(jwks_url: impl Into<String>) -> Self {
        Self {
            jwks_url: jwks_url.into(),
            header_prefix: "X-Deskgate-".to_owned(),
            issuer: None,
            audience: Some("deskgate".to_owned()),
        }
    }
}

/// What every handler shares: how to read identity, and the comments posted so far.
#[derive(Clone)]
pub(crate) struct AppState {
    shared: Arc<Shared>,
}

struct Shared {
    headers: HeaderNames,
    verifier: Verifier,
    comments: CommentStore,
}

impl AppState {
    fn new(settings: Settings, clock: Arc<dyn Clock>) -> Self {
        let headers = HeaderNames::new(&settings.header_prefix);
        let verifier = Verifier::new(settings, clock);
        Self { shared: Arc::new(Shared { headers, verifier, comments: CommentStore::default() }) }
    }

    pub(crate) fn headers(&self) -> &HeaderNames {
        &self.shared.headers
    }

    pub(crate) fn verifier(&self) -> &Verifier {
        &self.shared.verifier
    }

    pub(crate) fn comments(&self) -> &CommentStore {
        &self.shared.comments
    }
}

/// The whole portal as an axum router.
pub fn router(settings: Settings) -> Router {
    let state = AppState::new(settings, Arc::new(SystemClock));
    Router::new()
        .route("/", get(pages::home))
        .route("/kb", get(pages::knowledgebase))
        .route("/kb/advanced", get(pages::advanced))
        .route("/kb/articles/{id}", get(pages::article).post(pages::post_comment))
        .route("/news", get(pages::news))
        .route("/chat/sales", get(chat::sales_page))
        .route("/chat/sales/ws", get(chat::sales_socket))
        .route("/chat/support", get(chat::support_page))
        .route("/chat/support/ws", get(chat::support_socket))
        .route("/api/tickets", get(api::tickets))
        .route("/whoami", get(api::whoami))
        .fallback(pages::not_found)
        .with_state(state)
}

/// Serves the portal on `listener` until the server fails.
pub async fn serve(listener: TcpListener, settings: Settings) -> std::io::Result<()> {
    axum::serve(listener, router(settings)).await
}
