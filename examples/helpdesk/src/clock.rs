//! Time, injected so token expiry and the JWKS refetch limit can be tested without sleeping.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// The two clocks token checking needs.
pub(crate) trait Clock: Send + Sync + 'static {
    /// A monotonic instant, for rate-limiting JWKS fetches.
    fn now(&self) -> Instant;
    /// Seconds since the Unix epoch, for `exp`, `nbf` and `iat`.
    fn unix_seconds(&self) -> i64;
}

/// The machine's clocks.
pub(crate) struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn unix_seconds(&self) -> i64 {
        // A clock set before 1970 makes every token look issued in the future: that fails closed.
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX))
    }
}
