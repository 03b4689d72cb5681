//! The policy's memory of flaps and the hold-down they earn: a link the
//! route left because it failed waits `hold_down` before it may take the
//! route back, doubled for each further flap within `flap_window` (capped at
//! `hold_down_max`), shrinking again as the flaps age out of the window.

use super::{MAX_FLAPS, Policy};
use crate::shared::time::Millis;
use std::time::Duration;

impl Policy {
    /// Flaps of `link` that still count at `now`.
    pub(super) fn live_flaps<'a>(
        &'a self,
        link: &str,
        now: Millis,
    ) -> impl Iterator<Item = Millis> + 'a {
        let window = self.params.flap_window;
        self.flaps
            .get(link)
            .into_iter()
            .flatten()
            .copied()
            .filter(move |f| now.saturating_sub(*f) < window)
    }

    /// The hold-down for a link with `flaps` flaps in the window.
    pub(super) fn hold_down_of(&self, flaps: usize) -> Duration {
        let p = &self.params;
        let mut d = p.hold_down;
        for _ in 1..flaps {
            if d >= p.hold_down_max {
                break;
            }
            d = d.saturating_mul(2);
        }
        d.min(p.hold_down_max)
    }

    /// The hold-down a link would have to wait now (grows with flaps).
    pub fn hold_down_for(&self, link: &str, now: Millis) -> Duration {
        self.hold_down_of(self.live_flaps(link, now).count())
    }

    /// The earliest time, not before `now`, at which a link whose state last
    /// changed at `since` has served its hold-down, counting the flaps that
    /// expire meanwhile (the hold-down only shrinks while no new flap comes).
    pub(super) fn eligible_at(&self, link: &str, since: Millis, now: Millis) -> Millis {
        let mut live: Vec<Millis> = self.live_flaps(link, now).collect();
        live.sort_unstable();
        let mut start = now;
        for k in 0..=live.len() {
            let t = since.plus(self.hold_down_of(live.len() - k)).max(start);
            match live.get(k) {
                // The k-th oldest flap expires at `end`; until then the count holds.
                Some(f) => {
                    let end = f.plus(self.params.flap_window);
                    if t < end {
                        return t;
                    }
                    start = start.max(end);
                }
                None => return t,
            }
        }
        unreachable!("the last segment is unbounded")
    }

    pub(super) fn record_flap(&mut self, link: &str, now: Millis) {
        let q = self.flaps.entry(link.to_string()).or_default();
        q.push_back(now);
        while q.len() > MAX_FLAPS {
            q.pop_front();
        }
    }

    pub(super) fn forget_old_flaps(&mut self, now: Millis) {
        let window = self.params.flap_window;
        self.flaps.retain(|_, q| {
            q.retain(|f| now.saturating_sub(*f) < window);
            !q.is_empty()
        });
    }
}
