//! The ordered list of directory servers: which to try next, which are skipped because
//! they recently refused or timed out, and how a connection to one is opened.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ldap3::{LdapConnAsync, LdapConnSettings, LdapError};

/// Where "now" comes from, so that skipping a down server can be tested without sleeping.
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current instant.
    fn now(&self) -> Instant;
}

/// The real monotonic clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// Which servers are currently skipped, and until when.
#[derive(Debug, Clone)]
pub(crate) struct Health {
    down_until: Vec<Option<Instant>>,
    retry_after: Duration,
}

impl Health {
    pub(crate) fn new(servers: usize, retry_after: Duration) -> Self {
        Health { down_until: vec![None; servers], retry_after }
    }

    /// Whether server `i` is being skipped at `now`.
    pub(crate) fn is_down(&self, i: usize, now: Instant) -> bool {
        self.down_until.get(i).copied().flatten().is_some_and(|until| now < until)
    }

    /// The servers to try, best first: those not skipped, in configured order. When every
    /// server is skipped, all of them in configured order, because refusing to try at all
    /// would only lengthen an outage.
    pub(crate) fn order(&self, now: Instant) -> Vec<usize> {
        let up: Vec<usize> = (0..self.down_until.len()).filter(|&i| !self.is_down(i, now)).collect();
        if up.is_empty() { (0..self.down_until.len()).collect() } else { up }
    }

    /// Skips server `i` for `retry_after` from `now`.
    pub(crate) fn mark_down(&mut self, i: usize, now: Instant) {
        if let Some(slot) = self.down_until.get_mut(i) {
            *slot = now.checked_add(self.retry_after);
        }
    }

    /// Server `i` answered: stop skipping it.
    pub(crate) fn mark_up(&mut self, i: usize) {
        if let Some(slot) = self.down_until.get_mut(i) {
            *slot = None;
        }
    }

    /// Whether a server configured before `current` is worth trying again, so that a
    /// connection that failed over returns to the preferred server once it is back.
    pub(crate) fn preferred_available(&self, current: usize, now: Instant) -> bool {
        (0..current).any(|i| !self.is_down(i, now))
    }
}

/// How connections are opened: TLS settings and the connect timeout.
#[derive(Clone)]
pub(crate) struct Connector {
    pub(crate) starttls: bool,
    pub(crate) tls: Option<Arc<rustls::ClientConfig>>,
    pub(crate) connect_timeout: Duration,
}

impl fmt::Debug for Connector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connector")
            .field("starttls", &self.starttls)
            .field("custom_ca", &self.tls.is_some())
            .field("connect_timeout", &self.connect_timeout)
            .finish()
    }
}

impl Connector {
    /// Opens a connection to `url` and drives it on the runtime. The returned handle is
    /// cloneable; the connection closes when the last clone is dropped.
    pub(crate) async fn open(&self, url: &str) -> Result<ldap3::Ldap, LdapError> {
        let mut settings =
            LdapConnSettings::new().set_conn_timeout(self.connect_timeout).set_starttls(self.starttls);
        if let Some(tls) = &self.tls {
            settings = settings.set_config(Arc::clone(tls));
        }
        let (conn, ldap) = LdapConnAsync::with_settings(settings, url).await?;
        let url = url.to_owned();
        tokio::spawn(async move {
            if let Err(error) = conn.drive().await {
                tracing::debug!(server = %url, %error, "Directory connection ended");
            }
        });
        Ok(ldap)
    }
}

/// Whether an error means the server itself is unreachable or failing (so the next
/// server should be tried) rather than an answer to the request.
pub(crate) fn is_server_failure(error: &LdapError) -> bool {
    match error {
        LdapError::LdapResult { result } => is_unavailable_code(result.rc),
        _ => true,
    }
}

/// Result codes with which a server says it cannot serve now: busy, unavailable.
pub(crate) fn is_unavailable_code(rc: u32) -> bool {
    matches!(rc, 51 | 52)
}

#[cfg(test)]
mod tests {
    use super::*;

    const RETRY: Duration = Duration::from_secs(30);

    #[test]
    fn servers_are_tried_in_configured_order() {
        let health = Health::new(3, RETRY);
        assert_eq!(health.order(Instant::now()), vec![0, 1, 2]);
    }

    #[test]
    fn a_down_server_is_skipped_until_retry_after_has_passed() {
        let t0 = Instant::now();
        let mut health = Health::new(3, RETRY);
        health.mark_down(0, t0);
        assert!(health.is_down(0, t0));
        assert_eq!(health.order(t0), vec![1, 2]);
        assert_eq!(health.order(t0 + Duration::from_secs(29)), vec![1, 2]);
        assert_eq!(health.order(t0 + RETRY), vec![0, 1, 2]);
        assert!(!health.is_down(0, t0 + RETRY));
    }

    #[test]
    fn a_server_that_answers_again_is_used_at_once() {
        let t0 = Instant::now();
        let mut health = Health::new(2, RETRY);
        health.mark_down(0, t0);
        health.mark_up(0);
        assert_eq!(health.order(t0), vec![0, 1]);
    }

    #[test]
    fn when_every_server_is_down_all_are_still_tried() {
        let t0 = Instant::now();
        let mut health = Health::new(2, RETRY);
        health.mark_down(1, t0);
        health.mark_down(0, t0 + Duration::from_secs(1));
        assert_eq!(health.order(t0 + Duration::from_secs(2)), vec![0, 1]);
    }

    #[test]
    fn failback_is_offered_only_once_a_preferred_server_may_be_retried() {
        let t0 = Instant::now();
        let mut health = Health::new(3, RETRY);
        assert!(!health.preferred_available(0, t0));
        health.mark_down(0, t0);
        assert!(!health.preferred_available(1, t0));
        assert!(health.preferred_available(2, t0));
        assert!(health.preferred_available(1, t0 + RETRY));
    }

    #[test]
    fn out_of_range_indices_are_ignored() {
        let t0 = Instant::now();
        let mut health = Health::new(1, RETRY);
        health.mark_down(5, t0);
        health.mark_up(5);
        assert!(!health.is_down(5, t0));
        assert_eq!(health.order(t0), vec![0]);
    }

    #[test]
    fn answers_are_not_server_failures_but_busy_and_unavailable_are() {
        let answer = |rc| LdapError::LdapResult {
            result: ldap3::LdapResult {
                rc,
                matched: String::new(),
                text: String::new(),
                refs: Vec::new(),
                ctrls: Vec::new(),
            },
        };
        assert!(!is_server_failure(&answer(49)));
        assert!(!is_server_failure(&answer(32)));
        assert!(is_server_failure(&answer(51)));
        assert!(is_server_failure(&answer(52)));
        assert!(is_server_failure(&LdapError::EndOfStream));
    }
}
