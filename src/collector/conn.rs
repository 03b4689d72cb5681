//! The connection guard: what keeps idle, slow and surplus connections from
//! starving the collector (and `/health`) of sockets and memory. Each
//! accepted connection is admitted (or closed) by [`GuardedMake`] inside
//! axum-server's accept loop, before anything else is spent on it, and its
//! stream and service are then wrapped by the acceptor ([`GuardAcceptor`]),
//! under TLS when there is TLS:
//!
//! - **Header timeout**: a new connection must deliver its first request
//!   head (TLS handshake included) within `header_timeout` (the server
//!   spreads these deadlines over its second half, so a flood opened at once
//!   does not time out and return at once); on a kept connection, a request
//!   head must be complete within `header_timeout` of its first byte.
//! - **Idle timeout**: a kept connection on which nothing arrives for
//!   `idle_timeout` after an answer is closed.
//! - **Cap**: at most `max_connections` open. A new connection beyond it
//!   closes a connection waiting for a request (idle, or still sending a
//!   head), the oldest of the peer address with the most such connections,
//!   and takes its place. It is closed at once instead when its own address
//!   has that many waiting (a flood only displaces itself, so it is
//!   refused, cheaply, in the accept loop), or when every connection is
//!   answering a request. While the connections told to close are
//!   still closing (a few beyond the cap, [`ConnLimits::hard_max`]), the
//!   accept loop waits: new connections wait in the kernel's queue and hold
//!   no file. So a flood of idle or slow connections from one place cannot
//!   keep a health check or an agent out, nor exhaust the open-file limit.
//!
//! A connection is handed to TLS and hyper only once its first byte arrives
//! (a silent one holds no more than its task and socket). The timeouts are
//! then enforced by the stream wrapper ([`Guarded`]): hyper reads from it
//! whenever it waits for a request, and a read past the deadline fails,
//! which closes the connection. The service wrapper marks when a
//! request is being answered (from the call until its response body is
//! written or dropped), during which no timeout of this module applies (the
//! ingest handler has its own body timeouts).

use crate::collector::metrics::CollectorMetrics;
use futures::task::AtomicWaker;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::Duration;
use tokio::time::Instant;

/// The guard's settings (from `[collector]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnLimits {
    pub max_connections: usize,
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    /// A new connection's deadline comes up to this much before
    /// `header_timeout`, at random: connections opened together (a flood)
    /// are not all closed, and do not all come back, at the same moment.
    pub first_spread: Duration,
}

impl ConnLimits {
    /// Connections that may be open while closed ones finish closing: the
    /// cap plus a little room for connections already told to close (the
    /// open-file limit must cover this many).
    pub fn hard_max(&self) -> usize {
        self.max_connections + Self::slack(self.max_connections)
    }

    fn slack(max: usize) -> usize {
        (max / 16).max(16)
    }

    /// These limits with `max_connections` lowered, when needed, so that
    /// [`ConnLimits::hard_max`] fits in `files` open files.
    pub fn fit(self, files: usize) -> ConnLimits {
        if self.hard_max() <= files {
            return self;
        }
        let max = (files / 17 * 16).min(files.saturating_sub(16)).max(1);
        ConnLimits {
            max_connections: max.min(self.max_connections),
            ..self
        }
    }
}

/// Why a waiting connection is closed when its deadline passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reason {
    Header,
    Idle,
}

impl Reason {
    fn label(self) -> &'static str {
        match self {
            Reason::Header => "header",
            Reason::Idle => "idle",
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Phase {
    /// No request being answered: the connection waits for one (or for the
    /// rest of its head). `since` orders eviction.
    Waiting {
        since: Instant,
        deadline: Instant,
        reason: Reason,
        /// A byte of the next request has arrived (the head timeout runs).
        started: bool,
    },
    /// Requests being answered (their responses not yet written).
    Busy(u32),
}

/// One connection's shared state.
struct Conn {
    id: u64,
    /// The peer's address: at the cap, the address with the most waiting
    /// connections gives one up first.
    ip: IpAddr,
    phase: Mutex<Phase>,
    /// Closed for the cap: the next read ends the connection.
    evicted: AtomicBool,
    /// The connection is gone (it unregistered).
    closed: AtomicBool,
    /// The task reading the stream, woken on eviction.
    waker: AtomicWaker,
}

/// A connection's place under the cap, given back when the last holder
/// (its stream and its service) is dropped.
struct Admission {
    conn: Arc<Conn>,
    shared: Arc<Shared>,
}

impl Drop for Admission {
    fn drop(&mut self) {
        self.shared.close(&self.conn);
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Conn {
    fn phase(&self) -> Phase {
        *lock(&self.phase)
    }
}

#[derive(Default)]
struct Registry {
    /// Connections admitted and not yet gone (evicted ones until they close).
    open: usize,
    /// Per peer address, its connections waiting for a request, oldest
    /// first: the eviction candidates.
    waiting: HashMap<IpAddr, BTreeMap<(Instant, u64), Arc<Conn>>>,
    /// Peer addresses by how many of their connections wait.
    by_count: BTreeSet<(usize, IpAddr)>,
    /// The accept loop, parked while [`ConnLimits::hard_max`] are open.
    accept: Option<Waker>,
}

impl Registry {
    fn count(&self, ip: IpAddr) -> usize {
        self.waiting.get(&ip).map_or(0, BTreeMap::len)
    }

    fn add_waiting(&mut self, conn: &Arc<Conn>, since: Instant) {
        let n = self.count(conn.ip);
        self.by_count.remove(&(n, conn.ip));
        self.by_count.insert((n + 1, conn.ip));
        self.waiting
            .entry(conn.ip)
            .or_default()
            .insert((since, conn.id), conn.clone());
    }

    fn remove_waiting(&mut self, conn: &Conn, since: Instant) {
        let Some(map) = self.waiting.get_mut(&conn.ip) else {
            return;
        };
        if map.remove(&(since, conn.id)).is_none() {
            return;
        }
        let n = map.len();
        if n == 0 {
            self.waiting.remove(&conn.ip);
        }
        self.by_count.remove(&(n + 1, conn.ip));
        if n > 0 {
            self.by_count.insert((n, conn.ip));
        }
    }

    /// The oldest waiting connection of the address with the most of them,
    /// unless `newcomer` has as many: it would only displace its own.
    fn pop_victim(&mut self, newcomer: IpAddr) -> Option<Arc<Conn>> {
        let &(most, ip) = self.by_count.last()?;
        if self.count(newcomer) >= most {
            return None;
        }
        let (&(since, _), conn) = self.waiting.get(&ip)?.first_key_value()?;
        let conn = conn.clone();
        self.remove_waiting(&conn, since);
        Some(conn)
    }

    #[cfg(test)]
    fn waiting_total(&self) -> usize {
        self.by_count.iter().map(|&(n, _)| n).sum()
    }
}

/// What every connection of one server shares.
struct Shared {
    limits: ConnLimits,
    registry: Mutex<Registry>,
    next_id: AtomicU64,
    metrics: Arc<CollectorMetrics>,
}

impl Shared {
    /// Ready to admit a connection unless [`ConnLimits::hard_max`] are open
    /// (evicted ones still closing): the accept loop then waits, and new
    /// connections wait in the kernel's queue, holding no file.
    fn poll_room(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut reg = lock(&self.registry);
        if reg.open < self.limits.hard_max() {
            return Poll::Ready(());
        }
        reg.accept = Some(cx.waker().clone());
        Poll::Pending
    }

    /// Register a new connection from `ip`, making room by eviction when at
    /// the cap; `None` when it must be closed.
    fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<Arc<Admission>> {
        let mut reg = lock(&self.registry);
        if reg.open >= self.limits.max_connections {
            let victim = if reg.open < self.limits.hard_max() {
                reg.pop_victim(ip)
            } else {
                None
            };
            let Some(victim) = victim else {
                drop(reg);
                self.metrics.connections_refused.inc();
                tracing::debug!(
                    peer = %ip,
                    "connection refused: max_connections open, none waiting from elsewhere"
                );
                return None;
            };
            victim.evicted.store(true, Ordering::Release);
            victim.waker.wake();
            self.metrics.connections_evicted.inc();
        }
        reg.open += 1;
        self.metrics.connections.set(reg.open as i64);
        let now = Instant::now();
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let early = self
            .limits
            .first_spread
            .mul_f64(rand::random::<f64>())
            .min(self.limits.header_timeout / 2);
        let conn = Arc::new(Conn {
            id,
            ip,
            phase: Mutex::new(Phase::Waiting {
                since: now,
                deadline: now + self.limits.header_timeout - early,
                reason: Reason::Header,
                started: true,
            }),
            evicted: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            waker: AtomicWaker::new(),
        });
        reg.add_waiting(&conn, now);
        Some(Arc::new(Admission {
            conn,
            shared: self.clone(),
        }))
    }

    /// A request of `conn` is being answered.
    fn begin(&self, conn: &Arc<Conn>) {
        let mut reg = lock(&self.registry);
        let mut phase = lock(&conn.phase);
        *phase = match *phase {
            Phase::Waiting { since, .. } => {
                reg.remove_waiting(conn, since);
                Phase::Busy(1)
            }
            Phase::Busy(n) => Phase::Busy(n + 1),
        };
    }

    /// A response of `conn` is written (or dropped): when it was the last,
    /// the connection waits for the next request, for `idle_timeout`.
    fn finish(&self, conn: &Arc<Conn>) {
        let mut reg = lock(&self.registry);
        let mut phase = lock(&conn.phase);
        match *phase {
            Phase::Busy(n) if n > 1 => *phase = Phase::Busy(n - 1),
            Phase::Busy(_) => {
                let now = Instant::now();
                *phase = Phase::Waiting {
                    since: now,
                    deadline: now + self.limits.idle_timeout,
                    reason: Reason::Idle,
                    started: false,
                };
                if !conn.closed.load(Ordering::Acquire) && !conn.evicted.load(Ordering::Acquire) {
                    reg.add_waiting(conn, now);
                }
            }
            Phase::Waiting { .. } => {}
        }
        drop(phase);
        drop(reg);
        // The reader may be parked on the old (now past) state: let it see
        // the new deadline.
        conn.waker.wake();
    }

    /// The connection's stream is gone.
    fn close(&self, conn: &Arc<Conn>) {
        let mut reg = lock(&self.registry);
        conn.closed.store(true, Ordering::Release);
        if let Phase::Waiting { since, .. } = conn.phase() {
            reg.remove_waiting(conn, since);
        }
        reg.open -= 1;
        self.metrics.connections.set(reg.open as i64);
        if let Some(w) = reg.accept.take() {
            w.wake();
        }
    }

    /// The first byte of a request arrived on a waiting connection: its
    /// head must be complete within `header_timeout`.
    fn started(&self, conn: &Conn) {
        let mut phase = lock(&conn.phase);
        if let Phase::Waiting {
            started: started @ false,
            deadline,
            reason,
            ..
        } = &mut *phase
        {
            *started = true;
            *deadline = Instant::now() + self.limits.header_timeout;
            *reason = Reason::Header;
        }
    }
}

mod wrap;

pub use wrap::{Admitted, GuardAcceptor, Guarded, GuardedBody, GuardedMake, GuardedService};

#[cfg(test)]
mod tests;
