//! Bounded decoding of a batch: the limits of one string, one record body
//! and one batch are checked *while* the JSON is decoded, before anything
//! of that size is built. Without them an internally tagged body (serde
//! buffers it whole before it reads `type`) or a long array can make the
//! decoder hold many times the request's size. Used through the
//! `deserialize_with` attributes of [`super::Batch`] and [`super::Record`].

use super::{Body, MAX_BOOT_ID, MAX_NAME, MAX_RECORD_BODY, MAX_RECORDS, Record};
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde_json::value::RawValue;
use std::fmt;

/// A string of at most `max` bytes: longer ones are refused as soon as the
/// parser has them, before a `String` is made.
struct Short {
    max: usize,
    what: &'static str,
}

impl Visitor<'_> for Short {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "a string of at most {} bytes ({})", self.max, self.what)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
        if v.len() > self.max {
            return Err(E::custom(format!(
                "{} bytes, at most {} ({})",
                v.len(),
                self.max,
                self.what
            )));
        }
        Ok(v.to_string())
    }
}

/// `batch.device`: at most [`MAX_NAME`] bytes.
pub(super) fn device_name<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    d.deserialize_str(Short {
        max: MAX_NAME,
        what: "a device name",
    })
}

/// `record.boot_id`: at most [`MAX_BOOT_ID`] bytes.
pub(super) fn boot_id<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    d.deserialize_str(Short {
        max: MAX_BOOT_ID,
        what: "a boot id",
    })
}

/// `record.body`: taken as raw JSON borrowed from the input (nothing is
/// copied), measured, and decoded only when it is at most
/// [`MAX_RECORD_BODY`] bytes.
pub(super) fn body<'de, D: Deserializer<'de>>(d: D) -> Result<Body, D::Error> {
    let raw: &'de RawValue = serde::Deserialize::deserialize(d)?;
    let text = raw.get();
    if text.len() > MAX_RECORD_BODY {
        return Err(de::Error::custom(format!(
            "a record body is at most {MAX_RECORD_BODY} bytes of JSON; this one is {}",
            text.len()
        )));
    }
    serde_json::from_str(text).map_err(de::Error::custom)
}

struct Records;

impl<'de> Visitor<'de> for Records {
    type Value = Vec<Record>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "an array of at most {MAX_RECORDS} records")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<Record>, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(r) = seq.next_element::<Record>()? {
            if out.len() == MAX_RECORDS {
                return Err(de::Error::custom(format!(
                    "more than {MAX_RECORDS} records: at most {MAX_RECORDS} per batch"
                )));
            }
            out.push(r);
        }
        Ok(out)
    }
}

/// `batch.records`: at most [`MAX_RECORDS`], refused at the first one over.
pub(super) fn records<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Record>, D::Error> {
    d.deserialize_seq(Records)
}
