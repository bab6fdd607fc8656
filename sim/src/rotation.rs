//! The `rotation` scenario's own parts: a genesis validator that leaves by
//! transaction, another that vanishes for good (and must be removed for
//! inactivity), validator joiners admitted by approval, and the check, at
//! the end, that the set rotated as it should. The invariant that every
//! snapshot joiner checked the certificate chain to the snapshot's epoch
//! holds in every scenario (`observe.rs`).

use crate::observe::{lock, SharedRef};
use bluepods_core::tx::{Operation, TxBody};
use bluepods_core::{Hash, Keypair, Round};
use std::time::Duration;

/// Epochs of 1 s at the simulator's 100 ms rounds: many boundaries in a run.
pub const EPOCH_ROUNDS: u64 = 10;

/// A vanished member is removed after this many epochs without a
/// committed vertex.
pub const INACTIVE_EPOCHS: u64 = 3;

/// A client that, at `at_ms`, has `name` (a member) submit its own
/// `LeaveValidator` to itself, and tries again every 500 ms until the node
/// takes it.
pub fn leave_at(
    sim: &mut turmoil::Sim<'_>,
    shared: SharedRef,
    at_ms: u64,
    name: String,
    key: Keypair,
    chain_id: Hash,
) {
    sim.client(format!("leave-{name}"), async move {
        tokio::time::sleep(Duration::from_millis(at_ms)).await;
        let tx = TxBody {
            chain_id,
            sender: key.public(),
            nonce: 0x1ea7e,
            expiry: Round(1_000_000),
            ops: vec![Operation::LeaveValidator],
        }
        .sign(&key);
        for _ in 0..20 {
            let handle = lock(&shared).handles.get(&name).cloned();
            if let Some(h) = handle {
                if let Ok(Ok(_)) = h.submit(tx.clone()).await {
                    return Ok(());
                }
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        lock(&shared)
            .violations
            .push(format!("{name} could not submit its leave"));
        Ok(())
    });
}

/// A client that, at `end_ms`, asks `witness` for the set: `left` and
/// `vanished` must be out of it, and at least one of `joiners` (validator
/// joiners, if any) in.
pub fn check_at(
    sim: &mut turmoil::Sim<'_>,
    shared: SharedRef,
    end_ms: u64,
    witness: String,
    out: Vec<(String, Keypair)>,
    joiners: Vec<(String, Keypair)>,
) {
    sim.client("check-rotation", async move {
        tokio::time::sleep(Duration::from_millis(end_ms)).await;
        let handle = lock(&shared).handles.get(&witness).cloned();
        let set = match handle {
            Some(h) => h.validators().await.ok().flatten(),
            None => None,
        };
        let mut problems = Vec::new();
        match set {
            None => problems.push(format!("{witness} shows no validator set at the end")),
            Some(set) => {
                let member = |k: &Keypair| set.members.iter().any(|m| m.key == k.public());
                for (name, key) in &out {
                    if member(key) {
                        problems.push(format!("{name} is still in the set at epoch {}", set.epoch));
                    }
                }
                if !joiners.is_empty() && !joiners.iter().any(|(_, k)| member(k)) {
                    let names: Vec<&str> = joiners.iter().map(|(n, _)| n.as_str()).collect();
                    problems.push(format!("none of {names:?} was admitted"));
                }
            }
        }
        lock(&shared).violations.extend(problems);
        Ok(())
    });
}
