//! Fuzzes the SASL PLAIN (RFC 4616) message parser, which reads a Kafka client's credentials.
//!
//! For any input nothing panics, and a message that parses is exactly its three parts joined by
//! NUL, with a user name and a password and an authzid that is empty or the user name; what the
//! client side writes for those credentials (`plain_message`) parses back to them. The input is
//! also read as `user \n password` for the client side: its message parses back to them unless
//! one is empty or holds a NUL.
//!
//! `proxy-core`'s `sasl::corpus_tests` replays the seed corpus (`fuzz/corpus/sasl_plain/`) with
//! the same checks on stable in CI; keep the two in step.
#![no_main]

use libfuzzer_sys::fuzz_target;
use proxy_core::sasl::{parse_plain, plain_message};

fuzz_target!(|input: &[u8]| {
    if let Some(message) = parse_plain(input) {
        let joined = format!(
            "{}\0{}\0{}",
            message.authzid, message.username, message.password
        );
        assert_eq!(joined.as_bytes(), input, "parts lost or invented");
        assert!(!message.username.is_empty() && !message.password.is_empty());
        assert!(message.authzid.is_empty() || message.authzid == message.username);
        let written = plain_message(message.username, message.password);
        let reread = parse_plain(&written)
            .unwrap_or_else(|| panic!("{written:?} written for {message:?} does not parse"));
        assert_eq!(
            (reread.authzid, reread.username, reread.password),
            ("", message.username, message.password)
        );
    }
    let text = String::from_utf8_lossy(input);
    if let Some((username, password)) = text.split_once('\n') {
        let written = plain_message(username, password);
        let valid = !username.is_empty()
            && !password.is_empty()
            && !username.contains('\0')
            && !password.contains('\0');
        match parse_plain(&written) {
            Some(reread) => {
                assert!(valid, "{written:?} parsed");
                assert_eq!((reread.username, reread.password), (username, password));
            }
            None => assert!(!valid, "{written:?} refused"),
        }
    }
});
