//! APIs about configs and the cluster itself. DescribeConfigs, AlterConfigs and
//! IncrementalAlterConfigs are decided per resource: a topic's configs on the topic, a group's
//! on the group, a broker's (and its loggers') on the cluster. The rest name only the cluster.

use kafka_protocol::messages::{
    AlterConfigsRequest, ApiKey, DescribeConfigsRequest, IncrementalAlterConfigsRequest,
    RequestKind,
};
use kafka_protocol::protocol::StrBytes;

use super::listed::{Key, split};
use super::{CLUSTER_DENIED, Decide, GROUP_DENIED, Operation, ResourceType, TOPIC_DENIED, Verdict};

/// Kafka's config resource types.
const CONFIG_TOPIC: i8 = 2;
const CONFIG_GROUP: i8 = 32;

/// The operation on the cluster an API asks for, for the APIs that name nothing else.
pub(crate) fn cluster_operation(api: ApiKey) -> Option<Operation> {
    Some(match api {
        ApiKey::DescribeAcls
        | ApiKey::DescribeLogDirs
        | ApiKey::ListPartitionReassignments
        | ApiKey::DescribeUserScramCredentials
        | ApiKey::DescribeQuorum => Operation::Describe,
        ApiKey::CreateAcls
        | ApiKey::DeleteAcls
        | ApiKey::AlterReplicaLogDirs
        | ApiKey::ElectLeaders
        | ApiKey::AlterPartitionReassignments
        | ApiKey::AlterUserScramCredentials
        | ApiKey::UpdateFeatures => Operation::Alter,
        ApiKey::DescribeClientQuotas => Operation::DescribeConfigs,
        ApiKey::AlterClientQuotas => Operation::AlterConfigs,
        _ => return None,
    })
}

/// `None` when the session may do `operation` to the configs of the resource, else the error.
fn config_code(kind: i8, name: &StrBytes, operation: Operation, d: &mut Decide<'_>) -> Option<i16> {
    match kind {
        CONFIG_TOPIC => (!d.allows(ResourceType::Topic, name, operation)).then_some(TOPIC_DENIED),
        CONFIG_GROUP => (!d.allows(ResourceType::Group, name, operation)).then_some(GROUP_DENIED),
        _ => (!d.allows_cluster(operation)).then_some(CLUSTER_DENIED),
    }
}

/// The codes of config resources given as (type, name).
fn config_codes<'a>(
    resources: impl Iterator<Item = (i8, &'a StrBytes)>,
    operation: Operation,
    d: &mut Decide<'_>,
) -> Vec<Option<i16>> {
    resources
        .map(|(kind, name)| config_code(kind, name, operation, d))
        .collect()
}

listed! {
    /// DescribeConfigs, by resource.
    DescribeConfigsResources:
    DescribeConfigs.resources:
        kafka_protocol::messages::describe_configs_request::DescribeConfigsResource
        => |e| Key::Typed(e.resource_type, e.resource_name.clone()),
    DescribeConfigs.results: kafka_protocol::messages::describe_configs_response::DescribeConfigsResult
        => |a| Key::Typed(a.resource_type, a.resource_name.clone()),
}

pub(crate) fn describe_configs(
    body: &DescribeConfigsRequest,
    version: i16,
    d: &mut Decide<'_>,
) -> Verdict {
    let resources = body
        .resources
        .iter()
        .map(|resource| (resource.resource_type, &resource.resource_name));
    let codes = config_codes(resources, Operation::DescribeConfigs, d);
    split::<DescribeConfigsResources>(
        || RequestKind::DescribeConfigs(body.clone()),
        version,
        codes,
    )
}

listed! {
    /// AlterConfigs, by resource.
    AlterConfigsResources:
    AlterConfigs.resources: kafka_protocol::messages::alter_configs_request::AlterConfigsResource
        => |e| Key::Typed(e.resource_type, e.resource_name.clone()),
    AlterConfigs.responses: kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse
        => |a| Key::Typed(a.resource_type, a.resource_name.clone()),
}

pub(crate) fn alter_configs(
    body: &AlterConfigsRequest,
    version: i16,
    d: &mut Decide<'_>,
) -> Verdict {
    let resources = body
        .resources
        .iter()
        .map(|resource| (resource.resource_type, &resource.resource_name));
    let codes = config_codes(resources, Operation::AlterConfigs, d);
    split::<AlterConfigsResources>(|| RequestKind::AlterConfigs(body.clone()), version, codes)
}

listed! {
    /// IncrementalAlterConfigs, by resource.
    IncrementalAlterConfigsResources:
    IncrementalAlterConfigs.resources:
        kafka_protocol::messages::incremental_alter_configs_request::AlterConfigsResource
        => |e| Key::Typed(e.resource_type, e.resource_name.clone()),
    IncrementalAlterConfigs.responses:
        kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse
        => |a| Key::Typed(a.resource_type, a.resource_name.clone()),
}

pub(crate) fn incremental_alter_configs(
    body: &IncrementalAlterConfigsRequest,
    version: i16,
    d: &mut Decide<'_>,
) -> Verdict {
    let resources = body
        .resources
        .iter()
        .map(|resource| (resource.resource_type, &resource.resource_name));
    let codes = config_codes(resources, Operation::AlterConfigs, d);
    split::<IncrementalAlterConfigsResources>(
        || RequestKind::IncrementalAlterConfigs(body.clone()),
        version,
        codes,
    )
}
