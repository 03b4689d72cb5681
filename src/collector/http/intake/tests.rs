use super::*;
use crate::collector::http::test_headers as headers;
use axum::http::StatusCode;
use std::io::Write;

fn gz(data: &[u8]) -> Bytes {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    Bytes::from(e.finish().unwrap())
}

#[test]
fn encodings_and_decompression_caps() {
    assert_eq!(content_encoding(&headers(&[])).unwrap(), Encoding::Identity);
    assert_eq!(
        content_encoding(&headers(&[("content-encoding", "GZIP")])).unwrap(),
        Encoding::Gzip
    );
    let e = content_encoding(&headers(&[("content-encoding", "br")])).unwrap_err();
    assert_eq!(e.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let data = b"{\"v\":1}";
    assert_eq!(
        &decode_body(Encoding::Gzip, gz(data), 100).unwrap()[..],
        data
    );
    assert_eq!(
        &decode_body(Encoding::Identity, Bytes::from_static(data), 1).unwrap()[..],
        data
    );
    let bomb = gz(&vec![b' '; 10_000]);
    assert!(bomb.len() < 200);
    let e = decode_body(Encoding::Gzip, bomb.clone(), 9_999).unwrap_err();
    assert_eq!(e.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        decode_body(Encoding::Gzip, bomb, 10_000).unwrap().len(),
        10_000
    );
    let e = decode_body(Encoding::Gzip, Bytes::from_static(b"not gzip"), 100).unwrap_err();
    assert_eq!(e.status(), StatusCode::BAD_REQUEST);
}

#[test]
fn the_decompressed_limit_is_a_few_times_the_body_limit() {
    assert_eq!(decompressed_limit(4 << 20), 16 << 20);
    assert_eq!(decompressed_limit(1024), 4096);
    // Never above the protocol's ceiling, never below the body limit.
    assert_eq!(decompressed_limit(16 << 20), MAX_BODY_DECOMPRESSED);
    assert_eq!(
        decompressed_limit(MAX_BODY_DECOMPRESSED),
        MAX_BODY_DECOMPRESSED
    );
    assert_eq!(decompressed_limit(usize::MAX), usize::MAX);
}

#[test]
fn a_declared_length_over_the_limit_is_413() {
    assert!(check_declared_length(&headers(&[]), 10).is_ok());
    assert!(check_declared_length(&headers(&[("content-length", "10")]), 10).is_ok());
    let e = check_declared_length(&headers(&[("content-length", "11")]), 10).unwrap_err();
    assert_eq!(e.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(e.body().error.contains("over 10 bytes"), "{e:?}");
    let e = check_declared_length(&headers(&[("content-length", "99999999999999999999")]), 10);
    // Not a u64: hyper refuses such a request before it reaches us.
    assert!(e.is_ok());
    let e = check_declared_length(&headers(&[("content-length", "99999999999")]), 4 << 20);
    assert_eq!(e.unwrap_err().status(), StatusCode::PAYLOAD_TOO_LARGE);
}

#[test]
fn a_device_holds_at_most_its_slots() {
    let slots = DeviceSlots::new(2);
    let a1 = slots.try_take(1).unwrap();
    let a2 = slots.try_take(1).unwrap();
    assert!(slots.try_take(1).is_none(), "a third upload of device 1");
    let b = slots.try_take(2).expect("another device is not held back");
    assert_eq!((slots.held(1), slots.held(2)), (2, 1));
    drop(a1);
    let a3 = slots.try_take(1).expect("a slot given back is free again");
    drop((a2, a3, b));
    assert_eq!((slots.held(1), slots.held(2)), (0, 0));
    assert!(
        slots.held.lock().unwrap().is_empty(),
        "no entry left behind"
    );
}

/// A body fed by the test: each item is (delay before it, bytes).
fn trickle(parts: Vec<(Duration, Vec<u8>)>) -> Body {
    let stream = futures::stream::unfold(parts.into_iter(), |mut it| async move {
        let (delay, data) = it.next()?;
        tokio::time::sleep(delay).await;
        Some((Ok::<_, std::io::Error>(Bytes::from(data)), it))
    });
    Body::from_stream(stream)
}

const W: Duration = Duration::from_secs(10);

#[tokio::test(start_paused = true)]
async fn bodies_arrive_whole_at_a_fair_rate() {
    let s = Duration::from_secs(1);
    // 9 KiB over 27 s, 1 KiB every 3 s: 3 KiB+ per 10 s window at 300 B/s.
    let parts = (0..9).map(|_| (3 * s, vec![b'x'; 1024])).collect();
    let b = read_body(trickle(parts), 1 << 20, 300, W).await.unwrap();
    assert_eq!(b.len(), 9 * 1024);
    // A short body sent at once is never judged.
    let b = read_body(Body::from("{}"), 10, 1 << 20, W).await.unwrap();
    assert_eq!(&b[..], b"{}");
}

#[tokio::test(start_paused = true)]
async fn slow_bodies_are_cut_with_408_at_the_end_of_a_window() {
    let t0 = Instant::now();
    // A byte every 5 s (the attack): cut when the first window ends.
    let parts = (0..100)
        .map(|_| (Duration::from_secs(5), vec![b'x']))
        .collect();
    let e = read_body(trickle(parts), 1 << 20, 1024, W)
        .await
        .unwrap_err();
    assert_eq!(e.status(), StatusCode::REQUEST_TIMEOUT);
    assert!(e.body().error.contains("1024 bytes/s"), "{e:?}");
    assert_eq!(t0.elapsed(), W);
    // Nothing at all: the same.
    let t0 = Instant::now();
    let silent = trickle(vec![(Duration::from_secs(3600), vec![b'x'])]);
    let e = read_body(silent, 1 << 20, 1024, W).await.unwrap_err();
    assert_eq!(e.status(), StatusCode::REQUEST_TIMEOUT);
    assert_eq!(t0.elapsed(), W);
    // Fast first, then stalled: judged per window, not on average.
    let t0 = Instant::now();
    let parts = vec![
        (Duration::ZERO, vec![b'x'; 100_000]),
        (Duration::from_secs(25), vec![b'x']),
    ];
    let e = read_body(trickle(parts), 1 << 20, 1024, W)
        .await
        .unwrap_err();
    assert_eq!(e.status(), StatusCode::REQUEST_TIMEOUT);
    assert_eq!(t0.elapsed(), 2 * W);
}

#[tokio::test(start_paused = true)]
async fn a_body_over_the_limit_is_413_however_it_is_framed() {
    let parts = (0..10).map(|_| (Duration::ZERO, vec![b'x'; 300])).collect();
    let e = read_body(trickle(parts), 1000, 1, W).await.unwrap_err();
    assert_eq!(e.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(e.body().error.contains("1000"), "{e:?}");
}

#[tokio::test(start_paused = true)]
async fn a_steady_trickle_still_ends_at_the_body_timeout() {
    let t0 = Instant::now();
    // 2 KiB/s for ever: fast enough for every window, never finished.
    let parts = (0..1000)
        .map(|_| (Duration::from_secs(1), vec![b'x'; 2048]))
        .collect();
    let e = read_body(trickle(parts), 1 << 30, 1024, W)
        .await
        .unwrap_err();
    assert_eq!(e.status(), StatusCode::REQUEST_TIMEOUT);
    assert!(e.body().error.contains("300 s"), "{e:?}");
    assert_eq!(t0.elapsed(), BODY_TIMEOUT);
}
