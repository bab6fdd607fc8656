//! Deterministic random generators.
//!
//! A node draws every random choice (handshake nonces, peer choice, jitter)
//! from a [`NodeRng`], seeded at construction, so a run is a pure function
//! of its inputs, its seed and its key. Nonces must be unpredictable to
//! peers, who see every one of them: the generator is ChaCha20, whose
//! output does not give away its state, keyed by the node's own signature
//! over the driver's seed, so even a peer that knows the seed cannot
//! predict them. [`DetRng`] (SplitMix64) is for the test harness and the
//! simulator's links, where nothing is secret.

use crate::crypto::{hash, Domain, Keypair};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;

/// The node's generator: ChaCha20 keyed by `sign(key, seed)`.
///
/// Before (issue 11) the node used SplitMix64, whose output step is a
/// bijection of its state: one nonce a peer saw gave it the state, and so
/// every later nonce and choice.
#[derive(Clone, Debug)]
pub struct NodeRng {
    inner: ChaCha20Rng,
}

impl NodeRng {
    /// A generator from the driver's seed and the node's key (ed25519
    /// signatures are deterministic, so this is a pure function of both).
    pub fn new(seed: u64, key: &Keypair) -> Self {
        let signature = key.sign(Domain::Rng, &seed.to_le_bytes());
        let key_bytes = hash(Domain::Rng, &signature.0);
        NodeRng {
            inner: ChaCha20Rng::from_seed(key_bytes.0),
        }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.inner.next_u64()
    }

    /// A uniform value in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }

    /// 32 random bytes.
    pub fn bytes32(&mut self) -> [u8; 32] {
        let mut out = [0u8; 32];
        self.inner.fill_bytes(&mut out);
        out
    }
}

/// SplitMix64: tiny and fast, for choices nobody must fail to predict
/// (the harness, simulated links). Never for nonces: one output gives
/// away the state.
#[derive(Clone, Debug)]
pub struct DetRng {
    state: u64,
}

impl DetRng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        DetRng { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A uniform value in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        // Lemire's multiply-shift; the tiny bias is irrelevant here.
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }

    /// 32 random bytes.
    pub fn bytes32(&mut self) -> [u8; 32] {
        let mut out = [0u8; 32];
        for chunk in out.chunks_mut(8) {
            chunk.copy_from_slice(&self.next_u64().to_le_bytes());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SplitMix64's output function, run backwards: the state behind an
    /// output.
    fn splitmix_state_behind(output: u64) -> u64 {
        let mut z = output;
        z ^= (z >> 31) ^ (z >> 62);
        z = z.wrapping_mul(0x3196_42b2_d24d_8ec3);
        z ^= (z >> 27) ^ (z >> 54);
        z = z.wrapping_mul(0x96de_1b17_3f11_9089);
        z ^ (z >> 30) ^ (z >> 60)
    }

    #[test]
    fn splitmix_gives_its_state_away_and_the_inverse_here_is_right() {
        let mut rng = DetRng::new(0x1234_5678);
        let seen = rng.next_u64();
        let mut predictor = DetRng::new(splitmix_state_behind(seen));
        assert_eq!(predictor.next_u64(), rng.next_u64());
    }

    /// Postmortem: handshake nonces came from SplitMix64; a peer that saw
    /// one nonce recovered the state and knew every later nonce, so it could
    /// have a proof signed for a challenge the node had not yet issued.
    #[test]
    fn one_observed_nonce_does_not_predict_the_next() {
        let key = Keypair::from_label("node");
        let mut rng = NodeRng::new(7, &key);
        let seen = rng.bytes32();
        let word = u64::from_le_bytes(seen[24..32].try_into().unwrap());
        let mut guess = DetRng::new(splitmix_state_behind(word));
        let next = rng.bytes32();
        let guessed = guess.bytes32();
        assert_ne!(guessed, next);
        // Still a pure function of seed and key.
        let mut again = NodeRng::new(7, &key);
        assert_eq!(again.bytes32(), seen);
        assert_ne!(NodeRng::new(8, &key).bytes32(), seen);
        assert_ne!(
            NodeRng::new(7, &Keypair::from_label("other")).bytes32(),
            seen
        );
    }

    #[test]
    fn same_seed_same_sequence() {
        let mut a = DetRng::new(42);
        let mut b = DetRng::new(42);
        for _ in 0..10 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
        assert!(DetRng::new(1).below(10) < 10);
    }
}
