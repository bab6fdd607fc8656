//! Typed calls to a node's HTTP API, and transaction building.

use crate::http_client::{get_json, post_json, HttpError};
use bluepods_core::tx::{Object, Operation, Transaction, TxBody, TxStatus};
use bluepods_core::{Hash, Keypair, NodeStatus, ObjectId, Round};
use bluepods_drivers::http::{SubmitRequest, SubmitResponse};

/// A node's API at `addr` (`host:port`).
#[derive(Clone, Debug)]
pub struct Client {
    addr: String,
}

impl Client {
    /// A client for `addr`; a leading `http://` is accepted.
    pub fn new(addr: &str) -> Self {
        Client {
            addr: addr
                .trim_start_matches("http://")
                .trim_end_matches('/')
                .to_string(),
        }
    }

    /// The address.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// `GET /v1/validators`.
    pub fn validators(&self) -> Result<bluepods_core::ValidatorsStatus, HttpError> {
        get_json(&self.addr, "/v1/validators")
    }

    /// `GET /v1/status`.
    pub fn status(&self) -> Result<NodeStatus, HttpError> {
        get_json(&self.addr, "/v1/status")
    }

    /// `POST /v1/tx`.
    pub fn submit(&self, tx: &Transaction) -> Result<Hash, HttpError> {
        let body = SubmitRequest {
            tx: hex::encode(borsh::to_vec(tx).expect("encoding into memory cannot fail")),
        };
        post_json::<_, SubmitResponse>(&self.addr, "/v1/tx", &body).map(|r| r.hash)
    }

    /// `GET /v1/tx/{hash}`.
    pub fn tx_status(&self, hash: &Hash) -> Result<TxStatus, HttpError> {
        get_json(&self.addr, &format!("/v1/tx/{hash}"))
    }

    /// `GET /v1/objects/{id}`; `None` for 404.
    pub fn object(&self, id: &ObjectId) -> Result<Option<Object>, HttpError> {
        match get_json(&self.addr, &format!("/v1/objects/{id}")) {
            Ok(o) => Ok(Some(o)),
            Err(HttpError::Status { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `GET /v1/snapshots`.
    pub fn snapshots(&self) -> Result<Vec<bluepods_drivers::event_loop::SnapshotInfo>, HttpError> {
        get_json(&self.addr, "/v1/snapshots")
    }

    /// `GET /metrics`.
    pub fn metrics(&self) -> Result<String, HttpError> {
        crate::http_client::get_text(&self.addr, "/metrics")
    }
}

/// Builds signed transactions for one sender against one node's chain.
pub struct TxBuilder {
    key: Keypair,
    chain_id: Hash,
    expiry: Round,
}

impl TxBuilder {
    /// A builder that reads the chain id and current round from the node;
    /// transactions expire `ttl_rounds` after its last committed round.
    pub fn from_node(client: &Client, key: Keypair, ttl_rounds: u64) -> Result<Self, String> {
        let status = client.status().map_err(|e| e.to_string())?;
        let chain_id = status
            .chain_id
            .ok_or("the node has not joined a chain yet; try again shortly")?;
        let base = status
            .last_committed_round
            .or(status.highest_round)
            .unwrap_or_default();
        Ok(TxBuilder {
            key,
            chain_id,
            expiry: base.saturating_add(ttl_rounds),
        })
    }

    /// A builder with explicit chain and expiry.
    pub fn new(key: Keypair, chain_id: Hash, expiry: Round) -> Self {
        TxBuilder {
            key,
            chain_id,
            expiry,
        }
    }

    /// The sender's key.
    pub fn key(&self) -> &Keypair {
        &self.key
    }

    /// A signed transaction with a random nonce.
    pub fn build(&self, ops: Vec<Operation>) -> Transaction {
        self.build_with_nonce(rand::random(), ops)
    }

    /// A signed transaction with the given nonce.
    pub fn build_with_nonce(&self, nonce: u64, ops: Vec<Operation>) -> Transaction {
        TxBody {
            chain_id: self.chain_id,
            sender: self.key.public(),
            nonce,
            expiry: self.expiry,
            ops,
        }
        .sign(&self.key)
    }
}
