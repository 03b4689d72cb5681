use super::wrap::Answering;
use super::*;
use axum_server::accept::Accept;
use std::io;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

const H: Duration = Duration::from_secs(2);
const IDLE: Duration = Duration::from_secs(30);

fn acceptor(max: usize) -> GuardAcceptor {
    GuardAcceptor::new(
        ConnLimits {
            max_connections: max,
            header_timeout: H,
            idle_timeout: IDLE,
            first_spread: Duration::ZERO,
        },
        Arc::new(CollectorMetrics::new()),
    )
}

/// Accept one in-memory connection: (server side under the guard, its
/// service marker, the client side).
async fn connect(
    a: &GuardAcceptor,
) -> Option<(Guarded<DuplexStream>, GuardedService<()>, DuplexStream)> {
    connect_from(a, [127, 0, 0, 1]).await
}

async fn connect_from(
    a: &GuardAcceptor,
    ip: [u8; 4],
) -> Option<(Guarded<DuplexStream>, GuardedService<()>, DuplexStream)> {
    let (server, mut client) = tokio::io::duplex(1024);
    let admission = a.shared.admit(IpAddr::from(ip))?;
    // A connection is handed on at its first byte.
    client.write_all(b"G").await.unwrap();
    let (mut g, s) = a
        .accept(
            server,
            Admitted {
                inner: (),
                admission,
            },
        )
        .await
        .ok()?;
    assert_eq!(
        g.read_u8().await.unwrap(),
        b'G',
        "the first byte is passed on"
    );
    Some((g, s, client))
}

fn answering(s: &GuardedService<()>) -> Answering {
    s.admission.shared.begin(&s.admission.conn);
    Answering {
        admission: s.admission.clone(),
    }
}

/// Read on the server side until the read ends: Ok(bytes) at end of
/// stream, Err at a timeout.
async fn drain(g: &mut Guarded<DuplexStream>) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    g.read_to_end(&mut out).await?;
    Ok(out)
}

#[tokio::test(start_paused = true)]
async fn a_new_connection_has_header_timeout_to_send_its_request() {
    let a = acceptor(10);
    let (mut g, _s, mut c) = connect(&a).await.unwrap();
    let t0 = Instant::now();
    // Bytes arriving do not buy a new connection more time.
    let writer = tokio::spawn(async move {
        for _ in 0..10 {
            tokio::time::sleep(Duration::from_millis(500)).await;
            if c.write_all(b"G").await.is_err() {
                break;
            }
        }
        c
    });
    let e = drain(&mut g).await.unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::TimedOut);
    assert_eq!(t0.elapsed(), H);
    drop(writer);
    let text = a.shared.metrics.encode();
    assert!(
        text.contains("linkwatch_collector_connections_timed_out_total{reason=\"header\"} 1"),
        "{text}"
    );
}

#[tokio::test(start_paused = true)]
async fn kept_connections_wait_idle_timeout_then_header_timeout_from_the_first_byte() {
    let a = acceptor(10);
    let (mut g, s, mut c) = connect(&a).await.unwrap();
    // A request answered: no timeout while busy, however long.
    let busy = answering(&s);
    let t0 = Instant::now();
    let read = tokio::time::timeout(IDLE * 3, g.read_u8()).await;
    assert!(read.is_err(), "no deadline while a request is answered");
    drop(busy);
    // Idle: closed after idle_timeout.
    let t1 = Instant::now();
    let e = drain(&mut g).await.unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::TimedOut);
    assert_eq!(t1.elapsed(), IDLE);
    assert!(t1 > t0);
    // Another connection: answered, then a next request starts after 20 s
    // of idleness and trickles: cut header_timeout after its first byte.
    let (mut g, s, mut c2) = connect(&a).await.unwrap();
    drop(answering(&s));
    let t2 = Instant::now();
    let writer = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(20)).await;
        for _ in 0..100 {
            if c2.write_all(b"G").await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    let e = drain(&mut g).await.unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::TimedOut);
    assert_eq!(t2.elapsed(), Duration::from_secs(20) + H);
    writer.abort();
    c.shutdown().await.ok();
}

#[tokio::test(start_paused = true)]
async fn at_the_cap_the_longest_waiting_connection_makes_room() {
    let a = acceptor(3);
    let (mut oldest, s1, _c1) = connect(&a).await.unwrap();
    tokio::time::advance(Duration::from_millis(10)).await;
    let (_g2, s2, _c2) = connect(&a).await.unwrap();
    tokio::time::advance(Duration::from_millis(10)).await;
    let (mut g3, s3, _c3) = connect(&a).await.unwrap();
    // One more from the same address would only displace its own: refused.
    assert!(connect(&a).await.is_none());
    // The second is answering a request: never chosen.
    let _busy = answering(&s2);
    assert_eq!(a.open(), 3);
    let (_g4, _s4, _c4) = connect_from(&a, [10, 0, 0, 4]).await.expect("room is made");
    // The oldest waiting connection reads end of stream at once.
    let t0 = Instant::now();
    assert_eq!(drain(&mut oldest).await.unwrap(), b"");
    assert_eq!(t0.elapsed(), Duration::ZERO);
    // Closed when its task ends (stream and service dropped).
    drop((oldest, s1));
    assert_eq!(a.open(), 3);
    // Next: g3 (the busy one is never chosen).
    let (_g5, _s5, _c5) = connect_from(&a, [10, 0, 0, 5]).await.expect("room is made");
    assert_eq!(drain(&mut g3).await.unwrap(), b"");
    drop((g3, s3));
    let text = a.shared.metrics.encode();
    assert!(
        text.contains("linkwatch_collector_connections_evicted_total 2"),
        "{text}"
    );
    assert!(
        text.contains("linkwatch_collector_connections_refused_total 1"),
        "{text}"
    );
    assert!(text.contains("linkwatch_collector_connections 3"), "{text}");
}

#[tokio::test(start_paused = true)]
async fn when_every_connection_is_busy_a_new_one_is_refused() {
    let a = acceptor(2);
    let (_g1, s1, _c1) = connect(&a).await.unwrap();
    let (_g2, s2, _c2) = connect(&a).await.unwrap();
    let _b1 = answering(&s1);
    let b2 = answering(&s2);
    assert!(connect(&a).await.is_none());
    // A request answered: its connection waits again, and can make room
    // for another address.
    drop(b2);
    assert!(connect(&a).await.is_none());
    assert!(connect_from(&a, [10, 0, 0, 9]).await.is_some());
    let text = a.shared.metrics.encode();
    assert!(
        text.contains("linkwatch_collector_connections_refused_total 2"),
        "{text}"
    );
}

#[tokio::test(start_paused = true)]
async fn closed_connections_leave_nothing_behind() {
    let a = acceptor(4);
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(connect(&a).await.unwrap());
    }
    // A busy one closes mid-request; an answered one closes idle.
    let busy = answering(&held[0].1);
    let done = answering(&held[1].1);
    drop(done);
    let (g0, s0, _) = held.remove(0);
    drop((g0, s0));
    // The response body outlives the stream and service: the connection
    // counts until it is gone too, and no entry comes back.
    assert_eq!(a.open(), 4);
    drop(busy);
    assert_eq!(a.open(), 3);
    held.clear();
    assert_eq!(a.open(), 0);
    let reg = lock(&a.shared.registry);
    assert!(reg.waiting.is_empty(), "{} left", reg.waiting.len());
}

#[test]
fn the_cap_is_lowered_to_fit_the_file_limit() {
    let l = ConnLimits {
        max_connections: 10_000,
        header_timeout: H,
        idle_timeout: IDLE,
        first_spread: Duration::ZERO,
    };
    assert_eq!(l.hard_max(), 10_625);
    assert_eq!(l.fit(1 << 20), l);
    assert_eq!(l.fit(10_625), l);
    for files in [10_624, 4096, 896, 384, 128, 40] {
        let f = l.fit(files);
        assert!(f.hard_max() <= files, "{files}: {f:?}");
        assert!(f.max_connections > files / 2, "{files}: {f:?}");
    }
    assert_eq!(l.fit(384).max_connections, 352);
    assert!(l.fit(17).hard_max() <= 17);
}

/// At the cap, the address holding the most waiting connections gives one
/// up, however young its connections and however old another's.
#[tokio::test(start_paused = true)]
async fn the_address_with_the_most_waiting_connections_gives_way() {
    let a = acceptor(4);
    let (mut monitor, _sm, _cm) = connect_from(&a, [127, 0, 0, 2]).await.unwrap();
    tokio::time::advance(Duration::from_millis(10)).await;
    let mut flood = Vec::new();
    for _ in 0..3 {
        flood.push(connect(&a).await.unwrap());
        tokio::time::advance(Duration::from_millis(10)).await;
    }
    // 20 more from the flooding address: refused at once, never the
    // monitor's place (the oldest connection of all).
    for _ in 0..20 {
        assert!(connect(&a).await.is_none());
    }
    let still = tokio::time::timeout(Duration::from_millis(100), monitor.read_u8()).await;
    assert!(still.is_err(), "the monitor's connection is still open");
    // Another monitor: takes the place of the flood's oldest.
    let (_g, _s, _c) = connect_from(&a, [127, 0, 0, 3])
        .await
        .expect("room is made");
    let (mut oldest, s, _c) = flood.remove(0);
    assert_eq!(
        drain(&mut oldest).await.unwrap(),
        b"",
        "the flood's oldest goes"
    );
    drop((oldest, s));
    let reg = lock(&a.shared.registry);
    assert_eq!((reg.open, reg.waiting_total()), (4, 4));
    assert_eq!(reg.count(IpAddr::from([127, 0, 0, 1])), 2);
}

/// While the connections told to close have not closed yet, the accept
/// loop waits instead of admitting (or closing) more.
#[tokio::test(start_paused = true)]
async fn at_the_hard_limit_the_accept_loop_waits_for_closing_connections() {
    let a = acceptor(16);
    let hard = a.shared.limits.hard_max();
    assert_eq!(hard, 32);
    let mut held = Vec::new();
    for _ in 0..16 {
        held.push(connect(&a).await.unwrap());
    }
    // 16 more from elsewhere evict the first 16, which have not closed yet.
    for i in 0..16 {
        held.push(connect_from(&a, [10, 0, 1, i]).await.unwrap());
    }
    assert_eq!(a.open(), hard);
    let ready = futures::future::poll_fn(|cx| Poll::Ready(a.shared.poll_room(cx))).await;
    assert!(ready.is_pending());
    let waiter = {
        let shared = a.shared.clone();
        tokio::spawn(async move { futures::future::poll_fn(|cx| shared.poll_room(cx)).await })
    };
    tokio::task::yield_now().await;
    assert!(!waiter.is_finished());
    // One evicted connection closes: the loop goes on.
    let (g, s, _c) = held.remove(0);
    drop((g, s));
    tokio::time::timeout(Duration::from_secs(1), waiter)
        .await
        .expect("woken when a connection closed")
        .unwrap();
}

/// Before its first byte a connection is not handed on at all: it ends at
/// its deadline, or at once when it gives way at the cap.
#[tokio::test(start_paused = true)]
async fn a_silent_connection_is_held_back_until_its_first_byte() {
    let a = acceptor(2);
    let silent = |ip: [u8; 4]| {
        let (server, client) = tokio::io::duplex(1024);
        let admission = a.shared.admit(IpAddr::from(ip)).unwrap();
        let fut = a.accept(
            server,
            Admitted {
                inner: (),
                admission,
            },
        );
        (tokio::spawn(fut), client)
    };
    let t0 = Instant::now();
    let (h, _c) = silent([10, 0, 0, 1]);
    let e = h.await.unwrap().err().unwrap();
    assert_eq!(e.kind(), io::ErrorKind::TimedOut);
    assert_eq!(t0.elapsed(), H);
    // Two silent ones from one address fill the cap; one from elsewhere
    // makes one of them give way: it ends at once.
    let (h1, _c1) = silent([10, 0, 0, 1]);
    tokio::time::advance(Duration::from_millis(10)).await;
    let (h2, _c2) = silent([10, 0, 0, 1]);
    tokio::task::yield_now().await;
    let t1 = Instant::now();
    let (h3, mut c3) = silent([10, 0, 0, 9]);
    let e = h1.await.unwrap().err().unwrap();
    assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
    assert_eq!(t1.elapsed(), Duration::ZERO);
    assert!(!h2.is_finished());
    // The newcomer speaks: handed on with its first byte.
    c3.write_all(b"GET").await.unwrap();
    let (mut g, _s) = h3.await.unwrap().unwrap();
    let mut got = [0u8; 3];
    g.read_exact(&mut got).await.unwrap();
    assert_eq!(&got, b"GET");
}

/// Deadlines of new connections are spread over the second half of
/// `header_timeout`, never later and never earlier.
#[tokio::test(start_paused = true)]
async fn new_connections_deadlines_are_spread() {
    let a = GuardAcceptor::new(
        ConnLimits {
            max_connections: 1000,
            header_timeout: H,
            idle_timeout: IDLE,
            first_spread: H / 2,
        },
        Arc::new(CollectorMetrics::new()),
    );
    let now = Instant::now();
    let mut deadlines = Vec::new();
    for i in 0..200u32 {
        let adm = a.shared.admit(IpAddr::from(i.to_be_bytes())).unwrap();
        let Phase::Waiting { deadline, .. } = adm.conn.phase() else {
            panic!("a new connection waits");
        };
        deadlines.push(deadline - now);
        std::mem::forget(adm);
    }
    assert!(
        deadlines.iter().all(|d| *d >= H / 2 && *d <= H),
        "{deadlines:?}"
    );
    let early = deadlines.iter().filter(|d| **d < H * 3 / 4).count();
    assert!(
        (50..150).contains(&early),
        "{early} of 200 in the first quarter"
    );
}
