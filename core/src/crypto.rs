//! Hashing and signatures.
//!
//! Every hash is SHA-256 over `len(tag) ‖ tag ‖ bytes`, with one tag per kind of
//! thing hashed, so that a vertex hash can never be confused with a transaction
//! hash even if their encodings happened to coincide. Signatures are ed25519 over
//! a tagged message for the same reason, and are checked with `verify_strict`
//! (no malleable or small-order keys).
//!
//! Hashes received from the network are never trusted: receivers recompute them
//! from the canonical (borsh) bytes.

use crate::ids::{Hash, PublicKey, Signature};
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};
use std::fmt;

/// What a hash or signature is over. Each variant has its own tag.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Domain {
    /// A vertex header (its hash is the vertex hash; the signature covers it).
    Vertex,
    /// A vertex payload: transactions, attestation and evidence, named in
    /// the header by their hash so that a header alone proves what was signed.
    Payload,
    /// A transaction body.
    Tx,
    /// A created object's id (tx hash ‖ operation index).
    Object,
    /// A snapshot chunk's raw bytes.
    Chunk,
    /// A snapshot manifest.
    Manifest,
    /// The genesis document: its hash is the chain id.
    Genesis,
    /// The handshake proof of key possession.
    Handshake,
    /// Synthetic genesis objects used to build large test states.
    Synthetic,
    /// A page of a snapshot chunk (`snapshot::pages`).
    Page,
    /// The key of a node's random generator (`rng::NodeRng`).
    Rng,
    /// A validator set with its weights and addresses (`epochs.rs`).
    ValidatorSet,
    /// The link an epoch certificate signs: epoch, first round, set hash.
    EpochLink,
}

impl Domain {
    fn tag(self) -> &'static [u8] {
        match self {
            Domain::Vertex => b"bluepods/vertex/v1",
            Domain::Tx => b"bluepods/tx/v1",
            Domain::Object => b"bluepods/object/v1",
            Domain::Chunk => b"bluepods/chunk/v1",
            Domain::Manifest => b"bluepods/manifest/v1",
            Domain::Genesis => b"bluepods/genesis/v1",
            Domain::Handshake => b"bluepods/handshake/v1",
            Domain::Synthetic => b"bluepods/synthetic/v1",
            Domain::Page => b"bluepods/page/v1",
            Domain::Rng => b"bluepods/rng/v1",
            Domain::Payload => b"bluepods/payload/v1",
            Domain::ValidatorSet => b"bluepods/validator-set/v1",
            Domain::EpochLink => b"bluepods/epoch-link/v1",
        }
    }
}

/// Hashes `parts` (concatenated) under `domain`.
pub fn hash_parts(domain: Domain, parts: &[&[u8]]) -> Hash {
    let tag = domain.tag();
    let mut h = Sha256::new();
    h.update([tag.len() as u8]);
    h.update(tag);
    for p in parts {
        h.update(p);
    }
    Hash(h.finalize().into())
}

/// Hashes `bytes` under `domain`.
pub fn hash(domain: Domain, bytes: &[u8]) -> Hash {
    hash_parts(domain, &[bytes])
}

/// Hashes the canonical borsh encoding of `value` under `domain`.
pub fn hash_borsh<T: borsh::BorshSerialize>(domain: Domain, value: &T) -> Hash {
    // Encoding into a Vec cannot fail for our types (no IO, no maps with
    // fallible keys); an error here would be a programming bug.
    let bytes = borsh::to_vec(value).expect("borsh encoding into memory is infallible");
    hash(domain, &bytes)
}

fn signed_message(domain: Domain, msg: &[u8]) -> Vec<u8> {
    let tag = domain.tag();
    let mut out = Vec::with_capacity(1 + tag.len() + msg.len());
    out.push(tag.len() as u8);
    out.extend_from_slice(tag);
    out.extend_from_slice(msg);
    out
}

/// An ed25519 signing key. The secret never leaves this type except through
/// [`Keypair::secret_bytes`], which the driver uses to write the key file.
#[derive(Clone)]
pub struct Keypair {
    signing: SigningKey,
}

impl fmt::Debug for Keypair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Keypair({})", self.public().short())
    }
}

impl Keypair {
    /// A key from a 32-byte secret seed.
    pub fn from_secret(secret: [u8; 32]) -> Keypair {
        Keypair {
            signing: SigningKey::from_bytes(&secret),
        }
    }

    /// A deterministic key for tests and simulations: the secret is the hash
    /// of `label`. Never use for a real node.
    pub fn from_label(label: &str) -> Keypair {
        Keypair::from_secret(hash(Domain::Synthetic, label.as_bytes()).0)
    }

    /// The 32-byte secret seed.
    pub fn secret_bytes(&self) -> [u8; 32] {
        self.signing.to_bytes()
    }

    /// The public key.
    pub fn public(&self) -> PublicKey {
        PublicKey(self.signing.verifying_key().to_bytes())
    }

    /// Signs `msg` under `domain`.
    pub fn sign(&self, domain: Domain, msg: &[u8]) -> Signature {
        Signature(self.signing.sign(&signed_message(domain, msg)).to_bytes())
    }
}

/// Checks `sig` by `key` over `msg` under `domain`. Any malformed key or
/// signature is simply "not valid".
/// A check that passed before in this process is not done again
/// (`sig_cache`); a failed one always is.
pub fn verify(key: &PublicKey, domain: Domain, msg: &[u8], sig: &Signature) -> bool {
    let message = signed_message(domain, msg);
    let digest = crate::sig_cache::digest(&key.0, &sig.0, &message);
    if crate::sig_cache::passed(&digest) {
        crate::cov::mark("signature_check_remembered");
        return true;
    }
    let Ok(vk) = VerifyingKey::from_bytes(&key.0) else {
        return false;
    };
    let signature = ed25519_dalek::Signature::from_bytes(&sig.0);
    let valid = vk.verify_strict(&message, &signature).is_ok();
    if valid {
        crate::sig_cache::remember(digest);
    }
    valid
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_separate_equal_bytes() {
        assert_ne!(hash(Domain::Vertex, b"x"), hash(Domain::Tx, b"x"));
        assert_eq!(
            hash(Domain::Vertex, b"xy"),
            hash_parts(Domain::Vertex, &[b"x", b"y"])
        );
    }

    #[test]
    fn signature_verifies_only_for_its_domain_key_and_message() {
        let k = Keypair::from_label("a");
        let other = Keypair::from_label("b");
        let sig = k.sign(Domain::Vertex, b"m");
        assert!(verify(&k.public(), Domain::Vertex, b"m", &sig));
        assert!(!verify(&k.public(), Domain::Tx, b"m", &sig));
        assert!(!verify(&k.public(), Domain::Vertex, b"n", &sig));
        assert!(!verify(&other.public(), Domain::Vertex, b"m", &sig));
        assert!(!verify(&PublicKey([0; 32]), Domain::Vertex, b"m", &sig));
        // The pass above is remembered (`sig_cache`); a forgery of it is
        // checked, and refused, every time.
        let mut forged = sig;
        forged.0[7] ^= 1;
        for _ in 0..2 {
            assert!(!verify(&k.public(), Domain::Vertex, b"m", &forged));
        }
        assert!(verify(&k.public(), Domain::Vertex, b"m", &sig));
    }
}
