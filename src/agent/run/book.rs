//! The main loop's own book of its links: the latest facts each worker sent
//! ([`LinkFacts`]), turned into the policy's candidates, the device's
//! `online` and whether only metered links are online. Pure: the loop feeds
//! it notes and asks it questions with the time in hand.

use crate::agent::evidence::{self, Online, Vouch};
use crate::agent::policy::Candidate;
use crate::agent::worker::LinkFacts;
use crate::shared::time::Millis;
use std::collections::BTreeMap;

/// The latest facts per watched link.
#[derive(Debug, Default)]
pub(super) struct Book {
    links: BTreeMap<String, LinkFacts>,
}

impl Book {
    /// Take in a worker's facts.
    pub(super) fn note(&mut self, facts: LinkFacts) {
        self.links.insert(facts.name.clone(), facts);
    }

    /// A link just watched, before its worker says anything: no round in yet
    /// (so the first choice can wait for it). Facts already known are kept.
    pub(super) fn watch(&mut self, facts: LinkFacts) {
        self.links.entry(facts.name.clone()).or_insert(facts);
    }

    /// Forget a link no longer watched.
    pub(super) fn remove(&mut self, name: &str) {
        self.links.remove(name);
    }

    /// The policy's candidates among the links `managed` accepts.
    pub(super) fn candidates(&self, managed: &dyn Fn(&str) -> bool) -> Vec<Candidate> {
        self.links
            .values()
            .filter(|f| managed(&f.name))
            .map(|f| Candidate {
                name: f.name.clone(),
                priority: f.priority,
                metered: f.metered,
                state: f.state,
                since: f.since,
                last_clean: f.last_clean,
                failing_since: f.failing_since,
            })
            .collect()
    }

    /// Is the device online at `now` ([`evidence::device_online`] over every link)?
    pub(super) fn online(&self, now: Millis) -> Online {
        evidence::device_online(
            now,
            self.links.values().map(|f| Vouch {
                state: f.state,
                last_clean: f.last_clean,
                window: f.window,
            }),
        )
    }

    /// Are the only links online metered ones (and some online)?
    pub(super) fn only_metered_online(&self) -> bool {
        let mut online = self.links.values().filter(|f| f.state.is_online());
        let mut any = false;
        let all_metered = online.all(|f| {
            any = true;
            f.metered
        });
        any && all_metered
    }
}
