//! The one source of time for sessions, tokens and counters, so tests move time instead of
//! sleeping through it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch, from the system or from a hand-moved test clock.
#[derive(Debug, Clone, Default)]
pub struct Clock(Option<Arc<AtomicU64>>);

impl Clock {
    /// The system clock.
    pub fn system() -> Clock {
        Clock(None)
    }

    /// A clock that stands still at `start` until [`Clock::advance`] moves it.
    pub fn manual(start: u64) -> Clock {
        Clock(Some(Arc::new(AtomicU64::new(start))))
    }

    /// Now, in whole seconds.
    pub fn now(&self) -> u64 {
        match &self.0 {
            Some(t) => t.load(Ordering::Relaxed),
            None => SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()),
        }
    }

    /// Moves a manual clock forward; the system clock ignores it.
    pub fn advance(&self, secs: u64) {
        if let Some(t) = &self.0 {
            t.fetch_add(secs, Ordering::Relaxed);
        }
    }
}
