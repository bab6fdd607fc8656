//! The bounded, deduplicated mempool of a validator.
//!
//! Transactions wait here in arrival order until this validator puts them in
//! a vertex. A transaction seen in any accepted vertex leaves the pool (another
//! validator ordered it already), so validators rarely carry the same
//! transaction twice; if they do, execution skips the second copy because a
//! hash commits at most once.

use crate::ids::Hash;
use crate::tx::Transaction;
use std::collections::{BTreeMap, HashMap};

/// Why the pool refused a transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoolRefusal {
    /// Already waiting.
    Duplicate,
    /// `max_mempool_txs` reached.
    Full,
}

/// The pool.
#[derive(Debug, Default)]
pub struct Mempool {
    by_seq: BTreeMap<u64, (Hash, Transaction)>,
    seq_of: HashMap<Hash, u64>,
    next_seq: u64,
    max_txs: usize,
}

impl Mempool {
    /// An empty pool holding at most `max_txs`.
    pub fn new(max_txs: usize) -> Self {
        Mempool {
            max_txs,
            ..Self::default()
        }
    }

    /// Number of waiting transactions.
    pub fn len(&self) -> usize {
        self.by_seq.len()
    }

    /// True when nothing waits.
    pub fn is_empty(&self) -> bool {
        self.by_seq.is_empty()
    }

    /// Whether `hash` waits here.
    pub fn contains(&self, hash: &Hash) -> bool {
        self.seq_of.contains_key(hash)
    }

    /// Adds a checked transaction.
    pub fn insert(&mut self, hash: Hash, tx: Transaction) -> Result<(), PoolRefusal> {
        if self.seq_of.contains_key(&hash) {
            return Err(PoolRefusal::Duplicate);
        }
        if self.by_seq.len() >= self.max_txs {
            return Err(PoolRefusal::Full);
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.by_seq.insert(seq, (hash, tx));
        self.seq_of.insert(hash, seq);
        Ok(())
    }

    /// Removes a transaction (ordered elsewhere, or executed).
    pub fn remove(&mut self, hash: &Hash) {
        if let Some(seq) = self.seq_of.remove(hash) {
            self.by_seq.remove(&seq);
        }
    }

    /// Takes the oldest transactions, at most `max_txs` of them and at most
    /// `max_bytes` of encoded size in total.
    pub fn take(&mut self, max_txs: usize, max_bytes: usize) -> Vec<Transaction> {
        let mut out = Vec::new();
        let mut bytes = 0usize;
        while out.len() < max_txs {
            let Some(entry) = self.by_seq.first_entry() else {
                break;
            };
            let len = entry.get().1.encoded_len();
            if bytes + len > max_bytes {
                break;
            }
            let (hash, tx) = entry.remove();
            self.seq_of.remove(&hash);
            bytes += len;
            out.push(tx);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::Keypair;
    use crate::ids::Round;
    use crate::tx::{Operation, TxBody};

    fn tx(nonce: u64) -> (Hash, Transaction) {
        let k = Keypair::from_label("s");
        let tx = TxBody {
            chain_id: Hash([0; 32]),
            sender: k.public(),
            nonce,
            expiry: Round(9),
            ops: vec![Operation::Create { data: vec![0; 10] }],
        }
        .sign(&k);
        (tx.hash(), tx)
    }

    #[test]
    fn pool_dedups_bounds_and_takes_in_arrival_order() {
        let mut pool = Mempool::new(2);
        let (h1, t1) = tx(1);
        let (h2, t2) = tx(2);
        let (h3, t3) = tx(3);
        assert_eq!(pool.insert(h1, t1.clone()), Ok(()));
        assert_eq!(pool.insert(h1, t1.clone()), Err(PoolRefusal::Duplicate));
        assert_eq!(pool.insert(h2, t2.clone()), Ok(()));
        assert_eq!(pool.insert(h3, t3), Err(PoolRefusal::Full));
        assert_eq!(pool.take(1, usize::MAX), vec![t1]);
        pool.remove(&h2);
        assert!(pool.is_empty());
    }
}
