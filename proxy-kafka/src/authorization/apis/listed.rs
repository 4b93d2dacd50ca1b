//! Requests that list resources, each answered by an entry of the response in kind: trimmed to
//! the allowed entries, with the denied ones' errors (as a broker refusing them would write
//! them) merged back into the answer in request order.

use std::collections::HashMap;

use kafka_protocol::messages::{RequestKind, ResponseKind};
use kafka_protocol::protocol::StrBytes;

use super::super::error_answer::error_answer;
use super::Verdict;

/// What an entry is about, to put answers in request order: a name, a topic id, or a name of
/// a kind (DescribeConfigs' resources).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Key {
    /// A name.
    Name(StrBytes),
    /// A topic id.
    Id(uuid::Uuid),
    /// A name of a kind.
    Typed(i8, StrBytes),
}

impl Key {
    /// A topic named by id where the id is set, else by name.
    pub(crate) fn topic(name: &StrBytes, id: &uuid::Uuid) -> Self {
        if id.is_nil() {
            Self::Name(name.clone())
        } else {
            Self::Id(*id)
        }
    }
}

/// An API whose request lists resources answered one by one.
pub(crate) trait Listed {
    /// A request entry.
    type Entry: Send + 'static;
    /// A response entry.
    type Answer: Send + 'static;

    /// The request's list (`None` for another API).
    fn entries(request: &mut RequestKind) -> Option<&mut Vec<Self::Entry>>;
    /// The answer's list (`None` for another API).
    fn answers(response: &mut ResponseKind) -> Option<&mut Vec<Self::Answer>>;
    /// What a request entry is about.
    fn entry_key(entry: &Self::Entry) -> Key;
    /// What an answer entry is about.
    fn answer_key(answer: &Self::Answer) -> Key;
}

/// The verdict for `request` whose entries were decided `codes` (in order; `None`: allowed,
/// else the error to refuse the entry with).
pub(crate) fn split<L: Listed>(
    request: impl FnOnce() -> RequestKind,
    version: i16,
    codes: Vec<Option<i16>>,
) -> Verdict {
    if codes.iter().all(Option::is_none) {
        return Verdict::Forward;
    }
    let request = request();
    let mut order_source = request.clone();
    let Some(entries) = L::entries(&mut order_source) else {
        return Verdict::Forward;
    };
    let order: Vec<Key> = entries.iter().map(L::entry_key).collect();
    // The denied entries' answers, one refusal per error code.
    let mut denied: Vec<L::Answer> = Vec::new();
    let mut distinct: Vec<i16> = codes.iter().flatten().copied().collect();
    distinct.sort_unstable();
    distinct.dedup();
    for code in distinct {
        let mut refused = request.clone();
        if let Some(entries) = L::entries(&mut refused) {
            retain_where(entries, &codes, |entry_code| entry_code == Some(code));
        }
        // Every API kafka-protocol knows has an answer; one it does not is refused whole
        // (and, with no answer to build, the stage closes the session).
        let Some(mut answer) = error_answer(&refused, version, code) else {
            return Verdict::Refuse(code);
        };
        if let Some(answers) = L::answers(&mut answer) {
            denied.append(answers);
        }
    }
    if codes.iter().all(Option::is_some) {
        // Nothing to forward: an answer of the denied entries alone, with no error of its own.
        let mut empty = request.clone();
        if let Some(entries) = L::entries(&mut empty) {
            entries.clear();
        }
        let Some(mut answer) = error_answer(&empty, version, 0) else {
            return Verdict::Refuse(codes.iter().flatten().copied().next().unwrap_or_default());
        };
        if let Some(answers) = L::answers(&mut answer) {
            *answers = denied;
            in_order::<L>(answers, &order);
        }
        return Verdict::Answer(Box::new(answer));
    }
    Verdict::Trim {
        trim: Box::new(move |request: &mut RequestKind| {
            if let Some(entries) = L::entries(request) {
                retain_where(entries, &codes, |code| code.is_none());
            }
        }),
        merge: Box::new(move |response: &mut ResponseKind| {
            if let Some(answers) = L::answers(response) {
                answers.append(&mut denied);
                in_order::<L>(answers, &order);
            }
        }),
    }
}

/// Keeps the entries whose code passes `keep`.
pub(crate) fn retain_where<T>(
    entries: &mut Vec<T>,
    codes: &[Option<i16>],
    keep: impl Fn(Option<i16>) -> bool,
) {
    let mut at = 0;
    entries.retain(|_| {
        let code = codes.get(at).copied().flatten();
        at += 1;
        keep(code)
    });
}

/// Puts `answers` in the order their keys have in `order` (answers of keys not there last, as
/// they came).
fn in_order<L: Listed>(answers: &mut [L::Answer], order: &[Key]) {
    let rank: HashMap<&Key, usize> = order
        .iter()
        .enumerate()
        .rev()
        .map(|(at, key)| (key, at))
        .collect();
    answers.sort_by_cached_key(|answer| {
        rank.get(&L::answer_key(answer))
            .copied()
            .unwrap_or(usize::MAX)
    });
}

/// A request's list, or an optional one (absent: "every resource", nothing to trim).
pub(crate) trait AsList<T> {
    /// The list, when there is one.
    fn as_list(&mut self) -> Option<&mut Vec<T>>;
}

impl<T> AsList<T> for Vec<T> {
    fn as_list(&mut self) -> Option<&mut Vec<T>> {
        Some(self)
    }
}

impl<T> AsList<T> for Option<Vec<T>> {
    fn as_list(&mut self) -> Option<&mut Vec<T>> {
        self.as_mut()
    }
}

/// Declares a [`Listed`] API: its request list and response list, and what each entry is
/// about.
macro_rules! listed {
    (
        $(#[$doc:meta])*
        $name:ident:
        $req:ident . $rfield:ident : $entry:ty => |$e:ident| $ekey:expr,
        $resp:ident . $afield:ident : $answer:ty => |$a:ident| $akey:expr $(,)?
    ) => {
        $(#[$doc])*
        pub(crate) struct $name;

        impl $crate::authorization::apis::listed::Listed for $name {
            type Entry = $entry;
            type Answer = $answer;

            fn entries(
                request: &mut kafka_protocol::messages::RequestKind,
            ) -> Option<&mut Vec<$entry>> {
                match request {
                    kafka_protocol::messages::RequestKind::$req(body) => {
                        $crate::authorization::apis::listed::AsList::as_list(&mut body.$rfield)
                    }
                    _ => None,
                }
            }

            fn answers(
                response: &mut kafka_protocol::messages::ResponseKind,
            ) -> Option<&mut Vec<$answer>> {
                match response {
                    kafka_protocol::messages::ResponseKind::$resp(body) => Some(&mut body.$afield),
                    _ => None,
                }
            }

            fn entry_key($e: &$entry) -> $crate::authorization::apis::listed::Key {
                $ekey
            }

            fn answer_key($a: &$answer) -> $crate::authorization::apis::listed::Key {
                $akey
            }
        }
    };
}
