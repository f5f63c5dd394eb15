//! Who is asking: the session lookup layer and the [`Visitor`] it leaves on the request.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http::request::Parts;

use crate::accounts::AccountStore;
use crate::bearer::Outcome;
use crate::error::GatewayError;
use crate::forwarded;
use crate::session::{Session, SessionKey, SessionStore};
use crate::signin::deadline;
use crate::state::AppState;
use crate::usergroups::Member;
use crate::web::{self, AUTHZ, PREFIX};

mod recheck;

/// The person behind a request.
#[derive(Debug, Clone)]
pub enum Visitor {
    /// Not signed in.
    Guest,
    /// Signed in.
    SignedIn {
        /// The session's store key.
        key: SessionKey,
        /// The session.
        session: Arc<Session>,
    },
    /// Acting as an account for this one request through a bearer token (see
    /// [`crate::bearer`]): a session resolved as a sign-in's would be, never stored.
    Bearer {
        /// The session the token stands for.
        session: Arc<Session>,
    },
}

impl Visitor {
    /// How the request came, as `X-Deskgate-Auth` says: `session` (a cookie), `token` (an API
    /// token), `bearer` (a provider's token); `""` for a guest.
    pub fn auth(&self) -> &'static str {
        match self {
            Visitor::Guest => "",
            Visitor::SignedIn { .. } => "session",
            Visitor::Bearer { session } if session.by_token() => "token",
            Visitor::Bearer { .. } => "bearer",
        }
    }

    /// The session behind the request, when someone is signed in or sent a bearer token.
    pub fn session(&self) -> Option<&Arc<Session>> {
        match self {
            Visitor::Guest => None,
            Visitor::SignedIn { session, .. } | Visitor::Bearer { session } => Some(session),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Visitor {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        // Without the lookup layer nobody is signed in: the least privilege.
        Ok(parts.extensions.get::<Visitor>().cloned().unwrap_or(Visitor::Guest))
    }
}

/// Looks up the session cookie and leaves a [`Visitor`] on the request.
pub async fn lookup(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Result<Response, GatewayError> {
    match visit(&state, &mut req).await? {
        Ok(visitor) => {
            req.extensions_mut().insert(visitor);
            Ok(next.run(req).await)
        }
        Err(refused) => Ok(refused),
    }
}

/// Who is behind `req`: its bearer token's account, where tokens are read, else its session
/// cookie's; or the answer to a refused token. Takes the token headers off the request.
pub async fn visit(state: &AppState, req: &mut Request) -> Result<Result<Visitor, Response>, GatewayError> {
    // A forward-auth question from a peer that may not ask is refused by its endpoint: it
    // reads no session (the endpoint sees a guest).
    if untrusted_question(state, req) {
        return Ok(Ok(Visitor::Guest));
    }
    // A bearer token, where tokens are read, speaks for the request whatever the cookie says.
    // Most requests carry no `Authorization` at all: nothing to read, no client to work out.
    let token = if req.headers().contains_key(http::header::AUTHORIZATION)
        && crate::bearer::applies(req.uri().path())
    {
        let peer = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|ConnectInfo(p)| p.ip());
        let peer = peer.unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
        let client = crate::forwarded::client_addr(peer, req.headers(), &state.config.server.trusted_proxies);
        crate::bearer::authenticate(state, req.headers_mut(), client).await?
    } else {
        Outcome::Absent
    };
    Ok(match token {
        Outcome::Accepted(session) => Ok(Visitor::Bearer { session }),
        Outcome::Refused(resp) => Err(resp),
        Outcome::Absent => match web::cookie(req.headers(), &state.config.session.cookie_name) {
            None => Ok(Visitor::Guest),
            Some(value) => Ok(find(state, SessionKey::from_cookie(value)).await?),
        },
    })
}

/// Whether `req` asks a forward-auth endpoint from a peer that is not a trusted proxy. The
/// session lookup skips such a question, so it costs no store read: the endpoint refuses it
/// whoever the cookie names.
fn untrusted_question(state: &AppState, req: &Request) -> bool {
    let under = req.uri().path().strip_prefix(PREFIX).and_then(|p| p.strip_prefix(AUTHZ));
    under.is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        && req.extensions().get::<ConnectInfo<SocketAddr>>().is_some_and(|ConnectInfo(peer)| {
            !forwarded::trusted(peer.ip(), &state.config.server.trusted_proxies)
        })
}

async fn find(state: &AppState, key: SessionKey) -> Result<Visitor, GatewayError> {
    let Some((session, epoch)) = state.sessions.get_with_epoch(&key).await? else {
        return Ok(Visitor::Guest);
    };
    let now = state.clock.now();
    let cfg = &state.config.session;
    let expired = now >= session.created_at + cfg.absolute_timeout.as_secs()
        || now >= session.last_seen + cfg.idle_timeout.as_secs();
    if expired {
        state.sessions.delete(&key).await?;
        return Ok(Visitor::Guest);
    }
    let session = if recheck::due(state, &session, now) {
        match recheck::run(state, &key, session, epoch, now).await? {
            Some(s) => s,
            None => return Ok(Visitor::Guest),
        }
    } else {
        session
    };
    let session = if session.generation != state.generation || session.epoch != epoch {
        match refresh(state, &key, &session, epoch, now).await? {
            Some(s) => s,
            None => return Ok(Visitor::Guest),
        }
    } else if now >= session.last_seen + 60 {
        // last_seen moves in whole minutes: one store write per minute per session.
        let touched = session.touched(now);
        state.sessions.put(&key, touched, deadline(state, session.created_at, now)).await?
    } else {
        session
    };
    Ok(Visitor::SignedIn { key, session })
}

/// Re-resolves a session made under another config generation or epoch (the account's, or
/// the shared one that moves when an organization changes); ends it
/// when the account is gone or disabled, its provider sign-in was unlinked, or its password
/// was reset. `epoch` was read before the account is, so a change
/// that lands between the two reads moves the epoch again and is picked up next time.
pub(super) async fn refresh(
    state: &AppState,
    key: &SessionKey,
    old: &Session,
    epoch: u64,
    now: u64,
) -> Result<Option<Arc<Session>>, GatewayError> {
    let account = state.accounts.by_id(&old.account_id).await?;
    let Some(account) = account.filter(|a| !a.disabled) else {
        state.sessions.delete(key).await?;
        tracing::info!(account = %old.account_id, "Session ended: the account is disabled or gone");
        return Ok(None);
    };
    // A provider sign-in an administrator unlinked no longer leads to the account.
    if old.provider != deskgate_builtin::PROVIDER_ID
        && !state.accounts.providers(&account.id).await?.contains(&old.provider)
    {
        state.sessions.delete(key).await?;
        tracing::info!(account = %old.account_id, provider = %old.provider, "Session ended: its sign-in was unlinked");
        return Ok(None);
    }
    // A password reset ends every session signed in before it.
    if state.accounts.password_serial(&account.id).await? != old.password_serial {
        state.sessions.delete(key).await?;
        tracing::info!(account = %old.account_id, "Session ended: the password was reset");
        return Ok(None);
    }
    let mut fresh = old.touched(now);
    fresh.name = account.name.clone();
    // An account with no address forwards the one its provider gave at sign-in, unverified
    // (and an account that lost its address to a verified claim forwards none).
    if account.email.is_some() {
        fresh.email = account.email.clone();
        fresh.email_verified = account.email_verified;
    } else {
        fresh.email = old.provider_email.clone();
        fresh.email_verified = false;
    }
    fresh.epoch = epoch;
    let model = state.model().await?;
    fresh.resolved = state.interner.intern(model.resolve(&Member {
        email: account.email.as_deref(),
        email_verified: account.email_verified,
        assigned: &account.usergroups,
        provider: &old.provider_usergroups,
        organizations: &model.organizations_named(&old.provider_organizations),
    }));
    fresh.assigned_usergroups = account.usergroups;
    fresh.generation = state.generation;
    Ok(Some(state.sessions.put(key, fresh, deadline(state, old.created_at, now)).await?))
}
