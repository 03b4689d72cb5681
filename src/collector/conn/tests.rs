use super::*;
use axum_server::accept::Accept;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

const H: Duration = Duration::from_secs(2);
const IDLE: Duration = Duration::from_secs(30);

fn acceptor(max: usize) -> GuardAcceptor {
    GuardAcceptor::new(
        ConnLimits {
            max_connections: max,
            header_timeout: H,
            idle_timeout: IDLE,
        },
        Arc::new(CollectorMetrics::new()),
    )
}

/// Accept one in-memory connection: (server side under the guard, its
/// service marker, the client side).
async fn connect(
    a: &GuardAcceptor,
) -> Option<(Guarded<DuplexStream>, GuardedService<()>, DuplexStream)> {
    let (server, client) = tokio::io::duplex(1024);
    let (g, s) = a.accept(server, ()).await.ok()?;
    Some((g, s, client))
}

fn answering(s: &GuardedService<()>) -> Answering {
    s.shared.begin(&s.conn);
    Answering {
        conn: s.conn.clone(),
        shared: s.shared.clone(),
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
    let (mut oldest, _s1, _c1) = connect(&a).await.unwrap();
    tokio::time::advance(Duration::from_millis(10)).await;
    let (_g2, s2, _c2) = connect(&a).await.unwrap();
    tokio::time::advance(Duration::from_millis(10)).await;
    let (mut g3, _s3, _c3) = connect(&a).await.unwrap();
    // The second is answering a request: never chosen.
    let _busy = answering(&s2);
    assert_eq!(a.open(), 3);
    let (_g4, _s4, _c4) = connect(&a).await.expect("room is made");
    // The oldest waiting connection reads end of stream at once.
    let t0 = Instant::now();
    assert_eq!(drain(&mut oldest).await.unwrap(), b"");
    assert_eq!(t0.elapsed(), Duration::ZERO);
    drop(oldest);
    assert_eq!(a.open(), 3);
    // Next: g3 (the busy one is never chosen).
    let (_g5, _s5, _c5) = connect(&a).await.expect("room is made");
    assert_eq!(drain(&mut g3).await.unwrap(), b"");
    drop(g3);
    let text = a.shared.metrics.encode();
    assert!(
        text.contains("linkwatch_collector_connections_evicted_total 2"),
        "{text}"
    );
    assert!(text.contains("linkwatch_collector_connections 3"), "{text}");
}

#[tokio::test(start_paused = true)]
async fn when_every_connection_is_busy_a_new_one_is_refused() {
    let a = acceptor(2);
    let (_g1, s1, _c1) = connect(&a).await.unwrap();
    let (g2, s2, _c2) = connect(&a).await.unwrap();
    let _b1 = answering(&s1);
    let b2 = answering(&s2);
    assert!(connect(&a).await.is_none());
    // A request answered: its connection waits again, and can make room.
    drop(b2);
    assert!(connect(&a).await.is_some());
    drop(g2);
    let text = a.shared.metrics.encode();
    assert!(
        text.contains("linkwatch_collector_connections_refused_total 1"),
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
    drop(g0);
    // The response body outlives the stream: no entry comes back.
    drop(busy);
    drop(s0);
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
