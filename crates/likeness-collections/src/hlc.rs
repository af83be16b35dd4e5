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
pub trait Clock: Send {
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

    /// A new stamp greater than every stamp issued or observed so far.
    pub fn tick(&mut self, now_millis: u64) -> Hlc {
        if now_millis > self.last.millis {
            self.last.millis = now_millis;
            self.last.counter = 0;
        } else if self.last.counter == u32::MAX {
            self.last.millis += 1;
            self.last.counter = 0;
        } else {
            self.last.counter += 1;
        }
        self.last
    }

    /// Take note of a stamp from elsewhere, so later local stamps sort after it.
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
        let a = g.tick(1000);
        let b = g.tick(1000);
        let c = g.tick(500);
        assert!(a < b && b < c);
        g.observe(Hlc { millis: 5000, counter: 3, replica: 9 });
        assert!(g.tick(10) > Hlc { millis: 5000, counter: 3, replica: 9 });
    }
}
