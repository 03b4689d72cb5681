//! Making the reports page's reports and keeping them a while: one making
//! per report at a time in a task of its own, a bounded number at once and
//! in the making, the reports made lately ([`Made`]), and the default
//! report made ahead ([`premake`]).

use super::{PATH, ReportParams, bad, today};
use crate::collector::last_seen::now_ms;
use crate::collector::model::Branch;
use crate::collector::report::{self, Report, ReportError, ReportQuery};
use crate::collector::web::WebState;
use crate::collector::web::session::{PageError, store_err};
use std::sync::Arc;

/// How long a report made is shown again (paging through it, downloading
/// it) before it is made anew.
pub const KEEP_MS: i64 = 5 * 60_000;
/// Reports being made or waiting their turn, at most; past that the page
/// answers 503.
pub const QUEUED: usize = 8;
/// Reports kept at most.
pub(super) const KEPT: usize = 8;
/// Rows kept over all reports kept (a report by device over 100,000
/// devices is 100,000 rows, tens of MB); a larger report is not kept.
pub(super) const MAX_KEPT_ROWS: usize = 200_000;

/// The reports made lately, by reader's branch and parameters, newest
/// last. Pure: the caller gives the time.
#[derive(Debug, Default)]
pub struct Made {
    pub(super) kept: std::collections::VecDeque<(String, i64, Arc<Report>)>,
}

impl Made {
    /// The report kept under `key`, and when it was made, if made within
    /// [`KEEP_MS`] of `now_ms`; those older are let go.
    pub fn get(&mut self, key: &str, now_ms: i64) -> Option<(Arc<Report>, i64)> {
        self.kept
            .retain(|(_, at, _)| (0..KEEP_MS).contains(&(now_ms - at)));
        self.kept
            .iter()
            .rev()
            .find(|(k, _, _)| k == key)
            .map(|(_, at, r)| (r.clone(), *at))
    }

    /// Keep `report`, made at `now_ms`, under `key` (unless it alone is
    /// over the rows kept); the oldest go past [`KEPT`] reports or
    /// [`MAX_KEPT_ROWS`] rows.
    pub fn put(&mut self, key: String, now_ms: i64, report: Arc<Report>) {
        self.kept
            .retain(|(k, at, _)| *k != key && (0..KEEP_MS).contains(&(now_ms - at)));
        if report.rows.len() > MAX_KEPT_ROWS {
            return;
        }
        self.kept.push_back((key, now_ms, report));
        let rows = |m: &Self| m.kept.iter().map(|(_, _, r)| r.rows.len()).sum::<usize>();
        while self.kept.len() > KEPT || rows(self) > MAX_KEPT_ROWS {
            self.kept.pop_front();
        }
    }
}

pub(super) fn kept(ws: &WebState, key: &str) -> Option<(Arc<Report>, i64)> {
    let mut made = ws.made.lock().unwrap_or_else(|e| e.into_inner());
    made.get(key, now_ms())
}

/// A key's place in [`WebState::making`], let go when its making ends
/// (made, failed or cancelled), unless another has taken the key since.
struct Making<'a> {
    ws: &'a WebState,
    key: &'a str,
    one: &'a Arc<tokio::sync::Mutex<()>>,
}

impl Drop for Making<'_> {
    fn drop(&mut self) {
        let mut making = self.ws.making.lock().unwrap_or_else(|e| e.into_inner());
        if making
            .get(self.key)
            .is_some_and(|m| Arc::ptr_eq(m, self.one))
        {
            making.remove(self.key);
        }
    }
}

/// Make the report `p` for the viewer, as the uptime API makes it, or show
/// the one made for the same branch and parameters within [`KEEP_MS`];
/// with when it was made. It is made in a task of its own, [`CONCURRENT`]
/// at a time, once per key at a time (a second request for the same waits
/// for the first's): a report that takes longer than the page's time limit is
/// still made and kept, and the next view shows it. At most [`QUEUED`] are
/// in the making (else 503).
pub(super) async fn make(
    ws: &WebState,
    access: &crate::collector::access::Access,
    p: &ReportParams,
) -> Result<(Arc<Report>, i64), PageError> {
    let key = format!("{:?} {}", access.branch, p.url(PATH, 1));
    if let Some(r) = kept(ws, &key) {
        return Ok(r);
    }
    let q = ReportQuery::parse(&p.raw()).map_err(|e| bad(e.message))?;
    let q = ReportQuery {
        schedule: q.schedule.with_holidays(ws.api.holidays().clone()),
        ..q
    };
    let place = ws
        .queued
        .clone()
        .try_acquire_owned()
        .map_err(|_| PageError::Busy)?;
    let (ws2, access) = (ws.clone(), access.clone());
    let task = tokio::spawn(async move {
        let _place = place;
        // One making per key: a request for a report already in the
        // making (another view, or one made ahead) waits for it instead of
        // making it again beside it.
        let one = ws2
            .making
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(key.clone())
            .or_default()
            .clone();
        let _one = one.lock().await;
        let _done = Making {
            ws: &ws2,
            key: &key,
            one: &one,
        };
        if let Some(r) = kept(&ws2, &key) {
            return Ok(r);
        }
        let _turn = ws2
            .reports
            .acquire()
            .await
            .map_err(|_| store_err("the collector is stopping"))?;
        let at = now_ms();
        let r = report::run_report(ws2.api.store().as_ref(), &q, Some(&access), at)
            .await
            .map_err(|e| match e {
                // A branch the viewer does not see is as one that is not there.
                ReportError::Param(p)
                    if matches!(p.field, "division" | "district" | "upazila" | "office") =>
                {
                    PageError::NotFound
                }
                ReportError::Param(p) => bad(p.message),
                e => store_err(e),
            })?;
        let r = Arc::new(r);
        ws2.made
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .put(key.clone(), at, r.clone());
        Ok((r, at))
    });
    task.await
        .map_err(|e| store_err(format!("making the report: {e}")))?
}

/// Most branches whose default report is made ahead ([`premake`]): the
/// whole fleet and the first viewers' branches, within [`Made`]'s bound.
pub const PREMADE: usize = 4;

/// Make the page's default report (the last 7 whole days, by office, in
/// office hours) ahead, as [`make`] would on a first view, for the whole
/// fleet (when a user sees it) and for the branches of viewers limited to
/// one, those of the most viewers first (at most [`PREMADE`] in all), so
/// that the report most views ask for
/// is found kept. One at a time, in [`make`]'s turns: a user's report
/// waits at most behind one of these.
pub(in crate::collector::web) async fn premake(ws: &WebState) {
    let users = match ws.api.store().list_users().await {
        Ok(u) => u,
        Err(e) => {
            tracing::warn!("dashboard: reports made ahead: users not read: {e}");
            return;
        }
    };
    // The viewers' branches, those of the most viewers first.
    let mut counted: Vec<(Branch, usize)> = Vec::new();
    for b in users.iter().filter_map(|u| u.branch.as_ref()) {
        match counted.iter_mut().find(|(x, _)| x == b) {
            Some((_, n)) => *n += 1,
            None => counted.push((b.clone(), 1)),
        }
    }
    counted.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
    let mut branches: Vec<Option<Branch>> = Vec::new();
    if users.iter().any(|u| u.branch.is_none()) {
        branches.push(None);
    }
    branches.extend(counted.into_iter().map(|(b, _)| Some(b)));
    branches.truncate(PREMADE);
    let Ok(p) = ReportParams::parse(&Default::default(), today(now_ms())) else {
        return;
    };
    for branch in branches {
        let access = crate::collector::access::Access {
            token: "dashboard: a report made ahead".into(),
            role: if branch.is_none() {
                crate::collector::model::Role::Admin
            } else {
                crate::collector::model::Role::Read
            },
            branch,
        };
        let started = std::time::Instant::now();
        match make(ws, &access, &p).await {
            Ok((r, _)) => tracing::debug!(
                branch = ?access.branch,
                rows = r.rows.len(),
                took_ms = started.elapsed().as_millis() as u64,
                "dashboard: the default report is made ahead"
            ),
            Err(e) => {
                tracing::warn!(branch = ?access.branch, "dashboard: a report made ahead failed: {e:?}")
            }
        }
    }
}
