//! One estimator of rate and time left, for everything that reports
//! progress: the snapshot download, the sync plan and the CLI's watch line.
//!
//! Integer arithmetic only (the core is deterministic): a rate is whole
//! units per second over the elapsed time, and the time left assumes that
//! rate holds. A zero elapsed time counts as one millisecond and a zero rate
//! as one unit per second, so neither divides by zero.

/// Work done out of a total, over some elapsed time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    /// Units done (bytes, rounds, …).
    pub done: u64,
    /// Units in all.
    pub total: u64,
    /// Time spent so far.
    pub elapsed_ms: u64,
}

impl Progress {
    /// Units per second so far.
    pub fn per_sec(&self) -> u64 {
        per_sec(self.done, self.elapsed_ms)
    }

    /// Time left at the rate so far.
    pub fn eta_ms(&self) -> u64 {
        let total = self.total.max(1);
        eta_ms(total - self.done.min(total), self.per_sec())
    }
}

/// `units` over `elapsed_ms`, per second.
pub fn per_sec(units: u64, elapsed_ms: u64) -> u64 {
    (u128::from(units) * 1000 / u128::from(elapsed_ms.max(1))) as u64
}

/// Time to do `remaining` units at `per_sec` units per second.
pub fn eta_ms(remaining: u64, per_sec: u64) -> u64 {
    (u128::from(remaining) * 1000 / u128::from(per_sec.max(1))) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_done_in_two_seconds_leaves_two_seconds() {
        let p = Progress {
            done: 500,
            total: 1000,
            elapsed_ms: 2000,
        };
        assert_eq!(p.per_sec(), 250);
        assert_eq!(p.eta_ms(), 2000);
    }

    #[test]
    fn nothing_elapsed_or_nothing_done_does_not_divide_by_zero() {
        assert_eq!(per_sec(7, 0), 7000);
        let idle = Progress {
            done: 0,
            total: 10,
            elapsed_ms: 0,
        };
        assert_eq!(idle.per_sec(), 0);
        assert_eq!(idle.eta_ms(), 10_000);
        let over = Progress {
            done: 20,
            total: 10,
            elapsed_ms: 1000,
        };
        assert_eq!(over.eta_ms(), 0);
    }
}
