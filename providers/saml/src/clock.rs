//! Where "now" comes from, so that assertion lifetimes can be tested without waiting.

use std::fmt::Debug;
use std::time::SystemTime;

/// A source of the current time.
pub trait Clock: Send + Sync + Debug {
    /// The current wall-clock time.
    fn now(&self) -> SystemTime;
}

/// The system's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}
