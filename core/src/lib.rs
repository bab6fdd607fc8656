//! # bluepods-core
//!
//! The pure BluePods protocol: domain model, DAG consensus, transaction
//! execution, and the sync state machine that lets a node join a live network
//! or catch up. Nothing here performs IO, reads a clock or draws from the OS
//! random generator; the same inputs and seed always give the same outputs.
//!
//! ## The contract
//!
//! A driver owns one [`Node`] and runs this loop:
//!
//! 1. `Node::new(config, key, store, seed, now)` builds the node (resuming from
//!    `store` if it holds an adopted chain).
//! 2. For every outside event, call `node.handle(now, Input)`; when the time
//!    from `poll_timeout()` arrives, call `node.handle_timeout(now)`; for a
//!    local command, call its method (`submit_transaction`), which returns its
//!    result immediately.
//! 3. After **every** such call, drain `node.poll_action()` until it returns
//!    `None` and execute each [`Action`] in order: send a message, dial,
//!    disconnect, or report an [`Event`].
//! 4. Then read `node.poll_timeout()`, which returns the earliest
//!    `(Timestamp, TimerKind)` the node wants to be woken at, and sleep until
//!    that time or the next input, whichever comes first.
//!
//! `now` is a monotonic [`Timestamp`] in milliseconds supplied by the driver.
//! Storage is synchronous through the [`Store`] trait; batches marked durable
//! are on stable storage when `write` returns, and the node marks durable
//! every batch that backs something it will tell others (its own vertex before
//! broadcast, a commit before it is reported).
//!
//! ## Limits
//!
//! Every queue, buffer and map fed by peers has a maximum in [`NodeConfig`]
//! (or, where validity depends on it, in the genesis [`ChainParams`]); hitting
//! one emits `Event::LimitHit` and refuses the excess.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod admission;
pub mod budget;
pub mod buffer;
pub mod chunk_answer;
pub mod config;
pub mod consensus;
pub mod cov;
pub mod crypto;
pub mod dag;
pub mod epochs;
pub mod evidence;
pub mod exec;
#[cfg(feature = "testing")]
pub mod fuzzing;
pub mod genesis;
#[cfg(feature = "testing")]
pub mod harness;
pub mod header;
pub mod ids;
pub mod interface;
pub mod limits;
pub mod mempool;
pub mod node;
pub mod params;
pub mod peer_stats;
pub mod peers;
pub mod phase;
pub mod progress;
pub mod rng;
pub mod set_changes;
pub mod sig_cache;
pub mod snapshot;
pub mod store;
pub mod tx;
pub mod validators;
pub mod verified_chunk;
pub mod vertex;
pub mod wire;

pub use config::NodeConfig;
pub use crypto::Keypair;
pub use genesis::{ChainParams, Genesis, ValidatorInfo};
pub use ids::{Epoch, Hash, ObjectId, PeerId, PublicKey, Round, Signature, Timestamp};
pub use interface::{
    Action, Channel, ChunkAnswer, CloseCode, Direction, Event, Input, TimerKind, VertexSource,
};
pub use node::produce_api::SubmitError;
pub use node::{
    init_chain, AppliedSnapshot, Node, NodeStatus, PeerStatus, PlanPeer, SyncPlan, ValidatorsStatus,
};
pub use phase::SyncPhase;
pub use store::{MemStore, Store, StoreError};
pub use tx::{Object, Operation, Transaction, TxBody, TxStatus};
pub use vertex::Vertex;
pub use wire::{Message, Role};
