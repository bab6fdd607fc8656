//! Fetching the genesis: after the handshake, a node without a chain asks
//! a ready peer for the genesis document and adopts it only if it hashes
//! to the chain id it expects (pinned with `--chain-id`, or the one its
//! peer announced); any ready peer answers with its own.

use crate::consensus::{Consensus, ConsensusMeta};
use crate::genesis::Genesis;
use crate::ids::{PeerId, Timestamp};
use crate::interface::{Channel, Event};
use crate::node::{Chain, Node};
use crate::store::{read_meta, MetaKey, Store, StoreError};
use crate::wire::{Message, RequestId};

impl<S: Store> Node<S> {
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
        if self.config.sync.default_strategy == crate::config::SyncMode::Snapshot {
            crate::node::init::init_chain_metadata(&mut self.store, &genesis)?;
        } else {
            crate::node::init_chain(&mut self.store, &genesis)?;
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
        });
        self.chain = Some(Chain {
            genesis,
            chain_id,
            consensus,
        });
        self.connect_to_validators(now);
        Ok(())
    }
}
