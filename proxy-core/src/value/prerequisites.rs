//! What a listener demands of a session before it may forward.

/// What a listener requires of a session before it may forward. TCP is always required.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Prerequisites {
    bits: u8,
}

impl Prerequisites {
    /// Only an accepted TCP connection.
    pub const TCP: Self = Self { bits: 0 };
    /// A completed TLS handshake.
    pub const TLS: Self = Self { bits: 1 };
    /// A successful authentication (SASL, or an accepted mTLS principal).
    pub const AUTHENTICATED: Self = Self { bits: 2 };

    /// Both sets of requirements.
    pub const fn and(self, other: Self) -> Self {
        Self {
            bits: self.bits | other.bits,
        }
    }

    /// True when every requirement of `other` is part of this set.
    pub const fn contains(self, other: Self) -> bool {
        self.bits & other.bits == other.bits
    }
}
