//! The state every request handler shares: the running config and the stores, signer,
//! proxy and metrics it was built with.

use std::ops::Deref;
use std::sync::Arc;

use deskgate_builtin::Builtin;

use crate::accounts::{AccountStore, Accounts};
use crate::clock::Clock;
use crate::config::Config;
use crate::error::GatewayError;
use crate::identity::{HeaderNames, HeaderSet};
use crate::jwt::Signer;
use crate::pending::PendingKey;
use crate::proxy::Proxy;
use crate::session::{SessionStore, Sessions};
use crate::usergroups::{Model, Resolved};
use crate::web::Csrf;

/// Everything a request handler needs, cheap to clone.
#[derive(Clone)]
pub struct AppState(pub(crate) Arc<Inner>);

/// The shared state behind [`AppState`].
pub struct Inner {
    /// The running config.
    pub config: Config,
    /// Config generation; sessions resolved under another one are re-resolved.
    pub generation: u64,
    /// Session store.
    pub sessions: Sessions,
    /// Account store.
    pub accounts: Accounts,
    /// Built-in accounts provider.
    pub builtin: Builtin<Accounts>,
    /// JWT signer.
    pub signer: Signer,
    /// Injected header names.
    pub names: HeaderNames,
    /// What guests may do.
    pub guest: Resolved,
    /// Shared resolutions for sessions.
    pub interner: crate::usergroups::Interner,
    /// Headers injected for guests.
    pub guest_headers: HeaderSet,
    /// The identity headers and tokens last told for signed-in sessions.
    pub told: crate::identity::Told,
    /// CSRF tokens.
    pub csrf: Csrf,
    /// Time.
    pub clock: Clock,
    /// The default upstream (`[upstream]`).
    pub proxy: Proxy,
    /// The upstreams `[[routes]]` send requests to, by id.
    pub upstreams: std::collections::BTreeMap<String, Proxy>,
    /// Metrics, kept across reloads.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// The usergroup model with stored organizations, and the shared epoch it was read at.
    pub(crate) model: std::sync::Mutex<Option<(u64, Arc<Model>)>>,
    /// The once-a-minute log lines of the limits.
    pub notices: crate::logging::Notices,
    /// Seals pending OIDC and SAML sign-ins into browser cookies.
    pub pending: PendingKey,
    /// API tokens verified lately on this replica.
    pub tokens: crate::session::TokenCache,
    /// Dropped with this state (a reload replaces it): the background tasks of its
    /// providers see that and end.
    pub(crate) _tasks: tokio::sync::watch::Sender<()>,
}

impl AppState {
    /// The usergroup model people are resolved with: the config's, plus the organizations
    /// administrators keep in the account store. Read again whenever the shared epoch has
    /// moved on, which every change to an organization does after writing it; read before
    /// the organizations, so a change between the two reads is picked up next time.
    pub async fn model(&self) -> Result<Arc<Model>, GatewayError> {
        let epoch = self.sessions.shared_epoch().await?;
        if let Some((seen, model)) = &*self.model.lock().unwrap_or_else(|p| p.into_inner())
            && *seen == epoch
        {
            return Ok(model.clone());
        }
        let stored = self.accounts.organizations().await?;
        let model = Arc::new(self.config.model.with_organizations(stored));
        *self.model.lock().unwrap_or_else(|p| p.into_inner()) = Some((epoch, model.clone()));
        Ok(model)
    }
}

impl Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}
