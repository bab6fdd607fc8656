//! Fetching the genesis: after the handshake, a node without a chain asks
//! ready peers for the genesis document and adopts it only if it hashes
//! to the chain id it expects (pinned with `--chain-id`, or the one its
//! peers announced); any ready peer answers with its own.
//!
//! Without `--chain-id` the node trusts no chain id until the peers it
//! dialed (its bootstrap peers and those it learned of; anyone can dial in)
//! agree on it: it waits until `genesis_agreement_peers` ready peers announce
//! one — or until no more peers are on the way (dials, handshakes, peer
//! exchange), or `genesis_agreement_wait_ms` has passed — and if any two
//! announce different chains it stops with an error naming both, since it
//! cannot tell which network its operator meant. With a single peer that
//! is trust on first use, and the log says so.

use crate::config::SyncMode;
use crate::consensus::{Consensus, ConsensusMeta};
use crate::genesis::Genesis;
use crate::ids::{Hash, PeerId, Timestamp};
use crate::interface::{Channel, Event};
use crate::node::fetch::RequestKind;
use crate::node::{Chain, Node};
use crate::store::{read_meta, MetaKey, Store, StoreError};
use crate::wire::{Message, RequestId};
use std::collections::BTreeMap;

/// Peers asked for the genesis at once.
const GENESIS_SOURCES: usize = 3;

impl<S: Store> Node<S> {
    /// Without a chain: once the peers agree on one (see the module docs),
    /// asks up to `GENESIS_SOURCES` of them for its genesis at once — the
    /// first good answer wins, so one that withholds it costs nothing.
    pub(in crate::node) fn ask_for_genesis(&mut self, now: Timestamp) {
        // Only peers this node dialed have a say: anyone can dial in.
        let mut announced: BTreeMap<Hash, Vec<PeerId>> = BTreeMap::new();
        for p in self
            .peers
            .ready()
            .filter(|p| p.direction == crate::interface::Direction::Outbound)
        {
            if let Some(id) = p.chain_id {
                announced.entry(id).or_default().push(p.id);
            }
        }
        let Some((_, agreeing)) = announced.iter().next() else {
            // Nobody announces a chain (yet, or any more): a peer that
            // comes later waits its own full time.
            self.joined.genesis_wait_since = None;
            return;
        };
        if self.config.trusted_chain_id.is_none() {
            if announced.len() > 1 {
                self.peers_disagree_on_the_chain(now, &announced);
                return;
            }
            let since = *self.joined.genesis_wait_since.get_or_insert(now);
            let more_coming = self.peers.peers.values().any(|p| !p.is_ready())
                || self.peers.targets.values().any(|t| t.dialing)
                || self
                    .requests
                    .in_flight
                    .values()
                    .any(|r| r.kind == RequestKind::Peers);
            let waited = now >= since.plus_ms(self.config.sync.genesis_agreement_wait_ms);
            if agreeing.len() < self.config.sync.genesis_agreement_peers && more_coming && !waited {
                return;
            }
        }
        let agreeing = agreeing.clone();
        let asked: Vec<PeerId> = self
            .requests
            .in_flight
            .values()
            .filter(|r| r.kind == RequestKind::Genesis)
            .map(|r| r.peer)
            .collect();
        let limit = GENESIS_SOURCES.saturating_sub(asked.len());
        let sources: Vec<PeerId> = agreeing
            .into_iter()
            .filter(|p| !asked.contains(p))
            .take(limit)
            .collect();
        for peer in sources {
            self.request(now, peer, RequestKind::Genesis);
        }
    }

    /// Two peers announce different chains and no `--chain-id` says which
    /// is meant: a one-shot sync fails, a daemon backs off and looks again
    /// (the liar may be gone by then), each time with the same error.
    fn peers_disagree_on_the_chain(
        &mut self,
        now: Timestamp,
        announced: &BTreeMap<Hash, Vec<PeerId>>,
    ) {
        crate::cov::mark("peers_disagree_on_the_chain");
        let sides: Vec<String> = announced
            .iter()
            .map(|(id, peers)| {
                let addrs: Vec<&str> = peers
                    .iter()
                    .filter_map(|p| self.peers.peers.get(p).map(|p| p.addr.as_str()))
                    .collect();
                format!(
                    "{} peer(s) announce chain {} ({})",
                    peers.len(),
                    id.short(),
                    addrs.join(", ")
                )
            })
            .collect();
        let reason = format!(
            "peers disagree on the chain: {}; pass --chain-id to choose the network to join",
            sides.join(", ")
        );
        self.joined.genesis_wait_since = None;
        // A genesis asked for before the disagreement showed must not be
        // adopted when it arrives.
        let asked: Vec<RequestId> = self
            .requests
            .in_flight
            .iter()
            .filter(|(_, r)| r.kind == RequestKind::Genesis)
            .map(|(id, _)| *id)
            .collect();
        for id in asked {
            let Some(r) = self.requests.in_flight.remove(&id) else {
                continue;
            };
            if let Some(p) = self.peers.peers.get_mut(&r.peer) {
                p.stats.on_cancelled(now);
            }
        }
        if self.config.sync.give_up_after_retries {
            self.emit(Event::SyncFailed { reason });
            self.become_(crate::node::state::SyncState::Failed);
        } else {
            self.back_off(now, reason);
        }
    }

    pub(in crate::node) fn serve_genesis(&mut self, peer: PeerId, request: RequestId) {
        let msg = match &self.chain {
            Some(c) => Message::Genesis {
                request,
                genesis: c.genesis.clone(),
            },
            None => Message::NotAvailable {
                request,
                reason: "no genesis yet".into(),
            },
        };
        self.send(peer, Channel::Request, msg);
    }

    /// A genesis arrived: adopt it if its hash is the chain we expect.
    pub(in crate::node) fn on_genesis(
        &mut self,
        now: Timestamp,
        peer: PeerId,
        id: RequestId,
        genesis: Genesis,
    ) -> Result<(), StoreError> {
        if self.take_request(now, peer, id, 0).is_none() || self.chain.is_some() {
            return Ok(());
        }
        let expected = self
            .config
            .trusted_chain_id
            .or_else(|| self.peers.peers.get(&peer).and_then(|p| p.chain_id));
        let chain_id = genesis.chain_id();
        if Some(chain_id) != expected {
            self.ban_peer(now, peer, "genesis does not hash to the announced chain id");
            return Ok(());
        }
        if let Err(e) = genesis.validate() {
            self.ban_peer(now, peer, &format!("invalid genesis: {e}"));
            return Ok(());
        }
        // The genesis objects are written now only by a node that will
        // surely execute on them: one joining by range, or a validator of
        // the genesis (a young network commits at once). Otherwise they
        // wait for the first commit, and a snapshot applied first replaces
        // them unwritten (`init::init_chain_deferred`).
        let in_genesis = genesis
            .validators
            .iter()
            .any(|v| v.key == self.key.public());
        if self.config.sync.default_strategy == SyncMode::Range || in_genesis {
            crate::node::init_chain(&mut self.store, &genesis)?;
        } else {
            crate::node::init::init_chain_deferred(&mut self.store, &genesis)?;
        }
        let meta: ConsensusMeta = read_meta(&self.store, MetaKey::Consensus)?
            .ok_or_else(|| StoreError::Corrupt("consensus metadata missing after init".into()))?;
        let consensus = Consensus::new(
            meta,
            genesis.params.clone(),
            self.config.max_pending_vertices,
            self.config.max_rounds_ahead,
        );
        self.emit(Event::GenesisAdopted {
            chain_id,
            pinned: self.config.trusted_chain_id.is_some(),
            validators: genesis.validators.len(),
            admission: genesis.params.admission,
        });
        self.chain = Some(Chain {
            genesis,
            chain_id,
            consensus,
        });
        self.open_epoch_chain()?;
        self.connect_to_validators(now);
        Ok(())
    }
}
