//! The checks of the `proxy_header` fuzz target (`fuzz/fuzz_targets/proxy_header.rs`), here so
//! that the target and its stable replay over the seed corpus (`corpus_tests`) run the same
//! ones. Compiled only for tests and for cargo-fuzz builds (`--cfg fuzzing`).

use bytes::BytesMut;

use super::{DEFAULT_MAX_HEADER_LEN, Detection, ProxyHeaderError, decode, detect};
use crate::context::ProxyHeader;

/// What decoding left: the header's raw bytes and the bytes after it, `None` for "need more",
/// or the error.
type Outcome = Result<Option<(Vec<u8>, Vec<u8>)>, ProxyHeaderError>;

/// The `proxy_header` fuzz target: `input` is the first bytes a client sends, decoded whole and
/// split in two where its first byte says (so the fuzzer steers the cut along with the content).
///
/// For any input: `detect` and `decode` never panic; a decoded header is exactly a prefix of the
/// input, within the size limit, with the rest left in the buffer; `Ok(None)` ("need more bytes")
/// only while the input is below the limit; and the input split in two (as by TCP segments)
/// decodes exactly as it does whole.
pub fn proxy_header(input: &[u8]) {
    proxy_header_splits(input, first_byte_split(input));
}

/// Where the `proxy_header` target splits `input`: its first byte, modulo the input's length
/// plus one; nowhere for an empty input.
pub fn first_byte_split(input: &[u8]) -> Option<usize> {
    input
        .first()
        .map(|&first| usize::from(first) % (input.len() + 1))
}

/// [`proxy_header`]'s checks, with `input` split at each of `splits` (each at most its length).
pub fn proxy_header_splits(input: &[u8], splits: impl IntoIterator<Item = usize>) {
    let whole = decode_whole(input);
    for at in splits {
        let split = decode_split(input, at);
        // Errors need only agree that it is an error: a prefix may be refused for a different
        // reason than the whole (the v1 parser judges only as much of the line as it has).
        assert_eq!(
            whole.as_ref().map(Option::is_some).ok(),
            split.as_ref().map(Option::is_some).ok(),
            "split at {at} decodes differently: whole {whole:?}, split {split:?}"
        );
        if let (Ok(Some(whole)), Ok(Some(split))) = (&whole, &split) {
            assert_eq!(whole, split, "split at {at} decodes a different header");
        }
    }
}

/// Decodes `input` in one buffer and checks the invariants.
fn decode_whole(input: &[u8]) -> Outcome {
    let mut buf = BytesMut::from(input);
    let result = decode(&mut buf, DEFAULT_MAX_HEADER_LEN);
    check(input, &buf, &result);
    result.map(|header| header.map(|h| (h.raw().to_vec(), buf.to_vec())))
}

/// Decodes `input[..at]`; if that needs more, appends the rest and decodes again, as a driver
/// does when a header spans two reads. Either way the buffer ends up holding what followed.
fn decode_split(input: &[u8], at: usize) -> Outcome {
    let (head, tail) = input.split_at(at);
    let mut buf = BytesMut::from(head);
    let mut result = decode(&mut buf, DEFAULT_MAX_HEADER_LEN);
    check(head, &buf, &result);
    if matches!(result, Ok(None)) {
        buf.extend_from_slice(tail);
        result = decode(&mut buf, DEFAULT_MAX_HEADER_LEN);
        check(input, &buf, &result);
    } else {
        buf.extend_from_slice(tail);
    }
    result.map(|header| header.map(|h| (h.raw().to_vec(), buf.to_vec())))
}

/// The invariants of one `decode` of all of `input`, leaving `remaining` in the buffer.
fn check(input: &[u8], remaining: &[u8], result: &Result<Option<ProxyHeader>, ProxyHeaderError>) {
    let _ = detect(input);
    match result {
        Ok(Some(header)) => {
            let raw = header.raw();
            assert_eq!(
                raw.len() + remaining.len(),
                input.len(),
                "bytes lost or invented"
            );
            assert_eq!(
                &raw[..],
                &input[..raw.len()],
                "raw is not the input's prefix"
            );
            assert_eq!(
                remaining,
                &input[raw.len()..],
                "the bytes after the header changed"
            );
            assert!(raw.len() <= DEFAULT_MAX_HEADER_LEN, "header over the limit");
            assert_eq!(
                detect(input),
                Detection::Present,
                "decoded a header detect missed"
            );
            touch_accessors(header);
        }
        Ok(None) => {
            assert!(
                input.len() < DEFAULT_MAX_HEADER_LEN,
                "needs more past the limit"
            );
            assert_eq!(remaining, input, "Ok(None) consumed bytes");
        }
        Err(err) => {
            let _ = err.label();
        }
    }
}

/// Every typed accessor must be total over whatever TLVs a peer sends.
fn touch_accessors(header: &ProxyHeader) {
    let _ = header.addrs();
    for tlv in header.tlvs() {
        assert_eq!(header.tlv(tlv.kind).map(|t| t.kind), Some(tlv.kind));
        let _ = tlv.value.len();
    }
    let _ = header.authority();
    let _ = header.alpn();
    let _ = header.unique_id();
    let _ = header.ssl();
    let _ = header.aws_vpc_endpoint_id();
    let _ = header.azure_private_link_id();
}
