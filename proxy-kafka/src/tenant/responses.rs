//! Answers, from the broker's names to the tenant's: the prefix comes off every topic, group and
//! transactional id; what does not carry it is not the tenant's and is left out (another
//! tenant's topics in a Metadata for every topic, the internal `__consumer_offsets`); error
//! messages that quote a name quote the tenant's.

use kafka_protocol::messages::{GroupId, ResponseKind, TopicName, TransactionalId};
use kafka_protocol::protocol::StrBytes;

use super::names::Namespace;
use crate::authorization::TopicIds;

/// Kafka's config resource types.
const CONFIG_TOPIC: i8 = 2;
const CONFIG_GROUP: i8 = 32;

fn topic(ns: &Namespace, name: &mut TopicName) -> bool {
    match ns.strip(&name.0) {
        Some(stripped) => {
            name.0 = stripped;
            true
        }
        None => false,
    }
}

fn text(ns: &Namespace, name: &mut StrBytes) -> bool {
    match ns.strip(name) {
        Some(stripped) => {
            *name = stripped;
            true
        }
        None => false,
    }
}

fn group(ns: &Namespace, id: &mut GroupId) -> bool {
    text(ns, &mut id.0)
}

fn transactional_id(ns: &Namespace, id: &mut TransactionalId) -> bool {
    text(ns, &mut id.0)
}

fn message(ns: &Namespace, message: &mut Option<StrBytes>) {
    if let Some(text) = message {
        *text = ns.strip_message(text);
    }
}

/// A topic an answer names by name (stripped) or only by id: kept when a broker named that id
/// with the tenant's prefix (a fetch session on the broker is keyed by its id alone, so an
/// answer could carry an id the request did not).
fn topic_or_id(ns: &Namespace, ids: &TopicIds, name: &mut TopicName, id: &uuid::Uuid) -> bool {
    if name.0.is_empty() && !id.is_nil() {
        return ids.name(id).is_some_and(|known| ns.owns(&known));
    }
    topic(ns, name)
}

fn config_resource(ns: &Namespace, kind: i8, name: &mut StrBytes) -> bool {
    match kind {
        CONFIG_TOPIC | CONFIG_GROUP => text(ns, name),
        _ => false,
    }
}

/// Maps `response` to the tenant's names in place.
pub(crate) fn map(ns: &Namespace, ids: &TopicIds, response: &mut ResponseKind) {
    use ResponseKind as R;
    match response {
        R::Produce(body) => body
            .responses
            .retain_mut(|t| topic_or_id(ns, ids, &mut t.name, &t.topic_id)),
        R::Fetch(body) => body
            .responses
            .retain_mut(|t| topic_or_id(ns, ids, &mut t.topic, &t.topic_id)),
        R::ListOffsets(body) => body.topics.retain_mut(|t| topic(ns, &mut t.name)),
        R::Metadata(body) => body.topics.retain_mut(|t| match &mut t.name {
            Some(name) => topic(ns, name),
            None => false,
        }),
        R::OffsetCommit(body) => body
            .topics
            .retain_mut(|t| topic_or_id(ns, ids, &mut t.name, &t.topic_id)),
        R::OffsetFetch(body) => {
            body.topics.retain_mut(|t| topic(ns, &mut t.name));
            body.groups.retain_mut(|g| {
                g.topics
                    .retain_mut(|t| topic_or_id(ns, ids, &mut t.name, &t.topic_id));
                group(ns, &mut g.group_id)
            });
        }
        R::FindCoordinator(body) => {
            message(ns, &mut body.error_message);
            body.coordinators.retain_mut(|c| {
                message(ns, &mut c.error_message);
                text(ns, &mut c.key)
            });
        }
        R::DescribeGroups(body) => body.groups.retain_mut(|g| {
            message(ns, &mut g.error_message);
            group(ns, &mut g.group_id)
        }),
        R::ListGroups(body) => body.groups.retain_mut(|g| group(ns, &mut g.group_id)),
        R::DeleteGroups(body) => body.results.retain_mut(|g| group(ns, &mut g.group_id)),
        R::CreateTopics(body) => body.topics.retain_mut(|t| {
            message(ns, &mut t.error_message);
            topic(ns, &mut t.name)
        }),
        R::DeleteTopics(body) => body.responses.retain_mut(|t| {
            message(ns, &mut t.error_message);
            match &mut t.name {
                Some(name) => topic(ns, name),
                None => !t.topic_id.is_nil(),
            }
        }),
        R::DeleteRecords(body) => body.topics.retain_mut(|t| topic(ns, &mut t.name)),
        R::CreatePartitions(body) => body.results.retain_mut(|t| {
            message(ns, &mut t.error_message);
            topic(ns, &mut t.name)
        }),
        R::OffsetForLeaderEpoch(body) => body.topics.retain_mut(|t| topic(ns, &mut t.topic)),
        R::AddPartitionsToTxn(body) => body
            .results_by_topic_v3_and_below
            .retain_mut(|t| topic(ns, &mut t.name)),
        R::TxnOffsetCommit(body) => body.topics.retain_mut(|t| topic(ns, &mut t.name)),
        R::DescribeConfigs(body) => body.results.retain_mut(|r| {
            message(ns, &mut r.error_message);
            config_resource(ns, r.resource_type, &mut r.resource_name)
        }),
        R::AlterConfigs(body) => body.responses.retain_mut(|r| {
            message(ns, &mut r.error_message);
            config_resource(ns, r.resource_type, &mut r.resource_name)
        }),
        R::IncrementalAlterConfigs(body) => body.responses.retain_mut(|r| {
            message(ns, &mut r.error_message);
            config_resource(ns, r.resource_type, &mut r.resource_name)
        }),
        R::OffsetDelete(body) => body.topics.retain_mut(|t| topic(ns, &mut t.name)),
        R::DescribeProducers(body) => body.topics.retain_mut(|t| topic(ns, &mut t.name)),
        R::DescribeTransactions(body) => body.transaction_states.retain_mut(|s| {
            s.topics.retain_mut(|t| topic(ns, &mut t.topic));
            transactional_id(ns, &mut s.transactional_id)
        }),
        R::ListTransactions(body) => body
            .transaction_states
            .retain_mut(|s| transactional_id(ns, &mut s.transactional_id)),
        R::ConsumerGroupHeartbeat(body) => message(ns, &mut body.error_message),
        R::ConsumerGroupDescribe(body) => body.groups.retain_mut(|g| {
            message(ns, &mut g.error_message);
            for member in &mut g.members {
                member.subscribed_topic_names.retain_mut(|t| topic(ns, t));
                if let Some(regex) = &mut member.subscribed_topic_regex
                    && let Some(tenant) = ns.unregex(regex)
                {
                    *regex = StrBytes::from_string(tenant);
                }
                for assignment in [&mut member.assignment, &mut member.target_assignment] {
                    assignment
                        .topic_partitions
                        .retain_mut(|t| topic(ns, &mut t.topic_name));
                }
            }
            group(ns, &mut g.group_id)
        }),
        R::DescribeTopicPartitions(body) => {
            body.topics.retain_mut(|t| match &mut t.name {
                Some(name) => topic(ns, name),
                None => false,
            });
            if let Some(cursor) = &mut body.next_cursor
                && !topic(ns, &mut cursor.topic_name)
            {
                body.next_cursor = None;
            }
        }
        _ => {}
    }
}
