//! A bounds-checked reader over a Kafka frame's bytes, for the places that read the wire without
//! decoding a message: the request header every request is parsed for ([`super::header`]) and
//! the look for KIP-951 endpoints in a response body ([`super::tagged_scan`]). It never allocates
//! and never reads past the slice it was given. Its methods are small and `#[inline]`: the scan
//! calls them a few times per partition of every Produce and Fetch response.

use super::KafkaError;

/// Reads fields off a byte slice, front to back.
#[derive(Debug)]
pub(crate) struct Cursor<'a> {
    bytes: &'a [u8],
    /// Bytes read so far: the offset of the next field.
    pub(crate) pos: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, pos: 0 }
    }

    /// Bytes not read yet.
    #[inline]
    pub(crate) fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    #[inline]
    fn take<const N: usize>(&mut self) -> Result<[u8; N], KafkaError> {
        let end = self.pos.checked_add(N).ok_or(KafkaError::Truncated)?;
        let chunk = self.bytes.get(self.pos..end).ok_or(KafkaError::Truncated)?;
        self.pos = end;
        let mut out = [0; N];
        out.copy_from_slice(chunk);
        Ok(out)
    }

    #[inline]
    pub(crate) fn i16(&mut self) -> Result<i16, KafkaError> {
        self.take::<2>().map(i16::from_be_bytes)
    }

    #[inline]
    pub(crate) fn i32(&mut self) -> Result<i32, KafkaError> {
        self.take::<4>().map(i32::from_be_bytes)
    }

    /// The next `n` bytes, as a slice of the frame.
    #[inline]
    pub(crate) fn slice(&mut self, n: usize) -> Result<&'a [u8], KafkaError> {
        let end = self.pos.checked_add(n).ok_or(KafkaError::Truncated)?;
        let bytes = self.bytes.get(self.pos..end).ok_or(KafkaError::Truncated)?;
        self.pos = end;
        Ok(bytes)
    }

    #[inline]
    pub(crate) fn skip(&mut self, n: usize) -> Result<(), KafkaError> {
        self.slice(n).map(|_| ())
    }

    /// An unsigned varint of at most 5 bytes (a u32), as the protocol uses.
    #[inline]
    pub(crate) fn uvarint(&mut self) -> Result<u32, KafkaError> {
        // Counts, lengths and tags are nearly always below 128: one byte.
        if let Some(&byte) = self.bytes.get(self.pos)
            && byte & 0x80 == 0
        {
            self.pos += 1;
            return Ok(u32::from(byte));
        }
        let mut value = 0u32;
        for i in 0..5 {
            let [byte] = self.take::<1>()?;
            value |= u32::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(KafkaError::Malformed("varint longer than 5 bytes"))
    }

    /// The length of a compact (flexible-version) string, bytes or array: the varint holds the
    /// length plus one, and 0 for null (`None`).
    #[inline]
    pub(crate) fn compact_len(&mut self) -> Result<Option<usize>, KafkaError> {
        Ok(match self.uvarint()? {
            0 => None,
            n => Some(n as usize - 1),
        })
    }

    /// Skips a tagged-field section without looking at its fields.
    pub(crate) fn skip_tagged_fields(&mut self) -> Result<(), KafkaError> {
        let count = self.uvarint()?;
        for _ in 0..count {
            self.uvarint()?;
            let size = self.uvarint()?;
            self.skip(size as usize)?;
        }
        Ok(())
    }
}
