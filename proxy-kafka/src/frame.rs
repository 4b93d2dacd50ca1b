//! Kafka framing, the first thing read and the last thing written on a Kafka session: an i32
//! length prefix, then that many bytes. [`super::codec::KafkaCodec`] cuts frames out of a read
//! buffer with [`next_frame`], refusing a declared size beyond the listener's maximum before
//! allocating anything; messages a stage changed are written back with [`encode_frame`].

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::ApiKey;
use proxy_core::codec::CodecError;

use super::KafkaError;

/// The length prefix of every frame.
pub(crate) const LENGTH_PREFIX: usize = 4;

/// The least a read buffer grows by at once toward a large frame's declared size.
const GROW_MIN: usize = 64 * 1024;

/// The next whole frame in `buf`, length prefix included; `None` until it has all arrived.
pub(crate) fn next_frame(
    buf: &mut BytesMut,
    max_frame_size: usize,
) -> Result<Option<Bytes>, FrameError> {
    let Some(prefix) = buf.get(..LENGTH_PREFIX) else {
        return Ok(None);
    };
    let declared = i32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]);
    let len = usize::try_from(declared).map_err(|_| FrameError::Negative(declared))?;
    if len > max_frame_size {
        return Err(FrameError::TooLarge {
            len,
            max: max_frame_size,
        });
    }
    let total = LENGTH_PREFIX + len;
    if buf.len() < total {
        // Doubling toward the declared size: a declared size alone never makes the proxy
        // allocate it all, and a frame that does arrive is copied a few times as it grows,
        // not once per step.
        if buf.capacity() < total {
            let step = buf.capacity().max(GROW_MIN);
            buf.reserve((total - buf.len()).min(step));
        }
        return Ok(None);
    }
    Ok(Some(buf.split_to(total).freeze()))
}

/// The whole length of the frame `buf` begins with, length prefix included, once the prefix
/// has arrived; `None` before, and for a negative size (which [`next_frame`] refuses).
pub(crate) fn frame_len(buf: &[u8]) -> Option<usize> {
    let prefix = buf.get(..LENGTH_PREFIX)?;
    let declared = i32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]);
    usize::try_from(declared)
        .ok()
        .map(|len| LENGTH_PREFIX + len)
}

/// Why a frame was refused before it was read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FrameError {
    #[error("negative frame size {0}")]
    Negative(i32),
    #[error("frame of {len} bytes exceeds the maximum of {max} bytes (max_frame_size)")]
    TooLarge { len: usize, max: usize },
}

impl From<FrameError> for CodecError {
    fn from(err: FrameError) -> Self {
        CodecError {
            detail: err.to_string().into(),
        }
    }
}

/// Encodes a frame: a length prefix, then what `write` puts after it.
pub(crate) fn encode_frame<E: std::fmt::Display>(
    api: ApiKey,
    version: i16,
    write: impl FnOnce(&mut BytesMut) -> Result<(), E>,
) -> Result<Bytes, KafkaError> {
    let mut buf = BytesMut::with_capacity(256);
    buf.put_i32(0);
    write(&mut buf).map_err(|err| KafkaError::Encode {
        api,
        version,
        detail: err.to_string(),
    })?;
    let len = i32::try_from(buf.len() - LENGTH_PREFIX).map_err(|_| KafkaError::Encode {
        api,
        version,
        detail: "message larger than 2 GiB".into(),
    })?;
    buf[..LENGTH_PREFIX].copy_from_slice(&len.to_be_bytes());
    Ok(buf.freeze())
}
