//! The bounds on what requests from nobody signed in may make the gateway do: sign-in
//! attempts (counted per address, per account and address, and per account), sign-ups and
//! validation mails. A bound that is reached is logged at most once a minute, through the
//! state's [`crate::logging::Notices`].
//!
//! Counting reserves first: a hit is added to its counter before the work it guards, and the
//! count that comes back decides. However many requests arrive at once, at most the limit
//! of them get past the counter (the store adds atomically); a hit that turns out not to
//! count (a right password, a provider that did not answer) is taken back.

use std::net::IpAddr;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use crate::accounts::{AccountQuery, AccountStatus, AccountStore};
use crate::config::{RateLimit, Registration};
use crate::error::GatewayError;
use crate::session::{SessionStore, StoreError};
use crate::state::AppState;

/// Why a request was refused by a limit, and what the client is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// This client (address, or account from this address) is over its limit: 429.
    Client,
    /// Everyone together is over the limit: 503.
    Everyone,
}

impl Refused {
    /// The status the client gets.
    pub fn status(self) -> http::StatusCode {
        match self {
            Refused::Client => http::StatusCode::TOO_MANY_REQUESTS,
            Refused::Everyone => http::StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

/// The part of a client address that is counted: an IPv4 address, or an IPv6 address's /64
/// (one subscriber's usual share, which a single client can fill with addresses at will).
pub fn counted_address(addr: IpAddr) -> String {
    match addr {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

/// A login name's counter key: a hash, so that neither the store nor its keys hold the names
/// people typed (which may be passwords typed into the wrong field).
fn name_hash(login: &str) -> String {
    let digest = Sha256::digest(login.as_bytes());
    URL_SAFE_NO_PAD.encode(&digest[..18])
}

/// The delay before answering a sign-in to an account that has had `failures` failures in
/// the window: none up to `per_account`, then 0.5 s doubling with each failure, never more
/// than `max_delay`.
pub fn delay_for(rl: &RateLimit, failures: u64) -> Duration {
    let Some(over) = failures.checked_sub(u64::from(rl.per_account)) else {
        return Duration::ZERO;
    };
    let doubled = Duration::from_millis(500).saturating_mul(1u32 << over.min(16));
    doubled.min(rl.max_delay)
}

/// A sign-in attempt that got past the limits; say how it ended.
#[derive(Debug)]
#[must_use = "an attempt must be settled: failed, succeeded or abandoned"]
pub struct Attempt {
    address: String,
    pair: String,
    account: String,
}

/// Reserves a sign-in attempt for `login` from `addr`: refused (and nothing kept for the
/// account) when the address is over its limit, refused when this account from this address
/// is; otherwise waits the account's delay (see [`delay_for`]) and lets it through.
pub async fn sign_in(
    state: &AppState,
    login: &str,
    addr: IpAddr,
) -> Result<Result<Attempt, Refused>, GatewayError> {
    let rl = state.config.rate_limit;
    let window = rl.window.as_secs();
    let now = state.clock.now();
    let name = name_hash(login);
    let addr = counted_address(addr);
    let attempt = Attempt {
        address: format!("rl:addr:{addr}"),
        pair: format!("rl:pair:{name}:{addr}"),
        account: format!("rl:acct:{name}"),
    };
    if state.sessions.incr(&attempt.address, window).await? > u64::from(rl.per_address) {
        state.notices.sign_in.hit(now, "an address is over rate_limit.per_address");
        return Ok(Err(Refused::Client));
    }
    if state.sessions.incr(&attempt.pair, window).await? > u64::from(rl.per_account_and_address) {
        state
            .notices
            .sign_in
            .hit(now, "an account from one address is over rate_limit.per_account_and_address");
        return Ok(Err(Refused::Client));
    }
    let delay = delay_for(&rl, state.sessions.count(&attempt.account).await?);
    if !delay.is_zero() {
        state.clock.pause(delay).await;
    }
    Ok(Ok(attempt))
}

impl Attempt {
    /// The credentials were wrong: the reservations stand, and the account counts one more
    /// failure (which only slows its next sign-ins down).
    pub async fn failed(self, state: &AppState) -> Result<(), GatewayError> {
        match state.sessions.incr(&self.account, state.config.rate_limit.window.as_secs()).await {
            // At the memory store's bound the failure still stands per address; the account
            // is only not slowed down further.
            Ok(_) | Err(StoreError::Full(_)) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// The right credentials: this address's count for the account is cleared and the
    /// address's hit taken back. The account's own count stays: it is what slows down
    /// someone guessing from many addresses, whom the owner's sign-in must not help.
    pub async fn succeeded(self, state: &AppState) -> Result<(), GatewayError> {
        state.sessions.reset(&self.pair).await?;
        state.sessions.release(&self.address).await?;
        Ok(())
    }

    /// No verdict (the provider was unavailable or busy): both hits are taken back.
    pub async fn abandoned(self, state: &AppState) -> Result<(), GatewayError> {
        state.sessions.release(&self.pair).await?;
        state.sessions.release(&self.address).await?;
        Ok(())
    }
}

/// Reserves a sign-up from `addr`: refused per address (429), then when everyone together is
/// over the window's total or too many sign-ups are waiting for validation or approval
/// (503). With email validation the sign-up's mail is reserved here too, so that an account
/// is only made when its mail may be sent.
pub async fn sign_up(state: &AppState, addr: IpAddr) -> Result<Result<(), Refused>, GatewayError> {
    let l = state.config.limits;
    let window = l.sign_up_window.as_secs();
    let now = state.clock.now();
    let counted = counted_address(addr);
    if state.sessions.incr(&format!("su:addr:{counted}"), window).await? > u64::from(l.sign_ups_per_address) {
        state.notices.sign_up.hit(now, "an address is over limits.sign_ups_per_address");
        return Ok(Err(Refused::Client));
    }
    if state.sessions.incr("su:all", window).await? > u64::from(l.sign_ups_total) {
        state.notices.sign_up.hit(now, "limits.sign_ups_total reached");
        return Ok(Err(Refused::Everyone));
    }
    let waiting = match &state.config.registration {
        Registration::EmailValidation(_) => Some(AccountStatus::PendingValidation),
        Registration::Approval => Some(AccountStatus::PendingApproval),
        Registration::Open | Registration::Disabled => None,
    };
    if let Some(status) = waiting {
        let query = AccountQuery { status: Some(status), ..AccountQuery::default() };
        if state.accounts.list(&query, 0, 1).await?.total >= l.pending_sign_ups {
            state.notices.sign_up.hit(now, "limits.pending_sign_ups reached");
            return Ok(Err(Refused::Everyone));
        }
    }
    if matches!(state.config.registration, Registration::EmailValidation(_)) {
        return mail(state, addr).await;
    }
    Ok(Ok(()))
}

/// Reserves a validation mail to be sent at the request of `addr`.
pub async fn mail(state: &AppState, addr: IpAddr) -> Result<Result<(), Refused>, GatewayError> {
    let l = state.config.limits;
    let window = l.sign_up_window.as_secs();
    let now = state.clock.now();
    let addr = counted_address(addr);
    if state.sessions.incr(&format!("mail:addr:{addr}"), window).await?
        > u64::from(l.validation_mails_per_address)
    {
        state.notices.mail.hit(now, "an address is over limits.validation_mails_per_address");
        return Ok(Err(Refused::Client));
    }
    if state.sessions.incr("mail:all", window).await? > u64::from(l.validation_mails_total) {
        state.notices.mail.hit(now, "limits.validation_mails_total reached");
        return Ok(Err(Refused::Everyone));
    }
    Ok(Ok(()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests fail loudly on purpose")]
mod tests {
    use super::*;

    fn rl(per_account: u32, max_delay_secs: u64) -> RateLimit {
        RateLimit {
            window: Duration::from_secs(900),
            per_account,
            per_address: 20,
            per_account_and_address: 5,
            max_delay: Duration::from_secs(max_delay_secs),
        }
    }

    #[test]
    fn the_account_delay_starts_at_the_limit_grows_and_is_bounded() {
        let rl = rl(5, 10);
        assert_eq!(delay_for(&rl, 0), Duration::ZERO);
        assert_eq!(delay_for(&rl, 4), Duration::ZERO);
        assert_eq!(delay_for(&rl, 5), Duration::from_millis(500));
        assert_eq!(delay_for(&rl, 6), Duration::from_secs(1));
        assert_eq!(delay_for(&rl, 8), Duration::from_secs(4));
        assert_eq!(delay_for(&rl, 10), Duration::from_secs(10));
        assert_eq!(delay_for(&rl, u64::MAX), Duration::from_secs(10), "no overflow, still bounded");
    }

    #[test]
    fn ipv6_addresses_count_by_their_64_and_mapped_ipv4_as_ipv4() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff:ffff:ffff:ffff".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(counted_address(a), counted_address(b), "one /64, one client");
        assert_ne!(counted_address(a), counted_address(c));
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        assert_eq!(counted_address(mapped), "192.0.2.1");
        assert_eq!(counted_address("192.0.2.1".parse().unwrap()), "192.0.2.1");
    }
}
