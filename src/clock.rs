//! The one source of time for sessions, tokens and counters, so tests move time instead of
//! sleeping through it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch, from the system or from a hand-moved test clock.
#[derive(Debug, Clone, Default)]
pub struct Clock(Option<Arc<Manual>>);

/// A test clock's state.
#[derive(Debug, Default)]
struct Manual {
    /// Now, in seconds.
    now: AtomicU64,
    /// Every pause asked for so far, in milliseconds (see [`Clock::pause`]).
    paused_ms: AtomicU64,
    /// The longest single pause asked for, in milliseconds.
    longest_ms: AtomicU64,
}

impl Clock {
    /// The system clock.
    pub fn system() -> Clock {
        Clock(None)
    }

    /// A clock that stands still at `start` until [`Clock::advance`] moves it.
    pub fn manual(start: u64) -> Clock {
        Clock(Some(Arc::new(Manual { now: AtomicU64::new(start), ..Manual::default() })))
    }

    /// Now, in whole seconds.
    pub fn now(&self) -> u64 {
        match &self.0 {
            Some(t) => t.now.load(Ordering::Relaxed),
            None => SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()),
        }
    }

    /// Moves a manual clock forward; the system clock ignores it.
    pub fn advance(&self, secs: u64) {
        if let Some(t) = &self.0 {
            t.now.fetch_add(secs, Ordering::Relaxed);
        }
    }

    /// Waits `d` (the deliberate delay before answering a sign-in, for example). A manual
    /// clock does not wait: it notes the pause for [`Clock::paused`] and returns at once, so
    /// that tests see the delay without sleeping through it.
    pub async fn pause(&self, d: Duration) {
        match &self.0 {
            Some(t) => {
                let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
                t.paused_ms.fetch_add(ms, Ordering::Relaxed);
                t.longest_ms.fetch_max(ms, Ordering::Relaxed);
            }
            None => tokio::time::sleep(d).await,
        }
    }

    /// On a manual clock, the total of every pause so far and the longest single one; zero
    /// on the system clock.
    pub fn paused(&self) -> (Duration, Duration) {
        match &self.0 {
            Some(t) => (
                Duration::from_millis(t.paused_ms.load(Ordering::Relaxed)),
                Duration::from_millis(t.longest_ms.load(Ordering::Relaxed)),
            ),
            None => (Duration::ZERO, Duration::ZERO),
        }
    }
}
