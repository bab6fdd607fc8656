//! Signature checks of a range answer, started on the worker pool while the
//! event loop takes the same answer in order.
//!
//! A node catching up spends most of its time verifying: every vertex of a
//! 64-round window and every transaction in it, one ed25519 check each, on
//! the event loop (issue 14: over half of a restarted validator's CPU). The
//! loop must stay the one place that decides, so it still checks every
//! signature itself, in order. What the workers do is run the same checks
//! ahead of it, from the far end of the answer: a check that passes is
//! remembered process-wide (`bluepods_core::sig_cache`), and when the loop
//! reaches that vertex its check is a lookup. The loop never waits for a
//! worker, an answer is never held back or reordered, and no result the
//! loop reaches can differ: only passes are remembered, and a pass is a
//! pure function of key, message and signature.
//!
//! Only answers the node waits for are worked on ([`Node::awaits_answer`]),
//! so a peer cannot make the workers check anything it was not asked for,
//! and only big ones ([`MIN_CHECKS`]): a few signatures are not worth a
//! thread. A slice starts only on a worker free now: nothing queues, so
//! copies of answers never pile up behind busy workers (each up to
//! `max_response_bytes`), and the loop checks any slice no worker took.

use bluepods_core::vertex::Vertex;
use bluepods_core::wire::Message;
use bluepods_core::{Node, PeerId, Store};
use std::sync::Arc;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

/// Fewest signature checks in an answer for the workers to take part.
pub const MIN_CHECKS: u64 = 256;

/// If `msg` is an awaited range or fetch answer from `peer` with at least
/// [`MIN_CHECKS`] signatures, starts its checks on the workers free now
/// (`permits`, one per worker), each on a slice of it, far end first.
/// Returns the jobs started, none when the answer is not worked on: the
/// loop never waits for them (a test does).
pub(crate) fn start<S: Store>(
    node: &Node<S>,
    peer: PeerId,
    msg: &Message,
    permits: &Arc<Semaphore>,
) -> Vec<JoinHandle<()>> {
    let Message::Vertices {
        request, vertices, ..
    } = msg
    else {
        return Vec::new();
    };
    let checks: u64 = vertices.iter().map(Vertex::signature_checks).sum();
    let Some(chain) = node.chain() else {
        return Vec::new();
    };
    if checks < MIN_CHECKS || !node.awaits_answer(peer, *request) {
        return Vec::new();
    }
    // The loop takes them in round order (`on_vertices`).
    let mut vertices = vertices.clone();
    vertices.sort_by_key(|v| v.round());
    let (chain_id, params) = (chain.chain_id, Arc::new(chain.genesis.params.clone()));
    let workers = crate::profile::check_workers().max(1);
    let slice = vertices.len().div_ceil(workers).max(1);
    let vertices = Arc::new(vertices);
    let mut jobs = Vec::new();
    for start in (0..vertices.len()).step_by(slice) {
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            break; // every worker is busy: the loop checks the rest
        };
        let end = (start + slice).min(vertices.len());
        let (vertices, params) = (vertices.clone(), params.clone());
        jobs.push(tokio::task::spawn_blocking(move || {
            let _permit = permit;
            // From the far end of the slice: the loop comes from the near
            // end, and they meet somewhere in between.
            for v in vertices[start..end].iter().rev() {
                let _ = v.verify(&chain_id, &params);
            }
        }));
    }
    jobs
}

#[cfg(test)]
mod tests {
    use super::*;
    use bluepods_core::harness::{attach_peer, signed_tx, test_genesis, test_vertex};
    use bluepods_core::vertex::VertexBody;
    use bluepods_core::{
        cov, init_chain, Action, ChainParams, Input, Keypair, MemStore, NodeConfig, Operation,
        Role, Round, Timestamp,
    };

    const NOW: Timestamp = Timestamp(1_000);

    /// The workers check an answer the node asked for, so that the loop's
    /// own checks of it are lookups; an answer nobody asked for is not
    /// touched, whatever it holds.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_awaited_answer_is_checked_ahead_of_the_loop_and_an_unasked_one_is_not() {
        let (genesis, keys) = test_genesis(1, ChainParams::default());
        let mut store = MemStore::new();
        init_chain(&mut store, &genesis).unwrap();
        let config = NodeConfig {
            role: Role::Listener,
            ..NodeConfig::default()
        };
        let me = Keypair::from_label("prewarm-node");
        let mut node = Node::new(config, me, store, 1, NOW).unwrap();
        let peer = PeerId(1);
        attach_peer(
            &mut node,
            NOW,
            peer,
            &Keypair::from_label("prewarm-peer"),
            Role::Listener,
        )
        .unwrap();
        while node.poll_action().is_some() {}
        // A vertex of 300 transactions no check has seen (their sender is
        // this test's own), and a child that cites it: the node asks for it.
        let sender = Keypair::from_label("prewarm-sender");
        let create = || vec![Operation::Create { data: vec![7] }];
        let parent = VertexBody {
            chain_id: genesis.chain_id(),
            round: Round(0),
            author: keys[0].public(),
            parents: Vec::new(),
            txs: (0..300)
                .map(|i| signed_tx(&genesis, &sender, i, create()))
                .collect(),
            attestation: None,
            evidence: Vec::new(),
            epoch_vote: None,
        }
        .sign(&keys[0]);
        let child = test_vertex(&genesis, &keys[0], 1, &[parent.hash()]);
        node.handle(
            NOW,
            Input::Message {
                peer,
                msg: Message::Vertex(child),
            },
        );
        let mut asked = None;
        while let Some(a) = node.poll_action() {
            if let Action::Send {
                msg: Message::GetVertices { request, .. },
                ..
            } = a
            {
                asked = Some(request);
            }
        }
        let request = asked.expect("the node asks for the parent");
        let answer = |request| Message::Vertices {
            request,
            vertices: vec![parent.clone()],
            through: None,
        };
        let permits = Arc::new(Semaphore::new(2));
        let unasked = bluepods_core::wire::RequestId(request.0 + 1_000);
        assert!(start(&node, peer, &answer(unasked), &permits).is_empty());
        assert!(start(&node, PeerId(9), &answer(request), &permits).is_empty());
        let busy = Arc::new(Semaphore::new(0));
        assert!(
            start(&node, peer, &answer(request), &busy).is_empty(),
            "no worker free, nothing queued"
        );
        let jobs = start(&node, peer, &answer(request), &permits);
        assert!(!jobs.is_empty());
        for j in jobs {
            j.await.unwrap();
        }
        let before = cov::hits("signature_check_remembered");
        let params = genesis.params.clone();
        assert_eq!(
            parent.verify(&genesis.chain_id(), &params),
            Ok(parent.hash())
        );
        assert_eq!(
            cov::hits("signature_check_remembered") - before,
            parent.signature_checks(),
            "every check of the answer is a lookup on the loop's thread"
        );
    }
}
