//! Topic ids and their names, as brokers told them: requests of recent versions (Fetch v13+,
//! Produce v13, DeleteTopics v6) name topics by id, and rules name topics by name.
//!
//! Learned from every Metadata, CreateTopics and DescribeTopicPartitions answer that crosses a
//! listener, and shared by the listener's sessions: a client reads metadata on one connection
//! and fetches on another. An id nobody has told the proxy about is refused as a broker refuses
//! an id it does not know (`UNKNOWN_TOPIC_ID`), which makes the client read metadata again,
//! through the proxy.

use std::collections::HashMap;

use kafka_protocol::messages::TopicName;
use parking_lot::RwLock;
use uuid::Uuid;

/// Ids remembered at most; past it the map starts again (ids are then learned anew), so a
/// broker that invents ids cannot grow the proxy.
const MAX_TOPIC_IDS: usize = 200_000;

/// Topic ids and names, shared by a listener's sessions.
#[derive(Debug, Default)]
pub struct TopicIds {
    names: RwLock<HashMap<Uuid, TopicName>>,
}

impl TopicIds {
    /// The name of the topic with `id`, when a broker said it.
    pub fn name(&self, id: &Uuid) -> Option<TopicName> {
        self.names.read().get(id).cloned()
    }

    /// Remembers what a broker said: `id` names `name` (the nil id names nothing).
    pub fn learn(&self, id: Uuid, name: &TopicName) {
        if id.is_nil() {
            return;
        }
        if self.names.read().get(&id) == Some(name) {
            return;
        }
        let mut names = self.names.write();
        if names.len() >= MAX_TOPIC_IDS {
            names.clear();
        }
        names.insert(id, name.clone());
    }

    /// Forgets a topic a broker deleted.
    pub fn forget(&self, id: &Uuid) {
        self.names.write().remove(id);
    }

    /// How many ids are known.
    pub fn len(&self) -> usize {
        self.names.read().len()
    }

    /// Whether no id is known.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
