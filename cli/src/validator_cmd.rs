//! `bluepods validator …`: the validator set as an operator reads it.

use bluepods_core::ValidatorsStatus;
use std::fmt::Write as _;

/// Checks a registration address before it goes on chain for good: a
/// non-empty host without spaces or control characters, and a port from 1
/// to 65535.
pub fn check_address(address: &str) -> Result<(), String> {
    let bad = |why: &str| format!("--address {address:?}: {why} (expected HOST:PORT)");
    let (host, port) = address.rsplit_once(':').ok_or_else(|| bad("no port"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() || host.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad("no host, or a host with spaces"));
    }
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok(()),
        _ => Err(bad("the port is not a number from 1 to 65535")),
    }
}

/// Text from the chain made safe for a terminal.
fn printable(s: &str) -> String {
    bluepods_core::wire::printable(s)
}

/// The set as a table: the epoch line, one line per member (key, weight,
/// anchor duty, address), then registrations to come, candidates waiting
/// for approval, members leaving and validators off anchor duty.
pub fn render(v: &ValidatorsStatus) -> String {
    let mut out = String::new();
    let weight: u64 = v.members.iter().map(|m| m.weight).sum();
    let _ = writeln!(
        out,
        "epoch {} (round {}, {} rounds per epoch): {} members, weight {weight}, quorum {}",
        v.epoch,
        v.round.0,
        v.epoch_rounds,
        v.members.len(),
        v.quorum
    );
    let _ = writeln!(
        out,
        "{:<64}  {:>6}  {:<6}  address",
        "key", "weight", "anchor"
    );
    for m in &v.members {
        let duty = if m.on_anchor_duty { "yes" } else { "no" };
        let address = printable(&m.address);
        let _ = writeln!(out, "{}  {:>6}  {duty:<6}  {address}", m.key, m.weight);
    }
    if v.pending.is_empty() {
        let _ = writeln!(out, "pending registrations: none");
    } else {
        let _ = writeln!(out, "pending registrations:");
        for p in &v.pending {
            let address = printable(&p.address);
            let _ = writeln!(out, "{}  from epoch {}  {address}", p.key, p.from_epoch);
        }
    }
    if v.admission == "open" {
        let _ = writeln!(
            out,
            "admission: OPEN (any registration is admitted; devnets only)"
        );
    } else if v.candidates.is_empty() {
        let _ = writeln!(out, "candidates waiting for approval: none");
    } else {
        let _ = writeln!(
            out,
            "candidates waiting for approval (a quorum of weight admits):"
        );
        for c in &v.candidates {
            let address = printable(&c.address);
            let _ = writeln!(
                out,
                "{}  since epoch {}  approved by weight {} of {}  {address}",
                c.key, c.since_epoch, c.approval_weight, v.quorum
            );
        }
    }
    if let Some(c) = &v.checkpoint {
        let _ = writeln!(
            out,
            "certified through {c} (a --trust-checkpoint for new nodes)"
        );
    }
    for l in &v.leaving {
        let _ = writeln!(out, "leaving: {} out from epoch {}", l.key, l.from_epoch);
    }
    for o in &v.off_anchor_duty {
        let _ = writeln!(
            out,
            "off anchor duty (proven to equivocate): {} from epoch {}",
            o.author, o.from_epoch
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use bluepods_core::node::{
        CandidateStatus, LeavingMember, MemberStatus, OffDutyStatus, PendingMember,
    };
    use bluepods_core::{Keypair, Round};

    #[test]
    fn a_registration_address_needs_a_host_and_a_port() {
        for good in ["127.0.0.1:9000", "node.example:1", "[::1]:9000"] {
            assert_eq!(check_address(good), Ok(()), "{good}");
        }
        for bad in [
            ":",
            "host:",
            ":9000",
            "h:notaport",
            "h:0",
            "h:70000",
            "a b:1",
            "h",
        ] {
            assert!(check_address(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_table_shows_every_member_what_is_pending_and_who_is_off_duty() {
        let (a, b, c, d) = (
            Keypair::from_label("a").public(),
            Keypair::from_label("b").public(),
            Keypair::from_label("c").public(),
            Keypair::from_label("d").public(),
        );
        let v = ValidatorsStatus {
            epoch: 3,
            round: Round(65),
            epoch_rounds: 20,
            quorum: 2,
            members: vec![
                MemberStatus {
                    key: a,
                    address: "127.0.0.1:9000".into(),
                    weight: 1,
                    on_anchor_duty: true,
                },
                MemberStatus {
                    key: b,
                    address: "127.0.0.1:9001".into(),
                    weight: 1,
                    on_anchor_duty: false,
                },
            ],
            pending: vec![PendingMember {
                key: c,
                address: "127.0.0.1:9002".into(),
                from_epoch: 5,
            }],
            leaving: vec![LeavingMember {
                key: a,
                from_epoch: 6,
            }],
            off_anchor_duty: vec![OffDutyStatus {
                author: b,
                from_epoch: 3,
            }],
            admission: "approval".into(),
            checkpoint: Some("3:ab".into()),
            candidates: vec![CandidateStatus {
                key: d,
                address: "127.0.0.1:9003".into(),
                since_epoch: 2,
                approvals: vec![a],
                approval_weight: 1,
            }],
        };
        let text = render(&v);
        assert!(text
            .starts_with("epoch 3 (round 65, 20 rounds per epoch): 2 members, weight 2, quorum 2"));
        assert!(
            text.contains(&format!("{a}       1  yes     127.0.0.1:9000")),
            "{text}"
        );
        assert!(
            text.contains(&format!("{b}       1  no      127.0.0.1:9001")),
            "{text}"
        );
        assert!(
            text.contains(&format!("{c}  from epoch 5  127.0.0.1:9002")),
            "{text}"
        );
        assert!(text.contains(&format!(
            "off anchor duty (proven to equivocate): {b} from epoch 3"
        )));
        assert!(
            text.contains(&format!("leaving: {a} out from epoch 6")),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                "{d}  since epoch 2  approved by weight 1 of 2  127.0.0.1:9003"
            )),
            "{text}"
        );
    }
}
