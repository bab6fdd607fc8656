//! Coverage marks: a named counter that a test can assert was hit, so a
//! regression test proves it went down the path it was written for, not
//! merely that the end state looks right.
//!
//! `mark("name")` on a key path counts one hit per thread; `hits("name")`
//! reads the count. Counting happens only with the `testing` feature (the
//! harness runs a whole cluster on the test's thread); without it `mark`
//! does nothing and costs nothing.

#[cfg(feature = "testing")]
use std::cell::RefCell;
#[cfg(feature = "testing")]
use std::collections::BTreeMap;

#[cfg(feature = "testing")]
thread_local! {
    static HITS: RefCell<BTreeMap<&'static str, u64>> = const { RefCell::new(BTreeMap::new()) };
}

/// Counts one pass through the path `name`.
#[inline]
pub fn mark(name: &'static str) {
    #[cfg(feature = "testing")]
    HITS.with(|h| *h.borrow_mut().entry(name).or_default() += 1);
    #[cfg(not(feature = "testing"))]
    let _ = name;
}

/// How often this thread passed `name` so far.
#[cfg(feature = "testing")]
pub fn hits(name: &str) -> u64 {
    HITS.with(|h| h.borrow().get(name).copied().unwrap_or(0))
}

#[cfg(all(test, feature = "testing"))]
mod tests {
    #[test]
    fn a_mark_counts_on_its_own_thread() {
        let before = super::hits("cov-self-test");
        super::mark("cov-self-test");
        assert_eq!(super::hits("cov-self-test"), before + 1);
        let other = std::thread::spawn(|| super::hits("cov-self-test"))
            .join()
            .unwrap();
        assert_eq!(other, 0);
    }
}
