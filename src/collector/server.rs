//! Runs the collector daemon: opens the store, binds the listener, starts
//! the periodic jobs (roll-ups, last-seen gauges, alerts), serves the API
//! ([`crate::collector::http`]) over TLS (rustls, via axum-server) or plain HTTP/1.1 with every
//! connection under the connection guard ([`crate::collector::conn`]), and
//! shuts down gracefully on SIGTERM or SIGINT. [`serve_on`] is the same
//! server on a listener and store the caller provides (tests start it
//! in-process).

use crate::collector::conn::{ConnLimits, GuardAcceptor};
use crate::collector::http;
use crate::collector::metrics::CollectorMetrics;
use crate::collector::store::{self, Store, StoreError};
use crate::config::collector::CollectorConfig;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// How long in-flight requests may finish after a shutdown signal.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(20);
/// Open files kept for everything but client connections (database
/// connections and files, logging, the runtime's own).
pub const FILE_RESERVE: u64 = 128;
/// hyper's read buffer per connection: a request head must fit (ours are
/// well under 2 KiB), and a flood of heads cannot make it grow to hyper's
/// default of about 400 KiB each.
pub const MAX_READ_BUFFER: usize = 64 * 1024;

/// Why the collector could not run.
#[derive(Debug, thiserror::Error)]
pub enum CollectorError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot load the TLS certificate {cert} and key {key}: {source}")]
    Tls {
        cert: PathBuf,
        key: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the collector's listener failed: {0}")]
    Serve(#[source] std::io::Error),
    #[error("alerts: {0}")]
    Alerts(String),
}

/// Run the collector until SIGTERM or SIGINT.
pub async fn run(cfg: CollectorConfig) -> Result<(), CollectorError> {
    let store = store::open(&cfg.collector.database).await?;
    let addr = cfg.collector.listen;
    let listener = listen(addr).map_err(|source| CollectorError::Bind { addr, source })?;
    // Under systemd: ready once listening, watchdog pings from the runtime,
    // stopping on the signal.
    crate::shared::sd::ready(&format!("listening on {addr}"));
    let watchdog = crate::shared::sd::watchdog_interval().map(|every| {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                crate::shared::sd::watchdog();
            }
        })
    });
    let result = serve_on(listener, store, &cfg, async {
        shutdown_signal().await;
        crate::shared::sd::stopping();
    })
    .await;
    if let Some(w) = watchdog {
        w.abort();
    }
    result
}

/// Connections the kernel queues for the accept loop (capped by
/// `net.core.somaxconn`): room for a fleet reconnecting at once, and for a
/// monitor's connection behind a flood.
pub const LISTEN_BACKLOG: u32 = 4096;

/// A listener on `addr` with [`LISTEN_BACKLOG`].
pub fn listen(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Allocations from this size up are made with their own memory mapping
/// and given back to the system when freed.
pub const LARGE_ALLOCATION: usize = 1 << 20;

/// Make the allocator give large blocks back when they are freed: the
/// buffers of a large or decompressed request body (up to 16 MiB) would
/// otherwise stay in the process after a burst of them (glibc raises its
/// mapping threshold to the largest block freed and keeps such blocks in
/// its heaps). Call before any other thread starts.
pub fn return_large_allocations() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `mallopt` takes two plain integers and only sets a tunable of
    // glibc's allocator. glibc marks it unsafe to call while another thread
    // initialises the allocator; this runs from `main` before the runtime
    // (or any other thread) is started. A refused setting (return 0) only
    // leaves the default behaviour.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, LARGE_ALLOCATION as libc::c_int);
    }
}

/// A flood is over when this many fewer connections are open than at its
/// peak.
const FLOOD: usize = 1_000;

/// Give the memory of a flood of connections back to the system once it is
/// over: the allocator keeps freed small blocks in its heaps otherwise (a
/// few tens of MB after 5,000 connections).
async fn trim_after_floods(guard: GuardAcceptor) {
    let mut peak = 0;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let open = guard.open();
        peak = peak.max(open);
        if peak >= open + FLOOD {
            tracing::debug!(
                peak,
                open,
                "a flood of connections is over: trimming the heap"
            );
            trim_heap();
            peak = open;
        }
    }
}

/// Hand the allocator's free memory back to the system.
fn trim_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `malloc_trim` takes a plain integer (the padding to keep) and
    // only releases free memory of glibc's heaps; it locks each heap while it
    // works, so it is safe to call while other threads allocate.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Resolves on the first SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let term = async {
        match signal(SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch SIGTERM; stop with SIGINT");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = term => tracing::info!("SIGTERM: shutting down"),
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: shutting down"),
    }
}

/// Serve the API on `listener` with `store` and the limits and TLS settings of
/// `cfg` (its `listen` and `database` are not used) until `shutdown` resolves;
/// then stop accepting, let requests in flight finish (up to
/// [`SHUTDOWN_GRACE`]) and return.
pub async fn serve_on(
    listener: tokio::net::TcpListener,
    store: Arc<dyn Store>,
    cfg: &CollectorConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), CollectorError> {
    let c = &cfg.collector;
    let local = listener
        .local_addr()
        .map_err(|source| CollectorError::Bind {
            addr: c.listen,
            source,
        })?;
    let metrics = Arc::new(CollectorMetrics::new());
    let state = http::state_for(store.clone(), cfg, metrics.clone());
    // The periodic jobs, each while this replica leads it (see
    // `collector::lead`). Stopped when the server returns, however it returns.
    let _maintainer = AbortOnDrop(tokio::spawn(crate::collector::maintainer::run(
        store.clone(),
        cfg.rollup_settings(),
        store.leadership(&crate::collector::lead::replica_name()),
        state.metrics().jobs.clone(),
    )));
    let (interval_ms, grace_ms) = cfg.silence_ms();
    let _seen = AbortOnDrop(tokio::spawn(crate::collector::last_seen::run_gauges(
        store.clone(),
        state.metrics().seen.clone(),
        crate::collector::last_seen::Silence {
            interval_ms,
            grace_ms,
        },
        crate::collector::last_seen::REFRESH,
    )));
    let _storage = AbortOnDrop(tokio::spawn(crate::collector::storage::run_gauges(
        store.clone(),
        state.metrics().storage.clone(),
        crate::collector::storage::GAUGE_EVERY,
    )));
    // The alert evaluator and delivery, while this replica leads the job.
    let _alerts = match crate::collector::alerts::setup::alerts_config(cfg)
        .map_err(|e| CollectorError::Alerts(e.to_string()))?
    {
        Some(a) if a.enabled => {
            if let Some(links) = &a.ack {
                state.set_ack_key(links.key.clone());
            }
            let engine =
                crate::collector::alerts::run::Engine::new(a, state.metrics().alerts.clone())
                    .map_err(|e| CollectorError::Alerts(e.to_string()))?;
            Some(AbortOnDrop(tokio::spawn(
                crate::collector::alerts::run::run(
                    store.clone(),
                    Arc::new(engine),
                    store.leadership(&crate::collector::lead::replica_name()),
                    state.metrics().jobs.clone(),
                ),
            )))
        }
        _ => None,
    };
    let web = crate::collector::web::router_warmed(
        state.clone(),
        crate::collector::web::WebOptions::for_config(cfg),
    );
    let app = http::router(state)
        .merge(web)
        .into_make_service_with_connect_info::<SocketAddr>();
    let limits = fit_to_file_limit(ConnLimits {
        max_connections: c.max_connections,
        header_timeout: c.header_timeout,
        idle_timeout: c.idle_timeout,
        first_spread: c.header_timeout / 2,
    });
    let guard = GuardAcceptor::new(limits, metrics);
    let _trim = AbortOnDrop(tokio::spawn(trim_after_floods(guard.clone())));
    // Admission happens in the accept loop: a connection over the cap is
    // closed before a task or anything else is spent on it.
    let make = guard.make(app);
    let std_listener = listener.into_std().map_err(CollectorError::Serve)?;
    let handle = axum_server::Handle::new();
    {
        let handle = handle.clone();
        tokio::spawn(async move {
            shutdown.await;
            handle.graceful_shutdown(Some(SHUTDOWN_GRACE));
        });
    }
    let result = match cfg.tls() {
        Some((cert, key)) => {
            // axum-server's `tls-rustls` feature builds its ServerConfig with
            // an explicit aws-lc-rs provider, so no process-wide default
            // provider has to be installed (and none is: `ring` is not built).
            let tls = axum_server::tls_rustls::RustlsConfig::from_pem_file(cert, key)
                .await
                .map_err(|source| CollectorError::Tls {
                    cert: cert.to_path_buf(),
                    key: key.to_path_buf(),
                    source,
                })?;
            tls.reload_from_config(resumable(&tls.get_inner()));
            // The guard sits under TLS: its header timeout covers the handshake.
            let acceptor = axum_server::tls_rustls::RustlsAcceptor::new(tls)
                .handshake_timeout(limits.header_timeout)
                .acceptor(guard);
            tracing::info!(addr = %local, tls = true, database = %redact(&c.database), max_connections = limits.max_connections, "collector listening (HTTPS)");
            http1(std_listener)?
                .acceptor(acceptor)
                .handle(handle)
                .serve(make)
                .await
        }
        None => {
            if let Some(w) = cfg.plain_http_warning() {
                tracing::warn!("{w}");
            }
            tracing::info!(addr = %local, tls = false, database = %redact(&c.database), max_connections = limits.max_connections, "collector listening (plain HTTP)");
            http1(std_listener)?
                .acceptor(guard)
                .handle(handle)
                .serve(make)
                .await
        }
    };
    result.map_err(CollectorError::Serve)?;
    tracing::info!("collector stopped");
    Ok(())
}

/// An HTTP/1.1-only server on `listener` (the router has no HTTP/2), with a
/// bounded read buffer; the connection guard does the timeouts hyper's
/// own header timeout cannot (it also runs while a kept connection is idle).
fn http1(
    listener: std::net::TcpListener,
) -> Result<axum_server::Server<SocketAddr>, CollectorError> {
    let mut server = axum_server::from_tcp(listener)
        .map_err(CollectorError::Serve)?
        .http1_only()
        .accept_error_handler(accept_failed);
    server
        .http_builder()
        .http1()
        .max_buf_size(MAX_READ_BUFFER)
        .header_read_timeout(None);
    Ok(server)
}

/// A connection that could not be accepted or set up. Out of file
/// descriptors is worth a warning (the cap should prevent it); the guard's
/// own refusals are counted in the metrics; the rest (handshakes that fail,
/// clients that leave) is routine.
fn accept_failed(peer: Option<&SocketAddr>, e: &std::io::Error) {
    match e.raw_os_error() {
        Some(libc::EMFILE | libc::ENFILE) => tracing::warn!(
            error = %e,
            "cannot accept a connection: out of file descriptors (lower max_connections or raise LimitNOFILE=)"
        ),
        _ => tracing::debug!(peer = ?peer, error = %e, "connection not set up"),
    }
}

/// `limits` with `max_connections` fitted to the open-file limit: the soft
/// limit is first raised as far as the hard limit allows (systemd's default
/// soft limit of 1024 is far below a collector's needs), then the cap is
/// lowered, with a warning, if the files still do not suffice.
fn fit_to_file_limit(limits: ConnLimits) -> ConnLimits {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let want = limits.hard_max() as u64 + FILE_RESERVE;
    let (soft, hard) = match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the open-file limit; keeping max_connections");
            return limits;
        }
    };
    let mut soft = soft;
    if soft < want {
        let raised = want.min(hard);
        match setrlimit(Resource::RLIMIT_NOFILE, raised, hard) {
            Ok(()) => soft = raised,
            Err(e) => tracing::warn!(error = %e, "cannot raise the open-file limit"),
        }
    }
    let files = usize::try_from(soft.saturating_sub(FILE_RESERVE)).unwrap_or(usize::MAX);
    let fitted = limits.fit(files);
    if fitted.max_connections < limits.max_connections {
        tracing::warn!(
            max_connections = limits.max_connections,
            open_file_limit = soft,
            using = fitted.max_connections,
            "max_connections lowered to fit the open-file limit (raise LimitNOFILE= to keep it)"
        );
    }
    fitted
}

/// Aborts a background task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// TLS sessions the collector remembers for resumption: about one per device
/// of a large fleet (a few hundred bytes each). A resumed handshake skips
/// the certificate chain: on a metered link that is most of a reconnect's
/// cost. rustls' default remembers 256.
const TLS_SESSION_CACHE: usize = 131_072;

/// `config` with a session cache sized for a fleet and one resumption ticket
/// per handshake (rustls sends 2 by default; an agent needs one at a time).
fn resumable(config: &rustls::ServerConfig) -> Arc<rustls::ServerConfig> {
    let mut c = config.clone();
    c.session_storage = rustls::server::ServerSessionMemoryCache::new(TLS_SESSION_CACHE);
    c.send_tls13_tickets = 1;
    // HTTP/1.1 only: the router is built without HTTP/2.
    c.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(c)
}

/// A database URL fit for logs: the password of `postgres://user:pw@host` hidden.
pub fn redact(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://")
        && let Some((creds, host)) = rest.split_once('@')
        && let Some((user, _pw)) = creds.split_once(':')
    {
        return format!("{scheme}://{user}:***@{host}");
    }
    url.to_string()
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passwords_are_hidden_in_logged_urls() {
        assert_eq!(
            redact("postgres://lw:secret@db:5432/lw"),
            "postgres://lw:***@db:5432/lw"
        );
        assert_eq!(redact("postgres://lw@db/lw"), "postgres://lw@db/lw");
        assert_eq!(redact("sqlite:///var/lib/x.db"), "sqlite:///var/lib/x.db");
    }
}
