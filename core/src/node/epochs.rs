//! This node's epoch certificates (`crate::epochs`): the votes it carries
//! in its vertices, the certificates it assembles from the votes in the
//! vertices it accepts, and the chain it checks them on — from genesis or
//! from its trusted checkpoint. It stores each certificate, serves them,
//! and fetches those it lacks from peers that are further on; a joiner
//! counts no attestation before its chain reaches the snapshot's epoch.

use super::Node;
use crate::epochs::{
    self, CertificateInvalid, CertifiedChain, ChainError, EpochCertificate, EpochLink, EpochVote,
    SetLimits,
};
use crate::ids::{Epoch, Hash, PeerId, PublicKey, Round, Signature, Timestamp};
use crate::interface::{Channel, Event};
use crate::node::fetch::RequestKind;
use crate::store::{read_meta, MetaKey, Store, StoreError, WriteBatch};
use crate::wire::{Message, RequestId};
use std::collections::BTreeMap;

/// Epochs past the chain's tip whose votes are kept. With at most
/// `max_validators` voters per epoch at 128 bytes a vote, that is 24 KiB at
/// 64 validators: bounded by the protocol, whoever sends the vertices.
const VOTE_EPOCHS_AHEAD: u64 = 3;

/// Certificate requests out at once, to different peers: one peer that
/// withholds its answer does not hold the chain up for its timeout.
const CERTIFICATE_REQUESTS_IN_FLIGHT: usize = 2;

/// Distinct peers that must serve another set for the checkpoint's epoch
/// before the node calls its checkpoint wrong (one may simply lie).
const CHECKPOINT_DISSENTERS: usize = 3;

/// A member votes again for a link not certified this many rounds after
/// its last vote (the vertex that carried it may not have been cited).
const VOTE_REPEAT_ROUNDS: u64 = 10;

/// The node's certificates and the votes that make them.
#[derive(Debug, Default)]
pub(super) struct EpochBook {
    /// The chain of certified sets, once the node has a genesis.
    pub(super) chain: Option<CertifiedChain>,
    /// Votes seen, by epoch and voter: the set hash voted for and the
    /// signature (only for epochs just past the tip).
    votes: BTreeMap<Epoch, BTreeMap<PublicKey, (Hash, Signature)>>,
    /// This node's last vote: the epoch voted for and the round of the
    /// vertex that carried it.
    last_vote: Option<(Epoch, Round)>,
    /// Peers asked for certificates since the tip last moved, with the
    /// epoch each was at (asked again once it is further), and that tip.
    asked: (Option<Epoch>, BTreeMap<PeerId, Epoch>),
    /// Why the chain stopped: two certified sets for one epoch, or a
    /// checkpoint the network does not share.
    pub(super) broken: Option<String>,
    /// Peers that served another set than the checkpoint's for its epoch.
    dissenters: std::collections::BTreeSet<PeerId>,
}

impl<S: Store> Node<S> {
    fn set_limits(&self) -> Option<SetLimits> {
        let p = &self.chain.as_ref()?.genesis.params;
        Some(SetLimits {
            epoch_rounds: p.epoch_rounds,
            max_validators: p.max_validators,
            max_validator_weight: p.max_validator_weight,
        })
    }

    /// Roots the certificate chain once the node has a genesis — at the
    /// trusted checkpoint if there is one — and extends it with the
    /// certificates stored before a restart.
    pub(super) fn open_epoch_chain(&mut self) -> Result<(), StoreError> {
        let (Some(chain), Some(limits)) = (&self.chain, self.set_limits()) else {
            return Ok(());
        };
        let (chain_id, genesis) = (chain.chain_id, chain.genesis.validators.clone());
        let mut certified = match self.config.sync.trust_checkpoint {
            None => CertifiedChain::from_genesis(chain_id, &genesis, limits),
            Some(t) => match CertifiedChain::from_checkpoint(
                chain_id,
                &genesis,
                limits,
                (t.epoch, t.set_hash),
            ) {
                Ok(c) => c,
                Err(reason) => {
                    self.epochs.broken = Some(reason.clone());
                    self.emit(Event::SyncFailed { reason });
                    return Ok(());
                }
            },
        };
        loop {
            let epoch = certified.next_epoch();
            let Some(cert) =
                read_meta::<EpochCertificate>(&self.store, MetaKey::EpochCertificate(epoch))?
            else {
                break;
            };
            if let Err(e) = certified.extend(&cert) {
                // A checkpoint changed since the certificates were stored,
                // or a damaged store: say so, and trust none of them.
                let reason =
                    format!("stored certificate of epoch {epoch} does not extend the chain: {e}");
                self.epochs.broken = Some(reason.clone());
                self.emit(Event::SyncFailed { reason });
                return Ok(());
            }
        }
        self.epochs.chain = Some(certified);
        Ok(())
    }

    /// The vote to carry in this node's vertex of `round`: for the chain's
    /// next epoch, while `round` is in the epoch before it or — late, if
    /// that epoch went by without a certificate — in that epoch itself, if
    /// this node is a member of the set before it and has decided the set
    /// voted for; not again for `VOTE_REPEAT_ROUNDS` rounds.
    pub(super) fn epoch_vote_for(&mut self, round: Round) -> Option<EpochVote> {
        let chain = self.chain.as_ref()?;
        let certified = self.epochs.chain.as_ref()?;
        certified.tip_epoch()?;
        let schedule = &chain.consensus.meta().schedule;
        let next = certified.next_epoch();
        let own = schedule.epoch_of(round);
        if next.0 != own.0 + 1 && next != own {
            return None;
        }
        let voters = schedule.set_for_epoch(Epoch(next.0 - 1));
        if !voters.contains(&self.key.public())
            || !schedule.is_decided(next, chain.consensus.last_committed_round())
        {
            return None;
        }
        if let Some((epoch, at)) = self.epochs.last_vote {
            if epoch == next && round < at.saturating_add(VOTE_REPEAT_ROUNDS) {
                return None;
            }
        }
        let set_hash = epochs::set_hash(schedule.set_for_epoch(next).members());
        let link = EpochLink {
            chain_id: chain.chain_id,
            epoch: next,
            first_round: schedule.first_round(next),
            set_hash,
        };
        self.epochs.last_vote = Some((next, round));
        Some(EpochVote {
            epoch: next,
            set_hash,
            signature: link.sign(&self.key),
        })
    }

    /// A vertex joined the DAG: keep its vote (checked with the vertex) if
    /// it is for an epoch just past the tip, and certify what can be.
    pub(super) fn note_epoch_vote(
        &mut self,
        author: PublicKey,
        vote: Option<EpochVote>,
    ) -> Result<(), StoreError> {
        let (Some(vote), Some(chain)) = (vote, &self.epochs.chain) else {
            return Ok(());
        };
        let next = chain.next_epoch();
        if vote.epoch < next || vote.epoch.0 >= next.0 + VOTE_EPOCHS_AHEAD {
            return Ok(());
        }
        self.epochs
            .votes
            .entry(vote.epoch)
            .or_default()
            .insert(author, (vote.set_hash, vote.signature));
        self.certify_epochs()
    }

    /// Turns the votes for the chain's next epoch into its certificate,
    /// once they weigh a quorum of the set before and name the set this
    /// node computed; repeats for the epoch after.
    pub(super) fn certify_epochs(&mut self) -> Result<(), StoreError> {
        loop {
            let (Some(chain), Some(certified)) = (&self.chain, &self.epochs.chain) else {
                return Ok(());
            };
            let next = certified.next_epoch();
            let schedule = &chain.consensus.meta().schedule;
            if certified.tip_epoch().is_none()
                || !schedule.is_decided(next, chain.consensus.last_committed_round())
            {
                return Ok(());
            }
            let Some(votes) = self.epochs.votes.get(&next) else {
                return Ok(());
            };
            let members = schedule.set_for_epoch(next).members().to_vec();
            let link = EpochLink {
                chain_id: chain.chain_id,
                epoch: next,
                first_round: schedule.first_round(next),
                set_hash: epochs::set_hash(&members),
            };
            let agreeing: BTreeMap<PublicKey, Signature> = votes
                .iter()
                .filter(|(_, (hash, _))| *hash == link.set_hash)
                .map(|(k, (_, sig))| (*k, *sig))
                .collect();
            let previous = schedule.set_for_epoch(Epoch(next.0 - 1));
            let Some(cert) = EpochCertificate::from_votes(&link, members, &previous, &agreeing)
            else {
                return Ok(());
            };
            if self.add_certificate(cert, None)? != Ok(true) {
                return Ok(());
            }
        }
    }

    /// Extends the chain with `cert` and stores it. `from` is the peer
    /// that sent it (none: assembled here). Returns whether the chain took
    /// it; a gap or a known certificate is not an error.
    fn add_certificate(
        &mut self,
        cert: EpochCertificate,
        from: Option<PeerId>,
    ) -> Result<Result<bool, ChainError>, StoreError> {
        let Some(chain) = self.epochs.chain.as_mut() else {
            return Ok(Ok(false));
        };
        match chain.extend(&cert) {
            Ok(true) => {}
            other => return Ok(other),
        }
        let (epoch, bytes) = (cert.epoch, cert.encoded_len());
        let signers = cert.signers.len();
        let mut batch = WriteBatch::new(false);
        batch.put_meta(MetaKey::EpochCertificate(epoch), &cert);
        self.write(batch)?;
        self.epochs.votes.retain(|e, _| *e > epoch);
        self.emit(Event::EpochCertified {
            epoch,
            signers,
            bytes,
            fetched: from.is_some(),
        });
        Ok(Ok(true))
    }

    /// Asks a ready peer that is further on for the certificates this node
    /// lacks, members first: two requests at a time, a peer again only
    /// once it is further than when it was last asked.
    /// Returns whether it sent a request.
    pub(super) fn fetch_certificates(&mut self, now: Timestamp) -> bool {
        let Some(certified) = &self.epochs.chain else {
            return false;
        };
        if self.epochs.broken.is_some() {
            return false;
        }
        let (next, tip) = (certified.next_epoch(), certified.tip_epoch());
        let asking = self
            .requests
            .peers_asked(|k| matches!(k, RequestKind::EpochCertificates { .. }));
        let Some(schedule) = self.chain.as_ref().map(|c| &c.consensus.meta().schedule) else {
            return false;
        };
        if asking.len() >= CERTIFICATE_REQUESTS_IN_FLIGHT {
            return false;
        }
        if self.epochs.asked.0 != tip {
            self.epochs.asked = (tip, BTreeMap::new());
        }
        // Only peers still here are remembered: `max_peers` bounds the map.
        let peers = &self.peers;
        self.epochs
            .asked
            .1
            .retain(|p, _| peers.peers.get(p).is_some_and(|q| q.is_ready()));
        // A peer at epoch e may hold the certificate of e + 1 already.
        // Members first: any number of other nodes may withhold answers.
        let members =
            schedule.set_for_epoch(schedule.epoch_of(self.highest_round().unwrap_or_default()));
        let asked = &self.epochs.asked.1;
        let further = self
            .peers
            .ready()
            .filter_map(|p| Some((p, schedule.epoch_of(p.highest_round?))))
            .filter(|(p, at)| {
                Epoch(at.0 + 1) >= next
                    && !asking.contains(&p.id)
                    && asked.get(&p.id).is_none_or(|was| at > was)
            })
            .min_by_key(|(p, _)| (!p.key.is_some_and(|k| members.contains(&k)), p.id));
        let Some((peer, at)) = further.map(|(p, at)| (p.id, at)) else {
            return false;
        };
        self.epochs.asked.1.insert(peer, at);
        self.request(now, peer, RequestKind::EpochCertificates { from: next });
        true
    }

    /// Answers `GetEpochCertificates`: the stored certificates from `from`
    /// on, consecutive, within the configured count and bytes.
    pub(super) fn serve_epoch_certificates(
        &mut self,
        peer: PeerId,
        request: RequestId,
        from: Epoch,
    ) -> Result<(), StoreError> {
        let mut certs = Vec::new();
        let mut bytes = 0;
        let mut epoch = Epoch(from.0.max(2));
        while certs.len() < self.config.max_certificates_per_response {
            let Some(cert) =
                read_meta::<EpochCertificate>(&self.store, MetaKey::EpochCertificate(epoch))?
            else {
                break;
            };
            bytes += cert.encoded_len();
            if bytes > self.config.max_response_bytes / 2 {
                break;
            }
            certs.push(cert);
            epoch = Epoch(epoch.0 + 1);
        }
        self.send(
            peer,
            Channel::Request,
            Message::EpochCertificates { request, certs },
        );
        Ok(())
    }

    /// Certificates a peer sent as asked: each must extend the chain. A
    /// forged one bans the sender; a second certified set for an epoch
    /// stops the chain with an error (old keys signed a fork: only a
    /// checkpoint past them can tell which is real).
    pub(super) fn on_epoch_certificates(
        &mut self,
        now: Timestamp,
        peer: PeerId,
        request: RequestId,
        certs: Vec<EpochCertificate>,
    ) -> Result<(), StoreError> {
        if self.take_request(now, peer, request, 0).is_none() {
            return Ok(());
        }
        let full = certs.len() >= self.config.max_certificates_per_response;
        let mut took = 0;
        for cert in certs
            .into_iter()
            .take(self.config.max_certificates_per_response)
        {
            match self.add_certificate(cert, Some(peer))? {
                Ok(true) => took += 1,
                Ok(false) | Err(ChainError::Gap { .. }) => {}
                Err(ChainError::Invalid(e @ CertificateInvalid::NotTheCheckpoint { .. })) => {
                    // One peer naming another set for the checkpoint's
                    // epoch may lie, or the checkpoint may be wrong: no ban
                    // either way. Once `CHECKPOINT_DISSENTERS` peers have,
                    // the checkpoint is the likelier culprit.
                    self.epochs.dissenters.insert(peer);
                    if self.epochs.dissenters.len() >= CHECKPOINT_DISSENTERS {
                        let reason = format!(
                            "--trust-checkpoint does not match the network: {} peers certify another set ({e})",
                            self.epochs.dissenters.len()
                        );
                        self.epochs.broken = Some(reason.clone());
                        self.emit(Event::SyncFailed { reason });
                    }
                    return Ok(());
                }
                Err(ChainError::Invalid(e)) => {
                    self.ban_peer(
                        now,
                        peer,
                        &format!("served a forged epoch certificate: {e}"),
                    );
                    return Ok(());
                }
                Err(ChainError::Conflict(epoch)) => {
                    let reason = format!(
                        "two certified validator sets for epoch {epoch}: keys of an old set signed a fork; \
                         restart with --trust-checkpoint EPOCH:SET_HASH from a node you trust"
                    );
                    self.epochs.broken = Some(reason.clone());
                    self.emit(Event::SyncFailed { reason });
                    return Ok(());
                }
            }
        }
        if took > 0 {
            self.reconsider_manifests(now);
        }
        if full && took > 0 {
            // More where these came from.
            if let Some(next) = self.epochs.chain.as_ref().map(CertifiedChain::next_epoch) {
                self.request(now, peer, RequestKind::EpochCertificates { from: next });
            }
        }
        Ok(())
    }
}
