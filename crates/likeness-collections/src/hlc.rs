//! Hybrid logical clocks: every mutation is stamped so replicas agree on "last writer".
//!
//! A stamp orders by wall-clock milliseconds, then a counter (many events in one ms, or a
//! clock that went backwards), then the replica id, so no two replicas ever produce equal
//! stamps. The engine never reads a clock itself: the host passes a [`Clock`] (the browser
//! adapter uses `Date.now()`, native code the system clock).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Identifies one device's copy of the collections.
pub type ReplicaId = u64;

/// A hybrid logical clock stamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default)]
pub struct Hlc {
    pub millis: u64,
    pub counter: u32,
    pub replica: ReplicaId,
}

/// Wall-clock source in milliseconds since the Unix epoch.
pub trait Clock: Send + Sync {
    fn now_millis(&self) -> u64;
}

/// The system clock (native only: wasm32-unknown-unknown has no clock of its own).
#[cfg(not(target_arch = "wasm32"))]
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

#[cfg(not(target_arch = "wasm32"))]
impl Clock for SystemClock {
    fn now_millis(&self) -> u64 {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
    }
}

/// A clock that returns a fixed time, advanced by hand (tests, replays).
#[derive(Debug, Clone, Default)]
pub struct ManualClock(pub std::sync::Arc<std::sync::atomic::AtomicU64>);

impl ManualClock {
    pub fn new(ms: u64) -> Self {
        ManualClock(std::sync::Arc::new(std::sync::atomic::AtomicU64::new(ms)))
    }
    pub fn set(&self, ms: u64) {
        self.0.store(ms, std::sync::atomic::Ordering::SeqCst)
    }
}

impl Clock for ManualClock {
    fn now_millis(&self) -> u64 {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// How far past the local clock a stamp from elsewhere may be: 10 minutes.
///
/// A stamp from the future pins every replica that observes it (later local writes must sort
/// after it), and a collection delete stamped in 2099 would hide every write made before 2099.
/// Change sets holding a stamp further ahead than this are refused whole
/// ([`ClockError::TooFarAhead`]); they are accepted once the local clock catches up, so a
/// device whose clock is a little fast only waits.
pub const MAX_CLOCK_DRIFT_MS: u64 = 10 * 60 * 1000;

/// A stamp the clock cannot take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ClockError {
    #[error("a stamp is {ahead_ms} ms ahead of this device's clock; at most {MAX_CLOCK_DRIFT_MS} ms is accepted")]
    TooFarAhead { ahead_ms: u64 },
    #[error("the clock cannot advance past its largest value")]
    Exhausted,
}

/// Whether `stamp` is within [`MAX_CLOCK_DRIFT_MS`] of `now_millis` (never in the far future).
pub fn check_drift(stamp: Hlc, now_millis: u64) -> Result<(), ClockError> {
    let limit = now_millis.saturating_add(MAX_CLOCK_DRIFT_MS);
    if stamp.millis > limit {
        return Err(ClockError::TooFarAhead { ahead_ms: stamp.millis - now_millis });
    }
    Ok(())
}

/// Issues strictly increasing stamps for one replica.
#[derive(Debug, Clone)]
pub struct HlcGenerator {
    last: Hlc,
}

impl HlcGenerator {
    pub fn new(replica: ReplicaId) -> Self {
        HlcGenerator { last: Hlc { millis: 0, counter: 0, replica } }
    }

    pub fn replica(&self) -> ReplicaId {
        self.last.replica
    }

    /// A new stamp greater than every stamp issued or observed so far. Fails (and changes
    /// nothing) only when no greater stamp exists.
    pub fn tick(&mut self, now_millis: u64) -> Result<Hlc, ClockError> {
        let mut next = self.last;
        if now_millis > next.millis {
            next.millis = now_millis;
            next.counter = 0;
        } else if let Some(c) = next.counter.checked_add(1) {
            next.counter = c;
        } else {
            next.millis = next.millis.checked_add(1).ok_or(ClockError::Exhausted)?;
            next.counter = 0;
        }
        self.last = next;
        Ok(next)
    }

    /// Take note of a stamp from elsewhere, so later local stamps sort after it. Callers
    /// check foreign stamps with [`check_drift`] first.
    pub fn observe(&mut self, seen: Hlc) {
        if (seen.millis, seen.counter) > (self.last.millis, self.last.counter) {
            self.last.millis = seen.millis;
            self.last.counter = seen.counter;
        }
    }
}

/// The newest stamp seen from each replica: "everything up to here" for deltas.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct VersionVector(pub BTreeMap<ReplicaId, Hlc>);

impl VersionVector {
    pub fn observe(&mut self, stamp: Hlc) {
        let e = self.0.entry(stamp.replica).or_insert(stamp);
        if stamp > *e {
            *e = stamp;
        }
    }

    /// Whether this vector already covers `stamp`.
    pub fn covers(&self, stamp: Hlc) -> bool {
        self.0.get(&stamp.replica).is_some_and(|s| *s >= stamp)
    }

    pub fn merge(&mut self, other: &VersionVector) {
        for s in other.0.values() {
            self.observe(*s);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_increase_even_when_the_clock_goes_back() {
        let mut g = HlcGenerator::new(7);
        let a = g.tick(1000).unwrap();
        let b = g.tick(1000).unwrap();
        let c = g.tick(500).unwrap();
        assert!(a < b && b < c);
        g.observe(Hlc { millis: 5000, counter: 3, replica: 9 });
        assert!(g.tick(10).unwrap() > Hlc { millis: 5000, counter: 3, replica: 9 });
    }

    #[test]
    fn the_clock_never_wraps() {
        let mut g = HlcGenerator::new(1);
        g.observe(Hlc { millis: u64::MAX, counter: u32::MAX - 1, replica: 2 });
        let last = g.tick(0).unwrap();
        assert_eq!((last.millis, last.counter), (u64::MAX, u32::MAX));
        assert_eq!(g.tick(0), Err(ClockError::Exhausted));
        assert_eq!(g.tick(5), Err(ClockError::Exhausted), "a failed tick changes nothing");
    }

    #[test]
    fn drift_past_the_limit_is_refused() {
        let now = 1_000_000;
        let at = |millis| Hlc { millis, counter: 0, replica: 1 };
        assert!(check_drift(at(now + MAX_CLOCK_DRIFT_MS), now).is_ok());
        assert!(check_drift(at(0), now).is_ok());
        assert_eq!(
            check_drift(at(now + MAX_CLOCK_DRIFT_MS + 1), now),
            Err(ClockError::TooFarAhead { ahead_ms: MAX_CLOCK_DRIFT_MS + 1 })
        );
        assert!(check_drift(at(u64::MAX), u64::MAX - 5).is_ok());
        assert!(check_drift(at(u64::MAX), now).is_err());
    }
}
