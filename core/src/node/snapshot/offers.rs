//! Snapshot offers: a manifest and its attestations are checked against
//! the certified validator set of the snapshot's epoch (`epochs.rs`) and,
//! when a quorum of that set attests, become an offer for discovery to
//! choose from. A manifest of an epoch the node's certificate chain does
//! not reach yet waits, one per peer, until the certificates come.

use super::Certified;
use crate::ids::{Hash, PeerId, PublicKey, Timestamp};
use crate::node::state::SyncState;
use crate::node::Node;
use crate::snapshot::Manifest;
use crate::store::{Store, StoreError};
use crate::vertex::Vertex;
use crate::wire::RequestId;
use std::collections::BTreeSet;
use std::sync::Arc;

impl<S: Store> Node<S> {
    /// A manifest answer: check it and its attestations.
    pub(in crate::node) fn on_manifest(
        &mut self,
        now: Timestamp,
        peer: PeerId,
        request: RequestId,
        manifest: Manifest,
        attestations: Vec<Vertex>,
    ) -> Result<(), StoreError> {
        if self.take_request(now, peer, request, 0).is_none() || !self.sync.in_snapshot_sync() {
            return Ok(());
        }
        self.consider_manifest(now, peer, manifest, attestations);
        self.clock.last_progress_at = now;
        Ok(())
    }

    /// Manifests kept for want of their epoch's certificate, looked at
    /// again now that the chain of certified sets grew.
    pub(in crate::node) fn reconsider_manifests(&mut self, now: Timestamp) {
        let Some(disc) = self.discovery_mut() else {
            return;
        };
        for (peer, (manifest, attestations)) in std::mem::take(&mut disc.uncertified) {
            if self.peers.peers.get(&peer).is_some_and(|p| p.is_ready()) {
                self.consider_manifest(now, peer, manifest, attestations);
            }
        }
    }

    /// Checks a manifest and its attestations against the certified set of
    /// its epoch and, if a quorum of it attests, records the offer.
    fn consider_manifest(
        &mut self,
        now: Timestamp,
        peer: PeerId,
        manifest: Manifest,
        attestations: Vec<Vertex>,
    ) {
        let Some(chain) = &self.chain else {
            return;
        };
        if let Err(e) = manifest.check(&chain.chain_id) {
            self.ban_peer(now, peer, &format!("served a false manifest: {e}"));
            return;
        }
        let root = manifest.root();
        let set = match self.certified_set(&manifest) {
            Certified::Set(set) => set,
            Certified::NotYet => {
                // The chain must reach the snapshot's epoch first: keep the
                // manifest (one per peer) until certificates come.
                crate::cov::mark("manifest_waits_for_its_epoch_certificate");
                // However far its epoch, it is kept: a joiner of an old
                // network fetches hundreds of certificates in one round
                // trip, and one that dropped the manifest waited a stall
                // timeout to ask again (issue 14). Bounded by count: one per
                // peer, at most `max_sync_peers`, each no larger than the
                // answer it came in. When they are all taken, the one of the
                // furthest round makes way for a nearer one: a liar's
                // manifest of an epoch that never comes cannot keep a real
                // one out.
                let max = self.config.sync.max_sync_peers;
                if let Some(disc) = self.discovery_mut() {
                    if disc.uncertified.len() >= max && !disc.uncertified.contains_key(&peer) {
                        let furthest = disc
                            .uncertified
                            .iter()
                            .max_by_key(|(p, (m, _))| (m.round, **p))
                            .filter(|(_, (m, _))| m.round > manifest.round)
                            .map(|(p, _)| *p);
                        if let Some(p) = furthest {
                            crate::cov::mark("furthest_uncertified_manifest_made_way");
                            disc.uncertified.remove(&p);
                        }
                    }
                    if disc.uncertified.len() < max || disc.uncertified.contains_key(&peer) {
                        disc.uncertified.insert(peer, (manifest, attestations));
                    }
                }
                let _ = self.fetch_certificates(now);
                return;
            }
            Certified::Refused(why) => {
                self.ban_peer(now, peer, &format!("served a manifest {why}"));
                return;
            }
        };
        match self.attesters(&manifest, root, &attestations, &set) {
            Err(fault) => self.ban_peer(now, peer, &format!("served a false attestation: {fault}")),
            Ok(attesters) => {
                let Some(chain) = &self.chain else {
                    return;
                };
                // A snapshot at or behind our own commits would take us back.
                let useful = chain
                    .consensus
                    .last_committed_round()
                    .is_none_or(|ours| manifest.round > ours);
                if let Some(p) = self.peers.peers.get_mut(&peer) {
                    p.snapshot_round = p.snapshot_round.max(Some(manifest.round));
                }
                match &mut self.sync {
                    // A peer met during the download serves the same
                    // snapshot: one more source.
                    SyncState::Fetch(d) if d.root == root && !d.sources.contains(&peer) => {
                        d.sources.push(peer);
                    }
                    SyncState::Discovery(disc) if set.is_quorum(&attesters) && useful => {
                        let entry = disc
                            .offers
                            .entry(root)
                            .or_insert_with(|| (Arc::new(manifest), BTreeSet::new()));
                        entry.1.insert(peer);
                    }
                    _ => {}
                }
            }
        }
    }

    /// The distinct validators whose vertices attest `root` for the
    /// manifest's round. A vertex that does not verify is a fault.
    ///
    /// Only the first vertex of each member is examined: a vertex from
    /// outside the set, or a member's second one, is skipped before any
    /// signature is checked, so padding an answer costs the joiner nothing
    /// and hides no real attestation (issue 11).
    fn attesters(
        &self,
        manifest: &Manifest,
        root: Hash,
        attestations: &[Vertex],
        set: &crate::validators::ValidatorSet,
    ) -> Result<BTreeSet<PublicKey>, String> {
        let chain = self.chain.as_ref().expect("sync implies a chain");
        let mut out = BTreeSet::new();
        for v in attestations.iter() {
            if !set.contains(&v.author()) || out.contains(&v.author()) {
                continue;
            }
            v.verify(&chain.chain_id, &chain.genesis.params)
                .map_err(|e| e.to_string())?;
            let a = v
                .body
                .attestation
                .as_ref()
                .ok_or("vertex carries no attestation")?;
            if a.round != manifest.round || a.manifest_root != root {
                return Err("attestation names another snapshot".into());
            }
            out.insert(v.author());
        }
        Ok(out)
    }

    /// The set whose attestations count for `manifest`: its own validator
    /// set at the snapshot's epoch, once that is the certified one
    /// (`epochs.rs`).
    fn certified_set(&self, manifest: &Manifest) -> Certified {
        let Some(chain) = &self.chain else {
            return Certified::NotYet;
        };
        let epoch_rounds = chain.genesis.params.epoch_rounds;
        let schedule = &manifest.frontier.meta.schedule;
        if schedule.epoch_rounds != epoch_rounds {
            return Certified::Refused("whose schedule has another epoch length".into());
        }
        let epoch = crate::ids::Epoch(manifest.round.0 / epoch_rounds);
        let Some(certified) = self.epochs.chain.as_ref().and_then(|c| c.hash_at(epoch)) else {
            return Certified::NotYet;
        };
        let set = schedule.set_for_epoch(epoch);
        if crate::epochs::set_hash(set.members()) != certified {
            return Certified::Refused(format!(
                "whose validator set for epoch {epoch} is not the certified one"
            ));
        }
        Certified::Set(set)
    }
}
