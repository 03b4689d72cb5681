//! The guard's side of axum-server and hyper: [`GuardedMake`] admits each
//! connection in the accept loop, [`GuardAcceptor`] holds a connection back
//! until its first byte (a silent connection costs no more than its task
//! and socket: no TLS or HTTP state, no read buffer) and then wraps its
//! stream ([`Guarded`], which enforces the deadlines) and its service
//! ([`GuardedService`], which marks the time a request is answered).

use super::{Admission, ConnLimits, Phase, Registry, Shared, lock};
use crate::collector::metrics::{CollectorMetrics, ReasonLabels};
use axum::http::{Request, Response};
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// The axum-server acceptor that puts every admitted connection's stream
/// and service under the guard; made with the [`GuardedMake`] that admits
/// them ([`GuardAcceptor::make`]).
#[derive(Clone)]
pub struct GuardAcceptor {
    pub(super) shared: Arc<Shared>,
}

impl GuardAcceptor {
    pub fn new(limits: ConnLimits, metrics: Arc<CollectorMetrics>) -> Self {
        GuardAcceptor {
            shared: Arc::new(Shared {
                limits,
                registry: Mutex::new(Registry::default()),
                next_id: AtomicU64::new(0),
                metrics,
            }),
        }
    }

    /// `make` (the router's make-service) admitting each connection under
    /// this guard's cap.
    pub fn make<M>(&self, make: M) -> GuardedMake<M> {
        GuardedMake {
            inner: make,
            shared: self.shared.clone(),
        }
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        lock(&self.shared.registry).open
    }
}

/// The make-service that admits connections: axum-server calls it in its
/// accept loop for each accepted connection, and closes the connection
/// there and then when it fails (at the cap, with none waiting).
#[derive(Clone)]
pub struct GuardedMake<M> {
    inner: M,
    shared: Arc<Shared>,
}

/// The router's service for one admitted connection, with its admission.
#[derive(Clone)]
pub struct Admitted<S> {
    pub(super) inner: S,
    pub(super) admission: Arc<Admission>,
}

impl<M> tower_service::Service<SocketAddr> for GuardedMake<M>
where
    M: tower_service::Service<SocketAddr>,
    M::Response: Send + 'static,
    M::Future: Send + 'static,
    M::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Response = Admitted<M::Response>;
    type Error = Box<dyn std::error::Error + Send + Sync>;
    type Future = BoxFuture<Result<Admitted<M::Response>, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        std::task::ready!(self.shared.poll_room(cx));
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, target: SocketAddr) -> Self::Future {
        let Some(admission) = self.shared.admit(target.ip()) else {
            return Box::pin(std::future::ready(Err("max_connections reached".into())));
        };
        let made = self.inner.call(target);
        Box::pin(async move {
            let inner = made.await.map_err(Into::into)?;
            Ok(Admitted { inner, admission })
        })
    }
}

/// Never called: the acceptor replaces it by a [`GuardedService`] (axum-server
/// wants the made service to be one).
impl<S, R> tower_service::Service<R> for Admitted<S>
where
    S: tower_service::Service<R>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: R) -> S::Future {
        self.inner.call(req)
    }
}

impl<I, S> axum_server::accept::Accept<I, Admitted<S>> for GuardAcceptor
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: Send + 'static,
{
    type Stream = Guarded<I>;
    type Service = GuardedService<S>;
    type Future = BoxFuture<io::Result<(Guarded<I>, GuardedService<S>)>>;

    fn accept(&self, stream: I, service: Admitted<S>) -> Self::Future {
        let Admitted { inner, admission } = service;
        let mut guarded = Guarded {
            inner: stream,
            admission: admission.clone(),
            sleep: Box::pin(tokio::time::sleep_until(Instant::now())),
            armed: None,
            first: None,
        };
        Box::pin(async move {
            // Nothing is built for the connection before its first byte:
            // it is read (one byte, no buffer) and handed on with the rest.
            let mut byte = [0u8; 1];
            let n = std::future::poll_fn(|cx| {
                let mut buf = ReadBuf::new(&mut byte);
                match Pin::new(&mut guarded).poll_read(cx, &mut buf) {
                    Poll::Ready(Ok(())) => Poll::Ready(Ok(buf.filled().len())),
                    Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                    Poll::Pending => Poll::Pending,
                }
            })
            .await?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "closed before a request",
                ));
            }
            guarded.first = Some(byte[0]);
            Ok((guarded, GuardedService { inner, admission }))
        })
    }
}

/// A connection's stream under the guard (see the module documentation).
pub struct Guarded<I> {
    inner: I,
    admission: Arc<Admission>,
    sleep: Pin<Box<Sleep>>,
    /// The deadline `sleep` is set to.
    armed: Option<Instant>,
    /// The first byte, read before the connection was handed on.
    first: Option<u8>,
}

impl<I: AsyncRead + Unpin> AsyncRead for Guarded<I> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(b) = this.first.take() {
            if buf.remaining() > 0 {
                buf.put_slice(&[b]);
                return Poll::Ready(Ok(()));
            }
            this.first = Some(b);
        }
        let conn = &this.admission.conn;
        // Registered before the checks, so an eviction in between wakes us.
        conn.waker.register(cx.waker());
        if let Phase::Waiting {
            deadline, reason, ..
        } = conn.phase()
        {
            if conn.evicted.load(Ordering::Acquire) {
                // End of stream: hyper closes the connection quietly.
                return Poll::Ready(Ok(()));
            }
            if this.armed != Some(deadline) {
                this.sleep.as_mut().reset(deadline);
                this.armed = Some(deadline);
            }
            if this.sleep.as_mut().poll(cx).is_ready() {
                this.admission
                    .shared
                    .metrics
                    .connections_timed_out
                    .get_or_create(&ReasonLabels {
                        reason: reason.label().into(),
                    })
                    .inc();
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("no request within the {} timeout", reason.label()),
                )));
            }
        }
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.admission.shared.started(&this.admission.conn);
        }
        polled
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Guarded<I> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// A connection's service under the guard: marks each request busy until
/// its response body is done.
#[derive(Clone)]
pub struct GuardedService<S> {
    inner: S,
    pub(super) admission: Arc<Admission>,
}

/// Ends a request's busy time when dropped (with its response body).
pub(super) struct Answering {
    pub(super) admission: Arc<Admission>,
}

impl Drop for Answering {
    fn drop(&mut self) {
        self.admission.shared.finish(&self.admission.conn);
    }
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, B, ReqBody> tower_service::Service<Request<ReqBody>> for GuardedService<S>
where
    S: tower_service::Service<Request<ReqBody>, Response = Response<B>>,
    S::Future: Send + 'static,
    S::Error: 'static,
    B: 'static,
{
    type Response = Response<GuardedBody<B>>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        self.admission.shared.begin(&self.admission.conn);
        let answering = Answering {
            admission: self.admission.clone(),
        };
        let fut = self.inner.call(req);
        Box::pin(async move {
            let resp = fut.await?;
            Ok(resp.map(|inner| GuardedBody {
                inner,
                _answering: answering,
            }))
        })
    }
}

/// A response body that ends its request's busy time when done.
pub struct GuardedBody<B> {
    inner: B,
    _answering: Answering,
}

impl<B: http_body::Body + Unpin> http_body::Body for GuardedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<B::Data>, B::Error>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
