//! A tenant's namespace on the shared cluster: every topic, group and transactional id of the
//! tenant is the broker's name with the tenant's prefix, and a broker name without it is not
//! the tenant's.

use kafka_protocol::protocol::StrBytes;

/// Kafka's longest topic name (`Topic.MAX_NAME_LENGTH`).
pub(crate) const MAX_TOPIC_NAME: usize = 249;

/// What a prefix may hold: the characters of a legal topic name (`[a-zA-Z0-9._-]`), so every
/// prefixed topic name is one too.
pub(crate) fn legal_in_topic_names(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// One session's tenant prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Namespace {
    prefix: Box<str>,
}

/// A tenant name that would exceed Kafka's limit once prefixed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TooLong;

impl Namespace {
    pub(crate) fn new(prefix: &str) -> Self {
        Self {
            prefix: Box::from(prefix),
        }
    }

    pub(crate) fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The broker's name of the tenant's topic `name`; refused (not truncated) when the
    /// prefixed name is longer than Kafka allows.
    pub(crate) fn topic(&self, name: &str) -> Result<StrBytes, TooLong> {
        if self.prefix.len() + name.len() > MAX_TOPIC_NAME {
            return Err(TooLong);
        }
        Ok(self.name(name))
    }

    /// The broker's name of the tenant's group or transactional id `name`.
    pub(crate) fn name(&self, name: &str) -> StrBytes {
        let mut broker = String::with_capacity(self.prefix.len() + name.len());
        broker.push_str(&self.prefix);
        broker.push_str(name);
        StrBytes::from_string(broker)
    }

    /// The tenant's name for the broker's `name`, or `None` when it is not the tenant's.
    pub(crate) fn strip(&self, name: &StrBytes) -> Option<StrBytes> {
        let text: &str = name;
        let rest = text.strip_prefix(&*self.prefix)?;
        Some(StrBytes::from_string(rest.to_owned()))
    }

    /// Whether the broker's `name` is the tenant's.
    pub(crate) fn owns(&self, name: &str) -> bool {
        name.starts_with(&*self.prefix)
    }

    /// A broker's error message with the tenant's names as the tenant knows them.
    pub(crate) fn strip_message(&self, message: &StrBytes) -> StrBytes {
        if !message.contains(&*self.prefix) {
            return message.clone();
        }
        StrBytes::from_string(message.replace(&*self.prefix, ""))
    }

    /// A KIP-848 subscription regex that matches `prefix` + what the tenant's regex matches,
    /// and nothing else: `^`, the quoted prefix, then the tenant's pattern in a group, its own
    /// start anchors taken out (Kafka matches the whole name, so a `^` can only mean "the start
    /// of the name", which is now after the prefix; librdkafka joins several patterns as
    /// `(^a)|(^b)`). Written in the syntax RE2 (Kafka's) and POSIX ERE (librdkafka's mock, which
    /// searches) share. An empty pattern (no regex) stays empty; `None` for a pattern whose
    /// parentheses do not balance, which could close the group and escape the prefix.
    pub(crate) fn regex(&self, tenant: &str) -> Option<String> {
        if tenant.is_empty() {
            return Some(String::new());
        }
        let body = without_start_anchors(tenant)?;
        Some(format!("^{}({body})", self.quoted_prefix()))
    }

    /// The tenant's view of a regex [`Self::regex`] wrote (for ConsumerGroupDescribe).
    pub(crate) fn unregex(&self, broker: &str) -> Option<String> {
        let rest = broker
            .strip_prefix('^')?
            .strip_prefix(&self.quoted_prefix())?;
        let inner = rest.strip_prefix('(')?.strip_suffix(')')?;
        Some(inner.to_owned())
    }

    /// The prefix as a regex matching it literally.
    fn quoted_prefix(&self) -> String {
        let mut quoted = String::with_capacity(self.prefix.len() * 2);
        for c in self.prefix.chars() {
            if !c.is_ascii_alphanumeric() && c != '_' {
                quoted.push('\\');
            }
            quoted.push(c);
        }
        quoted
    }
}

/// `pattern` without its `^` anchors (outside character classes, unescaped), or `None` when
/// it could escape the group it is put in: parentheses that do not balance, or a construct RE2
/// and POSIX read differently, so that counting them here could disagree with the engine that
/// matches (`\\Q...\\E` quoting, a backslash or a `[:class:]` inside brackets).
fn without_start_anchors(pattern: &str) -> Option<String> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::with_capacity(pattern.len());
    let mut depth = 0usize;
    let mut at = 0;
    while at < chars.len() {
        let c = chars[at];
        match c {
            '\\' => {
                let next = *chars.get(at + 1)?;
                if next == 'Q' || next == 'E' {
                    return None;
                }
                out.push(c);
                out.push(next);
                at += 2;
                continue;
            }
            '[' => {
                // A class: `[`, an optional `^`, then a `]` right there is a literal; it ends
                // at the next `]`.
                out.push(c);
                at += 1;
                if chars.get(at) == Some(&'^') {
                    out.push('^');
                    at += 1;
                }
                if chars.get(at) == Some(&']') {
                    out.push(']');
                    at += 1;
                }
                loop {
                    let inner = *chars.get(at)?;
                    if inner == '\\'
                        || (inner == '[' && matches!(chars.get(at + 1), Some(':' | '.' | '=')))
                    {
                        return None;
                    }
                    out.push(inner);
                    at += 1;
                    if inner == ']' {
                        break;
                    }
                }
                continue;
            }
            '^' => {}
            '(' => {
                depth += 1;
                out.push(c);
            }
            ')' => {
                depth = depth.checked_sub(1)?;
                out.push(c);
            }
            _ => out.push(c),
        }
        at += 1;
    }
    (depth == 0).then_some(out)
}
