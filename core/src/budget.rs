//! Budgets a peer spends: what its unsolicited input may cost the node per
//! second, refilled continuously (a token bucket in the node's own time, so
//! the core stays deterministic).

use crate::ids::Timestamp;

/// Signature checks one peer's gossip may still cost: a bucket of
/// `rate` checks refilled continuously, full at start.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SignatureBudget {
    spent: u64,
    at: Option<Timestamp>,
}

impl SignatureBudget {
    /// Takes `checks` from a bucket of `rate` per second, if it holds them.
    pub fn take(&mut self, now: Timestamp, rate: u64, checks: u64) -> bool {
        let refill = self
            .at
            .map_or(u64::MAX, |at| now.ms_since(at).saturating_mul(rate) / 1_000);
        self.spent = self.spent.saturating_sub(refill);
        if refill > 0 || self.at.is_none() {
            self.at = Some(now);
        }
        // One vertex may cost more than a whole second's budget (a full
        // vertex carries thousands of transactions): it passes on an empty
        // bucket and leaves it in debt.
        if self.spent >= rate {
            return false;
        }
        self.spent = self.spent.saturating_add(checks);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_refills_at_its_rate_and_lets_one_large_vertex_through_into_debt() {
        let mut b = SignatureBudget::default();
        let t = Timestamp(1_000);
        assert!(b.take(t, 100, 60));
        assert!(
            b.take(t, 100, 60),
            "40 left: a vertex of 60 passes into debt"
        );
        assert!(!b.take(t, 100, 1));
        // 120 spent; a tenth of a second refills 10, not enough.
        assert!(!b.take(t.plus_ms(100), 100, 1));
        // Four tenths more refill 40: 70 spent, room again.
        assert!(b.take(t.plus_ms(500), 100, 1));
    }
}
