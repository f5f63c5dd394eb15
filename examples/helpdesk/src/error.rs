//! The refusals a page can answer with, and the one place they become responses.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::html::short_page;

/// Why a page was not served.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PageError {
    /// deskgate normally refuses these first; the portal checks again in case it is reached
    /// some other way or deskgate's rules are looser than the portal's.
    #[error("the permission {0} is needed")]
    Forbidden(&'static str),
    #[error("signing in is needed")]
    SignInRequired,
    #[error("no such page")]
    NotFound,
    #[error("a comment must have between 1 and {max} characters")]
    InvalidComment { max: usize },
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let (status, title) = match &self {
            Self::Forbidden(_) => (StatusCode::FORBIDDEN, "Not permitted"),
            Self::SignInRequired => (StatusCode::UNAUTHORIZED, "Sign in needed"),
            Self::NotFound => (StatusCode::NOT_FOUND, "Not found"),
            Self::InvalidComment { .. } => (StatusCode::BAD_REQUEST, "Comment not accepted"),
        };
        // Every message here is fixed text about the request, never an internal error.
        let message = match &self {
            Self::Forbidden(permission) => {
                format!("You do not have permission to see this page (it needs {permission}).")
            }
            other => format!("Sorry: {other}."),
        };
        (status, short_page(title, &message)).into_response()
    }
}
