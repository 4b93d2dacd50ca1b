//! KIP-951 endpoint detection without a decode, for the broker-address rewrite
//! ([`super::rewrite`]): a Produce (v10+) or Fetch (v16+) response names brokers only in
//! `node_endpoints`, tag 0 of its top-level tagged fields, which a broker sends only when
//! leadership moved. Every other such response is written on as read; deciding that with
//! `kafka-protocol` meant decoding every topic and partition of every response, on the hottest
//! path there is.
//!
//! [`node_endpoints_present`] walks the body as the schema lays it out (the `kafka-protocol`
//! decoders in `vendor/kafka-protocol/src/messages/{produce,fetch}_response.rs`, field by field),
//! skipping what it does not need: compact arrays element by element, compact strings and bytes
//! (records included) by their length, fixed-width fields and UUIDs by their width, and nested
//! tagged-field sections. It allocates nothing and copies nothing.
//!
//! It never says "absent" about a body the decoder would refuse: it refuses what the decoder
//! refuses (nulls where the schema has none, strings that are not UTF-8, a known nested tagged
//! field such as a partition's `current_leader` that does not fill its declared size) and, more
//! strictly, bytes after the body or a 5-byte varint that does not end. On any error the caller
//! decodes the body in full, so a scanner bug can cost a decode but never skip a rewrite.

use kafka_protocol::messages::ApiKey;

use super::KafkaError;
use super::wire::Cursor;

/// Why a body could not be walked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ScanError {
    /// The body ended inside a field, or a varint ran on.
    #[error(transparent)]
    Wire(#[from] KafkaError),
    /// An API or version whose layout the scanner does not walk.
    #[error("{api:?} v{version} responses are not scanned")]
    Version {
        /// The API.
        api: ApiKey,
        /// Its version.
        version: i16,
    },
    /// Something the `kafka-protocol` decoder would refuse.
    #[error("{0}")]
    Refused(&'static str),
    /// Bytes left after the top-level tagged fields.
    #[error("{0} bytes after the body")]
    Trailing(usize),
}

/// The Produce response versions walked: the ones with `node_endpoints` (KIP-951), up to the
/// newest `kafka-protocol` decodes.
const PRODUCE: std::ops::RangeInclusive<i16> = 10..=13;
/// The Fetch response versions walked, likewise.
const FETCH: std::ops::RangeInclusive<i16> = 16..=18;

/// True when the top-level tagged fields of `body` (a response body, after its header) hold tag
/// 0, `node_endpoints`, and false when they do not; an error when the body cannot be walked.
pub(crate) fn node_endpoints_present(
    api: ApiKey,
    version: i16,
    body: &[u8],
) -> Result<bool, ScanError> {
    let mut cursor = Cursor::new(body);
    match api {
        ApiKey::Produce if PRODUCE.contains(&version) => produce_response(&mut cursor, version)?,
        ApiKey::Fetch if FETCH.contains(&version) => fetch_response(&mut cursor)?,
        _ => return Err(ScanError::Version { api, version }),
    }
    top_level_tag_0(&mut cursor)
}

// === Produce ===

/// `LeaderIdAndEpoch` (a partition's `current_leader`, tag 0): leader_id, leader_epoch.
const PRODUCE_PARTITION_TAGS: &[(u32, usize)] = &[(0, 4 + 4)];

/// `ProduceResponse` up to its tagged fields.
fn produce_response(c: &mut Cursor<'_>, version: i16) -> Result<(), ScanError> {
    // responses: TopicProduceResponse
    for _ in 0..array(c)? {
        if version <= 12 {
            string(c)?; // name
        } else {
            c.skip(16)?; // topic_id
        }
        // partition_responses: PartitionProduceResponse
        for _ in 0..array(c)? {
            // index, error_code, base_offset, log_append_time_ms, log_start_offset
            c.skip(4 + 2 + 8 + 8 + 8)?;
            // record_errors: BatchIndexAndErrorMessage
            for _ in 0..array(c)? {
                c.skip(4)?; // batch_index
                nullable_string(c)?; // batch_index_error_message
                tagged_fields(c, &[])?;
            }
            nullable_string(c)?; // error_message
            tagged_fields(c, PRODUCE_PARTITION_TAGS)?;
        }
        tagged_fields(c, &[])?;
    }
    c.skip(4)?; // throttle_time_ms
    Ok(())
}

// === Fetch ===

/// A partition's known tagged fields: `diverging_epoch` (tag 0: epoch, end_offset),
/// `current_leader` (tag 1: leader_id, leader_epoch), `snapshot_id` (tag 2: end_offset, epoch).
const FETCH_PARTITION_TAGS: &[(u32, usize)] = &[(0, 4 + 8), (1, 4 + 4), (2, 8 + 4)];

/// `FetchResponse` (v13+: topics by id) up to its tagged fields.
fn fetch_response(c: &mut Cursor<'_>) -> Result<(), ScanError> {
    c.skip(4 + 2 + 4)?; // throttle_time_ms, error_code, session_id
    // responses: FetchableTopicResponse
    for _ in 0..array(c)? {
        c.skip(16)?; // topic_id
        // partitions: PartitionData
        for _ in 0..array(c)? {
            // partition_index, error_code, high_watermark, last_stable_offset, log_start_offset
            c.skip(4 + 2 + 8 + 8 + 8)?;
            // aborted_transactions (nullable): producer_id, first_offset
            for _ in 0..nullable_array(c)?.unwrap_or(0) {
                c.skip(8 + 8)?;
                tagged_fields(c, &[])?;
            }
            c.skip(4)?; // preferred_read_replica
            if let Some(len) = c.compact_len()? {
                c.skip(len)?; // records (nullable)
            }
            tagged_fields(c, FETCH_PARTITION_TAGS)?;
        }
        tagged_fields(c, &[])?;
    }
    Ok(())
}

// === the parts ===

/// The top-level tagged fields, which must end the body: whether tag 0 is among them.
fn top_level_tag_0(c: &mut Cursor<'_>) -> Result<bool, ScanError> {
    let mut found = false;
    for _ in 0..c.uvarint()? {
        let tag = c.uvarint()?;
        let size = c.uvarint()?;
        c.skip(size as usize)?;
        found |= tag == 0;
    }
    match c.remaining() {
        0 => Ok(found),
        left => Err(ScanError::Trailing(left)),
    }
}

/// A tagged-field section whose `known` tags hold a struct of that many fixed-width bytes
/// followed by its own (unknown-only) tagged fields: the decoder reads such a struct in place,
/// so it must fill exactly the size the tag declares. Other tags are skipped by their size.
fn tagged_fields(c: &mut Cursor<'_>, known: &[(u32, usize)]) -> Result<(), ScanError> {
    for _ in 0..c.uvarint()? {
        let tag = c.uvarint()?;
        let size = c.uvarint()? as usize;
        let value = c.slice(size)?;
        if let Some(&(_, fixed)) = known.iter().find(|(known_tag, _)| *known_tag == tag) {
            let mut inner = Cursor::new(value);
            inner.skip(fixed)?;
            inner.skip_tagged_fields()?;
            if inner.remaining() != 0 {
                return Err(ScanError::Refused(
                    "a known tagged field longer than its struct",
                ));
            }
        }
    }
    Ok(())
}

/// A compact array's element count; null is refused, as for every non-nullable array.
fn array(c: &mut Cursor<'_>) -> Result<usize, ScanError> {
    nullable_array(c)?.ok_or(ScanError::Refused("a null array where the schema has none"))
}

/// A nullable compact array's element count. Every element takes at least a byte, so a count
/// beyond the bytes left is a truncated body, found before any element is walked.
fn nullable_array(c: &mut Cursor<'_>) -> Result<Option<usize>, ScanError> {
    let count = c.compact_len()?;
    if count.is_some_and(|n| n > c.remaining()) {
        return Err(KafkaError::Truncated.into());
    }
    Ok(count)
}

/// A non-nullable compact string.
fn string(c: &mut Cursor<'_>) -> Result<(), ScanError> {
    match nullable_string(c)? {
        true => Ok(()),
        false => Err(ScanError::Refused(
            "a null string where the schema has none",
        )),
    }
}

/// A nullable compact string, which the decoder takes only as UTF-8: false when null.
fn nullable_string(c: &mut Cursor<'_>) -> Result<bool, ScanError> {
    let Some(len) = c.compact_len()? else {
        return Ok(false);
    };
    std::str::from_utf8(c.slice(len)?).map_err(|_| ScanError::Refused("a string not UTF-8"))?;
    Ok(true)
}
