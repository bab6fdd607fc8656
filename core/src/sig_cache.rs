//! A process-wide memory of the signature checks that passed.
//!
//! Whether an ed25519 signature verifies is a pure function of the key,
//! the message and the signature, so a check that passed once passes
//! again, and asking again is wasted work. It was a lot of work: a
//! transaction is checked when it is submitted or gossiped and again in
//! every vertex that carries it, and the simulator runs every node in one
//! process, so each vertex was verified once per node — 50 times in a
//! 50-node run (issue 14).
//!
//! Only passes are remembered. A forged signature is checked in full every
//! time it comes (and costs its sender a ban), so nothing a peer sends can
//! make a bad signature look good. The memory is bounded by
//! [`SIGNATURE_CACHE_ENTRIES`] digests of 32 bytes, the oldest forgotten
//! first: valid signatures anyone can make with a key of their own only
//! push out older entries, which then cost a full check again.
//!
//! Results never depend on what is remembered, so the simulator's traces
//! are the same with the cache warm or cold.

use sha2::{Digest, Sha256};
use std::collections::{BTreeSet, VecDeque};
use std::sync::Mutex;

/// Most checks remembered: about 10 MB at most (a digest in a set and in
/// the eviction queue). A validator at 1,000 tx/s needs a few seconds'
/// worth; a 50-node simulation, one round's vertices.
pub const SIGNATURE_CACHE_ENTRIES: usize = 1 << 17;

/// Checks that passed, oldest first.
#[derive(Debug)]
pub struct SignatureCache {
    capacity: usize,
    known: BTreeSet<[u8; 32]>,
    order: VecDeque<[u8; 32]>,
}

impl SignatureCache {
    /// An empty memory of at most `capacity` checks.
    pub const fn new(capacity: usize) -> Self {
        SignatureCache {
            capacity,
            known: BTreeSet::new(),
            order: VecDeque::new(),
        }
    }

    /// Whether the check named by `digest` passed before.
    pub fn passed(&self, digest: &[u8; 32]) -> bool {
        self.known.contains(digest)
    }

    /// Remembers that the check named by `digest` passed.
    pub fn remember(&mut self, digest: [u8; 32]) {
        if self.capacity == 0 || !self.known.insert(digest) {
            return;
        }
        self.order.push_back(digest);
        while self.order.len() > self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.known.remove(&old);
            }
        }
    }

    /// How many checks it remembers.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// Whether it remembers none.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
}

/// The process's memory.
static CACHE: Mutex<SignatureCache> = Mutex::new(SignatureCache::new(SIGNATURE_CACHE_ENTRIES));

/// What names one check: the hash of the key, the signature and the signed
/// message (domain tag included).
pub fn digest(key: &[u8; 32], signature: &[u8; 64], message: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(key);
    h.update(signature);
    h.update(message);
    h.finalize().into()
}

/// Whether the check named by `digest` passed before in this process.
pub fn passed(digest: &[u8; 32]) -> bool {
    CACHE.lock().is_ok_and(|c| c.passed(digest))
}

/// Remembers that the check named by `digest` passed.
pub fn remember(digest: [u8; 32]) {
    if let Ok(mut c) = CACHE.lock() {
        c.remember(digest);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_memory_keeps_the_newest_checks_within_its_capacity() {
        let mut c = SignatureCache::new(3);
        for i in 0..5u8 {
            c.remember([i; 32]);
        }
        c.remember([4; 32]); // again: no second entry
        assert_eq!(c.len(), 3);
        assert!(!c.passed(&[0; 32]) && !c.passed(&[1; 32]));
        assert!((2..5u8).all(|i| c.passed(&[i; 32])));
        let mut off = SignatureCache::new(0);
        off.remember([1; 32]);
        assert!(off.is_empty());
    }
}
