//! JSON endpoints: the tickets API, and `/whoami` for checking a deskgate setup.

use std::collections::BTreeMap;

use axum::Json;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::identity::{Person, raw_claims};

/// Why an API request was refused.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ApiError {
    #[error("sign-in required")]
    SignInRequired,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match self {
            Self::SignInRequired => StatusCode::UNAUTHORIZED,
        };
        (status, Json(json!({ "error": self.to_string() }))).into_response()
    }
}

/// The signed-in person's tickets. API clients get JSON, never a sign-in page.
pub(crate) async fn tickets(person: Person) -> Result<Json<Value>, ApiError> {
    let user = person.user().ok_or(ApiError::SignInRequired)?;
    let requester = person.email().unwrap_or(user);
    Ok(Json(json!([
        {
            "id": 1042,
            "subject": "Cannot export invoices as PDF",
            "status": "open",
            "requester": requester,
        },
        {
            "id": 1017,
            "subject": "Add a second billing contact",
            "status": "solved",
            "requester": requester,
        },
    ])))
}

/// Everything the portal received and concluded about this request.
pub(crate) async fn whoami(person: Person, headers: HeaderMap) -> Json<Value> {
    Json(json!({
        "guest": person.is_guest(),
        "verified": person.verified.is_some(),
        "user": person.user(),
        "email": person.email(),
        "email_verified": person.email_verified(),
        "name": person.name(),
        "provider": person.provider(),
        "usergroups": person.usergroups,
        "permissions": person.permissions,
        "claims": raw_claims(&person),
        "warning": person.warning,
        "headers": received_headers(&headers),
    }))
}

/// Every header as received, repeated ones joined with ", " as HTTP allows.
fn received_headers(headers: &HeaderMap) -> BTreeMap<String, String> {
    let mut received: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in headers {
        let value = String::from_utf8_lossy(value.as_bytes());
        received
            .entry(name.as_str().to_owned())
            .and_modify(|joined| {
                joined.push_str(", ");
                joined.push_str(&value);
            })
            .or_insert_with(|| value.into_owned());
    }
    received
}
