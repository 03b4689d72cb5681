//! What an ingest request's body goes through before it is parsed, each
//! step under a limit, so that no request makes the collector hold more than
//! a few times `max_body_bytes`: the declared `Content-Length` (413 before
//! a byte is read), the device's in-flight uploads ([`DeviceSlots`], 429),
//! reading at a minimum rate and up to `max_body_bytes` ([`read_body`], 408
//! and 413), and gunzipping with a byte budget ([`decode_body`], 413). The
//! batch's own limits (record body, strings, record count) are checked while
//! it is decoded (`wire::v1`).

use super::error::ApiError;
use crate::wire::v1::MAX_BODY_DECOMPRESSED;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, header};
use bytes::BytesMut;
use http_body_util::BodyExt;
use std::collections::HashMap;
use std::io::Read;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// Longest a client may take to send its whole body, whatever its rate
/// (generous: 4 MiB over a poor mobile link).
pub const BODY_TIMEOUT: Duration = Duration::from_secs(300);
/// How many times `max_body_bytes` a gzip body may grow to once
/// decompressed (batches of similar JSON records shrink about tenfold; an
/// agent answered 413 halves its batches).
pub const DECOMPRESSED_FACTOR: usize = 4;

/// The largest gzip body once decompressed, for a collector accepting
/// bodies of `max_body_bytes` as sent.
pub fn decompressed_limit(max_body_bytes: usize) -> usize {
    max_body_bytes
        .saturating_mul(DECOMPRESSED_FACTOR)
        .min(MAX_BODY_DECOMPRESSED)
        .max(max_body_bytes)
}

fn too_large(limit: usize) -> ApiError {
    ApiError::TooLarge(format!("body is over {limit} bytes: send smaller batches"))
}

/// The request's declared `Content-Length` (an unreadable one is left to
/// hyper, which refuses the request).
pub fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
}

/// 413 at once when the request declares a `Content-Length` over `limit`
/// (nothing of the body is read).
pub fn check_declared_length(headers: &HeaderMap, limit: usize) -> Result<(), ApiError> {
    match declared_length(headers) {
        Some(n) if n > limit as u64 => Err(too_large(limit)),
        _ => Ok(()),
    }
}

/// Longest a refused body is read and thrown away (see [`discard`]).
pub const DISCARD_TIME: Duration = Duration::from_secs(10);

/// Read and throw away up to `max` bytes of a body already answered 413
/// (for at most [`DISCARD_TIME`]), so that a client that sent a little too
/// much reads the 413 instead of a connection reset; the connection is kept
/// meanwhile and closed after. Costs no upload slot.
pub async fn discard(mut body: Body, max: u64) {
    let drained = async {
        let mut seen: u64 = 0;
        while let Some(Ok(frame)) = body.frame().await {
            if let Ok(data) = frame.into_data() {
                seen += data.len() as u64;
                if seen >= max {
                    break;
                }
            }
        }
    };
    let _ = tokio::time::timeout(DISCARD_TIME, drained).await;
}

/// How the body is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Identity,
    Gzip,
}

/// The request's `Content-Encoding`: absent, `identity` or `gzip` (`x-gzip`).
pub fn content_encoding(headers: &HeaderMap) -> Result<Encoding, ApiError> {
    let mut values = headers.get_all(header::CONTENT_ENCODING).iter();
    let Some(v) = values.next() else {
        return Ok(Encoding::Identity);
    };
    let text = v.to_str().unwrap_or("?").trim().to_ascii_lowercase();
    if values.next().is_some() {
        return Err(ApiError::UnsupportedEncoding(format!("{text}, ...")));
    }
    match text.as_str() {
        "" | "identity" => Ok(Encoding::Identity),
        "gzip" | "x-gzip" => Ok(Encoding::Gzip),
        _ => Err(ApiError::UnsupportedEncoding(text)),
    }
}

/// The JSON bytes of a body: as sent, or gunzipped up to `cap` bytes (413
/// past it; decompression stops at `cap + 1` bytes, whatever the body says).
pub fn decode_body(encoding: Encoding, body: Bytes, cap: usize) -> Result<Bytes, ApiError> {
    match encoding {
        Encoding::Identity => Ok(body),
        Encoding::Gzip => {
            let mut out = Vec::with_capacity(body.len().saturating_mul(4).min(cap));
            let limit = u64::try_from(cap).unwrap_or(u64::MAX).saturating_add(1);
            flate2::read::MultiGzDecoder::new(&body[..])
                .take(limit)
                .read_to_end(&mut out)
                .map_err(|e| ApiError::BadBody(format!("body is not valid gzip: {e}")))?;
            if out.len() > cap {
                return Err(ApiError::TooLarge(format!(
                    "body is over {cap} bytes once decompressed: send smaller batches"
                )));
            }
            Ok(Bytes::from(out))
        }
    }
}

/// Read a request body of at most `max` bytes (413 past it, however it is
/// framed), cut with 408 when a `window` passes with less than `min_rate`
/// bytes per second of it arriving, or when the whole takes longer than
/// [`BODY_TIMEOUT`].
pub async fn read_body(
    mut body: Body,
    max: usize,
    min_rate: u64,
    window: Duration,
) -> Result<Bytes, ApiError> {
    let start = Instant::now();
    let end = start + BODY_TIMEOUT;
    let per_window = min_rate.saturating_mul(window.as_secs().max(1));
    // Grown as bytes arrive: a declared length is no reason to reserve memory.
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let mut checkpoint = start + window;
    let mut in_window: u64 = 0;
    loop {
        match tokio::time::timeout_at(checkpoint.min(end), body.frame()).await {
            Ok(None) => return Ok(buf.freeze()),
            Ok(Some(Err(e))) => {
                return Err(ApiError::BadBody(format!("cannot read the body: {e}")));
            }
            Ok(Some(Ok(frame))) => {
                if let Ok(data) = frame.into_data() {
                    if buf.len() + data.len() > max {
                        return Err(too_large(max));
                    }
                    in_window += data.len() as u64;
                    buf.extend_from_slice(&data);
                }
            }
            // A checkpoint or the end: judged below.
            Err(_) => {}
        }
        let now = Instant::now();
        if now >= end {
            return Err(ApiError::Timeout(format!(
                "the request body did not arrive within {} s",
                BODY_TIMEOUT.as_secs()
            )));
        }
        while now >= checkpoint {
            if in_window < per_window {
                return Err(ApiError::Timeout(format!(
                    "the request body arrived slower than {min_rate} bytes/s ({in_window} bytes \
                     in {} s)",
                    window.as_secs()
                )));
            }
            in_window = 0;
            checkpoint += window;
        }
    }
}

/// The uploads each device has in flight, at most `max` per device: one
/// device (a stolen token, an agent gone wrong) cannot take the slots the
/// rest of the fleet needs.
#[derive(Debug)]
pub struct DeviceSlots {
    max: usize,
    held: Mutex<HashMap<i64, usize>>,
}

impl DeviceSlots {
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(DeviceSlots {
            max: max.max(1),
            held: Mutex::new(HashMap::new()),
        })
    }

    /// The most a device may hold.
    pub fn max(&self) -> usize {
        self.max
    }

    /// One of `device`'s slots, held until the returned guard is dropped;
    /// `None` when it holds all of them.
    pub fn try_take(self: &Arc<Self>, device: i64) -> Option<DeviceSlot> {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        let n = held.entry(device).or_insert(0);
        if *n >= self.max {
            return None;
        }
        *n += 1;
        Some(DeviceSlot {
            slots: self.clone(),
            device,
        })
    }

    /// Slots `device` holds now.
    pub fn held(&self, device: i64) -> usize {
        let held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        held.get(&device).copied().unwrap_or(0)
    }
}

/// One upload's slot (see [`DeviceSlots::try_take`]).
#[derive(Debug)]
pub struct DeviceSlot {
    slots: Arc<DeviceSlots>,
    device: i64,
}

impl Drop for DeviceSlot {
    fn drop(&mut self) {
        let mut held = self.slots.held.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = held.get_mut(&self.device) {
            *n -= 1;
            if *n == 0 {
                held.remove(&self.device);
            }
        }
    }
}

#[cfg(test)]
mod tests;
