//! Newtypes for the protocol's numbers and identifiers.
//!
//! Rounds, timestamps, peers and hashes are distinct types so that a round can
//! never be passed where a timestamp is expected, and so that every identifier
//! prints the same way everywhere (full hex, or the 16-character short form
//! used in logs and traces).

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};
use std::fmt;

/// A DAG round. Each validator produces at most one vertex per round.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    BorshSerialize,
    BorshDeserialize,
    Serialize,
    Deserialize,
)]
#[serde(transparent)]
pub struct Round(pub u64);

impl Round {
    /// The round after this one.
    pub fn next(self) -> Round {
        Round(self.0.saturating_add(1))
    }

    /// The round before this one, or `None` at round 0.
    pub fn prev(self) -> Option<Round> {
        self.0.checked_sub(1).map(Round)
    }

    /// This round minus `n`, floored at 0.
    pub fn saturating_sub(self, n: u64) -> Round {
        Round(self.0.saturating_sub(n))
    }

    /// This round plus `n`, capped at `u64::MAX`.
    pub fn saturating_add(self, n: u64) -> Round {
        Round(self.0.saturating_add(n))
    }
}

impl fmt::Display for Round {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Monotonic time in milliseconds, supplied by the driver. The core never
/// reads a clock: every `handle*` call passes the current `Timestamp`.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Timestamp(pub u64);

impl Timestamp {
    /// This time plus `ms` milliseconds.
    pub fn plus_ms(self, ms: u64) -> Timestamp {
        Timestamp(self.0.saturating_add(ms))
    }

    /// Milliseconds elapsed from `earlier` to `self`, 0 if `earlier` is later.
    pub fn ms_since(self, earlier: Timestamp) -> u64 {
        self.0.saturating_sub(earlier.0)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}ms", self.0)
    }
}

/// A connection handle chosen by the driver. It names one transport
/// connection, not a node: the node's identity is the key proven in the
/// handshake.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PeerId(pub u64);

impl fmt::Display for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "p{}", self.0)
    }
}

/// Writes `bytes` as lowercase hex.
fn write_hex(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    for b in bytes {
        write!(f, "{b:02x}")?;
    }
    Ok(())
}

/// Parses exactly `N` bytes of hex.
fn parse_hex<const N: usize>(s: &str) -> Result<[u8; N], HexError> {
    let mut out = [0u8; N];
    hex::decode_to_slice(s.trim(), &mut out).map_err(|_| HexError {
        expected_bytes: N,
        got_chars: s.trim().len(),
    })?;
    Ok(out)
}

/// A hex string that does not hold the expected number of bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected {expected_bytes} bytes of hex ({} characters), got {got_chars} characters", expected_bytes * 2)]
pub struct HexError {
    expected_bytes: usize,
    got_chars: usize,
}

macro_rules! byte_id {
    ($(#[$doc:meta])* $name:ident, $len:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, BorshSerialize, BorshDeserialize)]
        pub struct $name(pub [u8; $len]);

        impl $name {
            /// The first 8 bytes as 16 hex characters, the form used in logs and traces.
            pub fn short(&self) -> String {
                hex::encode(&self.0[..8])
            }

            /// Parses the full hex form.
            pub fn from_hex(s: &str) -> Result<Self, HexError> {
                parse_hex::<$len>(s).map($name)
            }

            /// The raw bytes.
            pub fn as_bytes(&self) -> &[u8; $len] {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write_hex(f, &self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.short())
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.to_string())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <String as Deserialize>::deserialize(d)?;
                $name::from_hex(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

byte_id!(
    /// A SHA-256 digest computed with a domain tag (see [`crate::crypto::Domain`]).
    Hash,
    32
);
byte_id!(
    /// The identifier of an object: `H(tx hash ‖ operation index)` for created
    /// objects, a derived hash for genesis objects.
    ObjectId,
    32
);
byte_id!(
    /// An ed25519 public key: the identity of a node, a validator or a
    /// transaction sender.
    PublicKey,
    32
);

/// An ed25519 signature.
#[derive(Clone, Copy, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Signature(pub [u8; 64]);

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({})", hex::encode(&self.0[..8]))
    }
}

/// An epoch: a fixed run of rounds over which the validator set is constant.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    BorshSerialize,
    BorshDeserialize,
    Serialize,
    Deserialize,
)]
#[serde(transparent)]
pub struct Epoch(pub u64);

impl fmt::Display for Epoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_round_trips_through_hex_and_prints_short_form() {
        let h = Hash([0xab; 32]);
        assert_eq!(Hash::from_hex(&h.to_string()).unwrap(), h);
        assert_eq!(h.short(), "abababababababab");
        assert!(Hash::from_hex("abc").is_err());
    }

    #[test]
    fn round_arithmetic_saturates() {
        assert_eq!(Round(0).prev(), None);
        assert_eq!(Round(3).saturating_sub(10), Round(0));
        assert_eq!(Round(u64::MAX).next(), Round(u64::MAX));
    }
}
