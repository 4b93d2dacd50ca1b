//! Recognising a full descriptor table, which passes as soon as any connection closes: callers
//! wait briefly and retry instead of failing a session or a probe over it.

use std::io;

/// `EMFILE` (the process's table is full) and `ENFILE` (the system's), as Linux and the BSDs
/// number them; `std` has no `ErrorKind` for either.
const EMFILE: i32 = 24;
const ENFILE: i32 = 23;

/// True for an error that says no descriptor was free.
pub fn is_out_of_descriptors(err: &io::Error) -> bool {
    matches!(err.raw_os_error(), Some(EMFILE | ENFILE))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_descriptor_exhaustion_is_recognised() {
        assert!(is_out_of_descriptors(&io::Error::from_raw_os_error(24)));
        assert!(is_out_of_descriptors(&io::Error::from_raw_os_error(23)));
        assert!(!is_out_of_descriptors(&io::Error::from_raw_os_error(111)));
        assert!(!is_out_of_descriptors(&io::ErrorKind::Other.into()));
    }
}
