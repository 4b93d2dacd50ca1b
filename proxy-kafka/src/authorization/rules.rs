//! An ACL rules file, Kafka's ACL model in TOML (`kafka-acls` terms), read with errors that
//! name the rule and the key:
//!
//! ```toml
//! [[rule]]
//! principal = "alice"              # "*": any authenticated principal; "ANONYMOUS": none
//! resource = "topic"               # topic | group | transactional_id | cluster
//! name = "orders-"                 # "*" matches every name; not for cluster
//! pattern = "prefixed"             # literal (default) | prefixed
//! operations = ["write", "describe"]
//! effect = "allow"                 # allow (default) | deny
//! # source = "10.0.0.0/8"          # the client's network (the PROXY-header client when trusted)
//! # sni = "broker-0.kafka.example.com"
//! # listener = "kafka"
//! ```

use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;

/// What a rule is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResourceType {
    /// A topic.
    Topic,
    /// A consumer group.
    Group,
    /// A transactional id.
    TransactionalId,
    /// The cluster itself (its one resource, `kafka-cluster`).
    Cluster,
}

impl ResourceType {
    /// Every type.
    pub const ALL: [Self; 4] = [
        Self::Topic,
        Self::Group,
        Self::TransactionalId,
        Self::Cluster,
    ];

    /// The name in rules files.
    pub fn label(self) -> &'static str {
        match self {
            Self::Topic => "topic",
            Self::Group => "group",
            Self::TransactionalId => "transactional_id",
            Self::Cluster => "cluster",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.label() == text)
    }

    /// Its place in [`Self::ALL`].
    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// What a request does to a resource (Kafka's ACL operations).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// Consume, read offsets, join a group.
    Read,
    /// Produce.
    Write,
    /// Create topics.
    Create,
    /// Delete topics, records, groups.
    Delete,
    /// Change partitions, ACLs.
    Alter,
    /// See that it exists (Metadata, ListGroups, ...).
    Describe,
    /// Read configs.
    DescribeConfigs,
    /// Change configs.
    AlterConfigs,
    /// Idempotent produce (cluster).
    IdempotentWrite,
    /// Inter-broker requests (cluster).
    ClusterAction,
    /// Every operation.
    All,
}

impl Operation {
    /// Every operation.
    pub const ALL: [Self; 11] = [
        Self::Read,
        Self::Write,
        Self::Create,
        Self::Delete,
        Self::Alter,
        Self::Describe,
        Self::DescribeConfigs,
        Self::AlterConfigs,
        Self::IdempotentWrite,
        Self::ClusterAction,
        Self::All,
    ];

    /// The name in rules files.
    pub fn label(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
            Self::Create => "create",
            Self::Delete => "delete",
            Self::Alter => "alter",
            Self::Describe => "describe",
            Self::DescribeConfigs => "describe_configs",
            Self::AlterConfigs => "alter_configs",
            Self::IdempotentWrite => "idempotent_write",
            Self::ClusterAction => "cluster_action",
            Self::All => "all",
        }
    }

    /// The operation named `text`.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|op| op.label() == text)
    }

    /// Whether an *allow* rule for `self` allows `requested`: the same operation, `all`, or
    /// one that implies it (Kafka: read, write, delete and alter imply describe; alter_configs
    /// implies describe_configs). Deny rules deny only what they name (and `all`).
    pub(crate) fn allows(self, requested: Self) -> bool {
        self == requested
            || self == Self::All
            || (requested == Self::Describe
                && matches!(self, Self::Read | Self::Write | Self::Delete | Self::Alter))
            || (requested == Self::DescribeConfigs && self == Self::AlterConfigs)
    }

    pub(crate) fn denies(self, requested: Self) -> bool {
        self == requested || self == Self::All
    }

    /// Its place in [`Self::ALL`].
    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// How a rule's name matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pattern {
    /// The name itself (`*`: every name).
    Literal,
    /// Every name that starts with it.
    Prefixed,
}

/// Whether a matching rule allows or denies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Allows (unless a deny rule matches too).
    Allow,
    /// Denies, whatever allows.
    Deny,
}

/// Who a rule is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrincipalMatch {
    /// Any authenticated principal (`*`).
    AnyAuthenticated,
    /// Sessions nobody authenticated (`ANONYMOUS`).
    Anonymous,
    /// This principal.
    Named(Box<str>),
}

/// One rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Who.
    pub principal: PrincipalMatch,
    /// What kind of resource.
    pub resource: ResourceType,
    /// Its name (`kafka-cluster` for the cluster).
    pub name: Box<str>,
    /// How the name matches.
    pub pattern: Pattern,
    /// What it allows or denies.
    pub operations: Vec<Operation>,
    /// Allow or deny.
    pub effect: Effect,
    /// From where, when set.
    pub source: Option<IpNet>,
    /// For which server name, when set.
    pub sni: Option<Box<str>>,
    /// On which listener, when set.
    pub listener: Option<Box<str>>,
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let principal = match &self.principal {
            PrincipalMatch::AnyAuthenticated => "*",
            PrincipalMatch::Anonymous => "ANONYMOUS",
            PrincipalMatch::Named(name) => name,
        };
        let effect = match self.effect {
            Effect::Allow => "allow",
            Effect::Deny => "deny",
        };
        let pattern = match self.pattern {
            Pattern::Literal => "literal",
            Pattern::Prefixed => "prefixed",
        };
        let operations: Vec<&str> = self.operations.iter().map(|op| op.label()).collect();
        write!(
            f,
            "{effect} {principal} {} {pattern} {:?} [{}]",
            self.resource.label(),
            &*self.name,
            operations.join(", ")
        )?;
        if let Some(source) = &self.source {
            write!(f, " from {source}")?;
        }
        if let Some(sni) = &self.sni {
            write!(f, " sni {sni}")?;
        }
        if let Some(listener) = &self.listener {
            write!(f, " on listener {listener}")?;
        }
        Ok(())
    }
}

/// Who is asking, and how they came in.
#[derive(Debug, Clone, Copy)]
pub struct Requester<'a> {
    /// The authenticated principal, if any.
    pub principal: Option<&'a str>,
    /// The client's address (the PROXY-header client when trusted); a rule with a `source`
    /// matches no requester without one.
    pub source: Option<IpAddr>,
    /// The server name it asked for.
    pub sni: Option<&'a str>,
    /// The listener it came in on.
    pub listener: &'a str,
}

impl Rule {
    /// Whether the rule applies to `requester` and the resource (any operation).
    pub(crate) fn covers(
        &self,
        requester: &Requester<'_>,
        resource: ResourceType,
        name: &str,
    ) -> bool {
        self.resource == resource && self.names(resource, name) && self.applies_to(requester)
    }

    /// Whether the rule's name pattern takes in `name`.
    fn names(&self, resource: ResourceType, name: &str) -> bool {
        resource == ResourceType::Cluster
            || match self.pattern {
                Pattern::Literal => &*self.name == "*" || &*self.name == name,
                Pattern::Prefixed => name.starts_with(&*self.name),
            }
    }

    /// Whether every name this deny rule's pattern takes in includes all of `allow`'s.
    pub(crate) fn names_all_of(&self, allow: &Rule) -> bool {
        match self.pattern {
            _ if self.resource == ResourceType::Cluster => true,
            Pattern::Literal if &*self.name == "*" => true,
            Pattern::Literal => allow.pattern == Pattern::Literal && allow.name == self.name,
            Pattern::Prefixed => {
                !(allow.pattern == Pattern::Literal && &*allow.name == "*")
                    && allow.name.starts_with(&*self.name)
            }
        }
    }

    /// Whether the rule is for `requester` (principal, source, SNI, listener), whatever the
    /// resource.
    pub(crate) fn applies_to(&self, requester: &Requester<'_>) -> bool {
        let principal = match (&self.principal, requester.principal) {
            (PrincipalMatch::AnyAuthenticated, Some(_)) => true,
            (PrincipalMatch::Anonymous, None) => true,
            (PrincipalMatch::Named(wanted), Some(principal)) => **wanted == *principal,
            _ => false,
        };
        principal
            && self.source.is_none_or(|net| {
                requester
                    .source
                    .is_some_and(|ip| net.contains(&ip.to_canonical()))
            })
            && self.sni.as_deref().is_none_or(|sni| {
                requester
                    .sni
                    .is_some_and(|asked| asked.eq_ignore_ascii_case(sni))
            })
            && self
                .listener
                .as_deref()
                .is_none_or(|listener| listener == requester.listener)
    }
}

/// A rules file that could not be used: every problem, each at its `rule[N].key`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .problems.join("; "))]
pub struct RulesError {
    /// `path: message` each.
    pub problems: Vec<String>,
}

/// Reads a rules file's text.
pub fn parse_rules(text: &str) -> Result<Vec<Rule>, RulesError> {
    let table: toml::Table = text.parse().map_err(|err: toml::de::Error| RulesError {
        problems: vec![format!("not TOML: {}", err.message())],
    })?;
    let mut problems = Vec::new();
    for key in table.keys().filter(|key| *key != "rule") {
        problems.push(format!(
            "{key}: unknown key (a rules file has [[rule]] tables)"
        ));
    }
    let rules = match table.get("rule") {
        None => Vec::new(),
        Some(toml::Value::Array(items)) => items
            .iter()
            .enumerate()
            .filter_map(|(index, item)| match item {
                toml::Value::Table(rule) => rule_of(index, rule, &mut problems),
                _ => {
                    problems.push(format!("rule[{index}]: expected a table"));
                    None
                }
            })
            .collect(),
        Some(_) => {
            problems.push("rule: expected [[rule]] tables".into());
            Vec::new()
        }
    };
    if problems.is_empty() {
        Ok(rules)
    } else {
        Err(RulesError { problems })
    }
}

const KEYS: [&str; 9] = [
    "principal",
    "resource",
    "name",
    "pattern",
    "operations",
    "effect",
    "source",
    "sni",
    "listener",
];

fn rule_of(index: usize, rule: &toml::Table, problems: &mut Vec<String>) -> Option<Rule> {
    let at = |key: &str| format!("rule[{index}].{key}");
    let before = problems.len();
    for key in rule.keys().filter(|key| !KEYS.contains(&key.as_str())) {
        problems.push(format!("{}: unknown key", at(key)));
    }
    let string = |key: &str, problems: &mut Vec<String>| -> Option<String> {
        match rule.get(key) {
            None => None,
            Some(toml::Value::String(text)) => Some(text.clone()),
            Some(other) => {
                problems.push(format!(
                    "{}: expected a string, found {}",
                    at(key),
                    other.type_str()
                ));
                None
            }
        }
    };
    let principal = match string("principal", problems) {
        None => {
            problems.push(format!("{}: required", at("principal")));
            None
        }
        Some(text) if text == "*" => Some(PrincipalMatch::AnyAuthenticated),
        Some(text) if text == "ANONYMOUS" => Some(PrincipalMatch::Anonymous),
        Some(text) if text.is_empty() => {
            problems.push(format!("{}: empty", at("principal")));
            None
        }
        Some(text) => Some(PrincipalMatch::Named(text.into_boxed_str())),
    };
    let resource = match string("resource", problems) {
        None => {
            problems.push(format!("{}: required", at("resource")));
            None
        }
        Some(text) => ResourceType::parse(&text).or_else(|| {
            problems.push(format!(
                "{}: unknown {text:?}: topic, group, transactional_id or cluster",
                at("resource")
            ));
            None
        }),
    };
    let name = match (string("name", problems), resource) {
        (_, Some(ResourceType::Cluster)) => Some("kafka-cluster".to_owned()),
        (Some(name), _) if !name.is_empty() => Some(name),
        (Some(_), _) => {
            problems.push(format!("{}: empty", at("name")));
            None
        }
        (None, _) => {
            problems.push(format!("{}: required (\"*\" for every name)", at("name")));
            None
        }
    };
    let pattern = match string("pattern", problems).as_deref() {
        None | Some("literal") => Some(Pattern::Literal),
        Some("prefixed") => Some(Pattern::Prefixed),
        Some(other) => {
            problems.push(format!(
                "{}: unknown {other:?}: literal or prefixed",
                at("pattern")
            ));
            None
        }
    };
    let operations = match rule.get("operations") {
        Some(toml::Value::Array(items)) if !items.is_empty() => {
            let mut operations = Vec::new();
            for item in items {
                match item.as_str().and_then(Operation::parse) {
                    Some(op) => operations.push(op),
                    None => problems.push(format!(
                        "{}: unknown operation {item}: one of {}",
                        at("operations"),
                        Operation::ALL.map(Operation::label).join(", ")
                    )),
                }
            }
            Some(operations)
        }
        Some(toml::Value::Array(_)) => {
            problems.push(format!("{}: names no operation", at("operations")));
            None
        }
        Some(other) => {
            problems.push(format!(
                "{}: expected a list, found {}",
                at("operations"),
                other.type_str()
            ));
            None
        }
        None => {
            problems.push(format!("{}: required", at("operations")));
            None
        }
    };
    let effect = match string("effect", problems).as_deref() {
        None | Some("allow") => Some(Effect::Allow),
        Some("deny") => Some(Effect::Deny),
        Some(other) => {
            problems.push(format!(
                "{}: unknown {other:?}: allow or deny",
                at("effect")
            ));
            None
        }
    };
    let source = match string("source", problems) {
        None => Some(None),
        Some(text) => text
            .parse::<IpNet>()
            .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
            .map(|net| Some(net.trunc()))
            .map_err(|_| {
                problems.push(format!(
                    "{}: {text:?} is not a network (10.0.0.0/8) or an address",
                    at("source")
                ));
            })
            .ok(),
    };
    let sni = string("sni", problems).map(String::into_boxed_str);
    let listener = string("listener", problems).map(String::into_boxed_str);
    if problems.len() > before {
        return None;
    }
    Some(Rule {
        principal: principal?,
        resource: resource?,
        name: name?.into_boxed_str(),
        pattern: pattern?,
        operations: operations?,
        effect: effect?,
        source: source?,
        sni,
        listener,
    })
}
