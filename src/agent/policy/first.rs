//! The first choice after the agent starts. Links prove themselves in the
//! order their first rounds come back, and on a busy machine a worse link can
//! answer first: taking it would mean a needless failover now and a fail-back
//! a hold-down later. So the first choice waits, a short bounded time, for a
//! better link whose first round is not in yet.

use super::Candidate;
use crate::wire::LinkState;

/// The better link to wait for before choosing `best` first: one that would
/// rank before it once up (not metered where `best` is, or a lower priority)
/// and has no round in yet (`down`, never clean, never failed). The best such
/// link, if any.
pub(super) fn awaited<'a>(ranked: &[&'a Candidate], best: &Candidate) -> Option<&'a Candidate> {
    let key = |c: &Candidate| (c.metered, c.priority);
    ranked
        .iter()
        .copied()
        .filter(|c| {
            c.state == LinkState::Down && c.last_clean.is_none() && c.failing_since.is_none()
        })
        .filter(|c| key(c) < key(best))
        .min_by(|a, b| key(a).cmp(&key(b)).then_with(|| a.name.cmp(&b.name)))
}
