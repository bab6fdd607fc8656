//! A snapshot chunk that passed its check (`snapshot::check`), and what
//! it holds: the kinds of chunk, and the records as a store stages them.
//!
//! A module of its own so that the store can take a verified chunk in a
//! write (`WriteOp::StageChunk`) without depending on the snapshot module.

use crate::ids::Hash;
use crate::tx::{Object, TxOutcome};
use borsh::{BorshDeserialize, BorshSerialize};
use std::fmt;

/// What a chunk holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum ChunkKind {
    /// Objects, by id.
    Objects,
    /// Transaction outcomes, by transaction hash (a joiner needs them so that
    /// a transaction executed before the snapshot is never executed again).
    Outcomes,
}

/// A chunk's raw bytes, checked against its manifest entry: hash, length,
/// kind, key range, count and strict key order. The records stay in the
/// raw bytes; staging reads them from there without decoding or encoding
/// them again.
#[derive(Clone, PartialEq, Eq)]
pub struct VerifiedChunk {
    kind: ChunkKind,
    raw: Vec<u8>,
    /// Where each record's encoding ends in `raw`.
    ends: Vec<u32>,
}

impl fmt::Debug for VerifiedChunk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "VerifiedChunk({:?}, {} records, {} B)",
            self.kind,
            self.ends.len(),
            self.raw.len()
        )
    }
}

/// Length of a record's key: the first field of both kinds of record.
const KEY_BYTES: usize = 32;

impl VerifiedChunk {
    /// Only `snapshot::check` calls this, once the bytes passed the check.
    pub(crate) fn checked(kind: ChunkKind, raw: Vec<u8>, ends: Vec<u32>) -> Self {
        VerifiedChunk { kind, raw, ends }
    }

    /// What the chunk holds.
    pub fn kind(&self) -> ChunkKind {
        self.kind
    }

    /// Its raw length in bytes.
    pub fn raw_len(&self) -> usize {
        self.raw.len()
    }

    /// Each record's key and the bytes a store keeps under it, in strictly
    /// increasing key order: for an object its whole record (the borsh
    /// encoding of the [`Object`], which starts with its id), for an
    /// outcome all but the key (the borsh encoding of the
    /// [`crate::tx::TxOutcome`] after the transaction hash).
    pub fn entries(&self) -> impl Iterator<Item = (&[u8], &[u8])> + '_ {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts.zip(self.ends.iter().copied()).map(|(start, end)| {
            let record = &self.raw[start as usize..end as usize];
            let key = &record[..KEY_BYTES];
            match self.kind {
                ChunkKind::Objects => (key, record),
                ChunkKind::Outcomes => (key, &record[KEY_BYTES..]),
            }
        })
    }

    /// The objects of an object chunk, decoded (for a store that keeps
    /// them as values); none for an outcome chunk.
    pub fn objects(&self) -> Result<Vec<Object>, String> {
        self.decode(ChunkKind::Objects)
    }

    /// The outcomes of an outcome chunk, decoded (transaction hash and
    /// outcome: the fields of `snapshot::OutcomeRecord`, which borsh
    /// encodes like this pair); none for an object chunk.
    pub fn outcomes(&self) -> Result<Vec<(Hash, TxOutcome)>, String> {
        self.decode(ChunkKind::Outcomes)
    }

    fn decode<R: BorshDeserialize>(&self, kind: ChunkKind) -> Result<Vec<R>, String> {
        if self.kind != kind {
            return Ok(Vec::new());
        }
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts
            .zip(self.ends.iter().copied())
            .map(|(start, end)| {
                R::try_from_slice(&self.raw[start as usize..end as usize])
                    .map_err(|e| format!("a verified record no longer decodes: {e}"))
            })
            .collect()
    }
}
