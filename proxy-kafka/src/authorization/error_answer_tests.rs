//! Every API key kafka-protocol knows, in every version it knows: the refusal of the API's
//! default request is that API's response, encodes in that version, decodes back, and carries
//! the code wherever the response has a top-level error code. The listing of named resources
//! is tested per family, beside this file (`error_answer/*_tests.rs`).

use std::ops::RangeInclusive;

use bytes::BytesMut;
use kafka_protocol::messages::{ApiKey, RequestKind, ResponseKind, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::error_answer;

/// TOPIC_AUTHORIZATION_FAILED; any code but 0 would do.
pub(super) const CODE: i16 = 29;

/// The refusal of `request` in `version`, after a trip through the wire format.
pub(super) fn refuse(api: ApiKey, version: i16, request: RequestKind) -> ResponseKind {
    let answer = error_answer(&request, version, CODE)
        .unwrap_or_else(|| panic!("{api:?} v{version}: no answer"));
    round_trip(api, version, &answer)
}

/// `response` encoded in `version` and decoded back as `api`'s response, all of it.
pub(super) fn round_trip(api: ApiKey, version: i16, response: &ResponseKind) -> ResponseKind {
    let mut buf = BytesMut::new();
    response
        .encode(&mut buf, version)
        .unwrap_or_else(|err| panic!("{api:?} v{version}: encode: {err:#}"));
    let mut bytes = buf.freeze();
    let decoded = ResponseKind::decode(api, &mut bytes, version)
        .unwrap_or_else(|err| panic!("{api:?} v{version}: decode: {err:#}"));
    assert!(
        bytes.is_empty(),
        "{api:?} v{version}: {} bytes left",
        bytes.len()
    );
    decoded
}

pub(super) fn text(name: &'static str) -> StrBytes {
    StrBytes::from_static_str(name)
}

pub(super) fn topic(name: &'static str) -> TopicName {
    TopicName(text(name))
}

/// Topic ids for the tests that name topics by id.
pub(super) const ID_A: &str = "0000000a-0000-0000-0000-00000000000a";
pub(super) const ID_B: &str = "0000000b-0000-0000-0000-00000000000b";

/// The topics and partitions the listing tests name: `a` (0 and 1) and `b` (0).
pub(super) const A01_B0: [(&str, &[i32]); 2] = [("a", &[0, 1]), ("b", &[0])];
/// The same topics, by id.
pub(super) const IDS_A01_B0: [(&str, &[i32]); 2] = [(ID_A, &[0, 1]), (ID_B, &[0])];

/// Each topic (by name or id) with each partition's index and error code.
pub(super) type Listing = Vec<(String, Vec<(i32, i16)>)>;

/// What the listing tests expect: every partition of `named` refused with [`CODE`].
pub(super) fn refused(named: [(&str, &[i32]); 2]) -> Listing {
    let refused = |partitions: &[i32]| partitions.iter().map(|&index| (index, CODE)).collect();
    named
        .iter()
        .map(|(name, partitions)| (name.to_string(), refused(partitions)))
        .collect()
}

/// An answer's topics as a [`Listing`]: `name` and `partitions` pick a topic's name (or id)
/// and partitions, `partition` a partition's index and error code.
pub(super) fn listing<T, P>(
    topics: &[T],
    name: impl Fn(&T) -> String,
    partitions: impl Fn(&T) -> &[P],
    partition: impl Fn(&P) -> (i32, i16),
) -> Listing {
    let topic = |t: &T| (name(t), partitions(t).iter().map(&partition).collect());
    topics.iter().map(topic).collect()
}

/// A `match` on `ApiKey`, which (unlike `RequestKind` and `ResponseKind`) is exhaustive: a key
/// added to kafka-protocol fails to compile here, and then fails the tests until
/// `error_answer` answers it.
macro_rules! defaults_by_api_key {
    ($api:expr; $($name:ident)+) => {
        match $api {
            $(ApiKey::$name => (
                RequestKind::$name(Default::default()),
                ResponseKind::$name(Default::default()),
            ),)+
        }
    };
}

/// `api`'s default request, and a default response of the same API to compare kinds with.
pub(crate) fn defaults(api: ApiKey) -> (RequestKind, ResponseKind) {
    defaults_by_api_key!(api;
        Produce Fetch ListOffsets Metadata OffsetCommit OffsetFetch FindCoordinator JoinGroup
        Heartbeat LeaveGroup SyncGroup DescribeGroups ListGroups SaslHandshake ApiVersions
        CreateTopics DeleteTopics DeleteRecords InitProducerId OffsetForLeaderEpoch
        AddPartitionsToTxn AddOffsetsToTxn EndTxn WriteTxnMarkers TxnOffsetCommit DescribeAcls
        CreateAcls DeleteAcls DescribeConfigs AlterConfigs AlterReplicaLogDirs DescribeLogDirs
        SaslAuthenticate CreatePartitions CreateDelegationToken RenewDelegationToken
        ExpireDelegationToken DescribeDelegationToken DeleteGroups ElectLeaders
        IncrementalAlterConfigs AlterPartitionReassignments ListPartitionReassignments
        OffsetDelete DescribeClientQuotas AlterClientQuotas DescribeUserScramCredentials
        AlterUserScramCredentials Vote BeginQuorumEpoch EndQuorumEpoch DescribeQuorum
        AlterPartition UpdateFeatures Envelope FetchSnapshot DescribeCluster DescribeProducers
        BrokerRegistration BrokerHeartbeat UnregisterBroker DescribeTransactions ListTransactions
        AllocateProducerIds ConsumerGroupHeartbeat ConsumerGroupDescribe ControllerRegistration
        GetTelemetrySubscriptions PushTelemetry AssignReplicasToDirs ListConfigResources
        DescribeTopicPartitions ShareGroupHeartbeat ShareGroupDescribe ShareFetch
        ShareAcknowledge AddRaftVoter RemoveRaftVoter UpdateRaftVoter InitializeShareGroupState
        ReadShareGroupState WriteShareGroupState DeleteShareGroupState ReadShareGroupStateSummary
        DescribeShareGroupOffsets AlterShareGroupOffsets DeleteShareGroupOffsets
    )
}

/// The APIs whose responses have no top-level error code in any version: each resource
/// carries its own. Every other API must show up in [`top_level_error`].
const PER_RESOURCE_ONLY: &[ApiKey] = &[
    ApiKey::Produce,
    ApiKey::ListOffsets,
    ApiKey::OffsetCommit,
    ApiKey::DescribeGroups,
    ApiKey::CreateTopics,
    ApiKey::DeleteTopics,
    ApiKey::DeleteRecords,
    ApiKey::OffsetForLeaderEpoch,
    ApiKey::WriteTxnMarkers,
    ApiKey::TxnOffsetCommit,
    ApiKey::CreateAcls,
    ApiKey::DeleteAcls,
    ApiKey::DescribeConfigs,
    ApiKey::AlterConfigs,
    ApiKey::AlterReplicaLogDirs,
    ApiKey::CreatePartitions,
    ApiKey::DeleteGroups,
    ApiKey::IncrementalAlterConfigs,
    ApiKey::AlterClientQuotas,
    ApiKey::AlterUserScramCredentials,
    ApiKey::DescribeProducers,
    ApiKey::DescribeTransactions,
    ApiKey::ConsumerGroupDescribe,
    ApiKey::DescribeTopicPartitions,
    ApiKey::ShareGroupDescribe,
    ApiKey::InitializeShareGroupState,
    ApiKey::ReadShareGroupState,
    ApiKey::WriteShareGroupState,
    ApiKey::DeleteShareGroupState,
    ApiKey::ReadShareGroupStateSummary,
    ApiKey::DescribeShareGroupOffsets,
];

/// The response's top-level error code and the versions that have it (from the schemas'
/// "Supported API versions"; `i16::MAX` for "and on").
fn top_level_error(response: &ResponseKind) -> Option<(i16, RangeInclusive<i16>)> {
    use ResponseKind as A;
    const ALL: RangeInclusive<i16> = 0..=i16::MAX;
    let found = match response {
        A::Fetch(r) => (r.error_code, 7..=i16::MAX),
        A::Metadata(r) => (r.error_code, 13..=i16::MAX),
        A::OffsetFetch(r) => (r.error_code, 2..=7),
        A::FindCoordinator(r) => (r.error_code, 0..=3),
        A::AddPartitionsToTxn(r) => (r.error_code, 4..=i16::MAX),
        A::DescribeLogDirs(r) => (r.error_code, 3..=i16::MAX),
        A::ElectLeaders(r) => (r.error_code, 1..=i16::MAX),
        A::JoinGroup(r) => (r.error_code, ALL),
        A::Heartbeat(r) => (r.error_code, ALL),
        A::LeaveGroup(r) => (r.error_code, ALL),
        A::SyncGroup(r) => (r.error_code, ALL),
        A::ListGroups(r) => (r.error_code, ALL),
        A::OffsetDelete(r) => (r.error_code, ALL),
        A::ConsumerGroupHeartbeat(r) => (r.error_code, ALL),
        A::ShareGroupHeartbeat(r) => (r.error_code, ALL),
        A::AlterShareGroupOffsets(r) => (r.error_code, ALL),
        A::DeleteShareGroupOffsets(r) => (r.error_code, ALL),
        A::ShareFetch(r) => (r.error_code, ALL),
        A::ShareAcknowledge(r) => (r.error_code, ALL),
        A::InitProducerId(r) => (r.error_code, ALL),
        A::AddOffsetsToTxn(r) => (r.error_code, ALL),
        A::EndTxn(r) => (r.error_code, ALL),
        A::ListTransactions(r) => (r.error_code, ALL),
        A::AlterPartitionReassignments(r) => (r.error_code, ALL),
        A::ListPartitionReassignments(r) => (r.error_code, ALL),
        A::DescribeCluster(r) => (r.error_code, ALL),
        A::UpdateFeatures(r) => (r.error_code, ALL),
        A::ListConfigResources(r) => (r.error_code, ALL),
        A::DescribeAcls(r) => (r.error_code, ALL),
        A::CreateDelegationToken(r) => (r.error_code, ALL),
        A::RenewDelegationToken(r) => (r.error_code, ALL),
        A::ExpireDelegationToken(r) => (r.error_code, ALL),
        A::DescribeDelegationToken(r) => (r.error_code, ALL),
        A::DescribeClientQuotas(r) => (r.error_code, ALL),
        A::DescribeUserScramCredentials(r) => (r.error_code, ALL),
        A::ApiVersions(r) => (r.error_code, ALL),
        A::SaslHandshake(r) => (r.error_code, ALL),
        A::SaslAuthenticate(r) => (r.error_code, ALL),
        A::GetTelemetrySubscriptions(r) => (r.error_code, ALL),
        A::PushTelemetry(r) => (r.error_code, ALL),
        A::Vote(r) => (r.error_code, ALL),
        A::BeginQuorumEpoch(r) => (r.error_code, ALL),
        A::EndQuorumEpoch(r) => (r.error_code, ALL),
        A::DescribeQuorum(r) => (r.error_code, ALL),
        A::FetchSnapshot(r) => (r.error_code, ALL),
        A::AddRaftVoter(r) => (r.error_code, ALL),
        A::RemoveRaftVoter(r) => (r.error_code, ALL),
        A::UpdateRaftVoter(r) => (r.error_code, ALL),
        A::AlterPartition(r) => (r.error_code, ALL),
        A::AssignReplicasToDirs(r) => (r.error_code, ALL),
        A::Envelope(r) => (r.error_code, ALL),
        A::BrokerRegistration(r) => (r.error_code, ALL),
        A::BrokerHeartbeat(r) => (r.error_code, ALL),
        A::UnregisterBroker(r) => (r.error_code, ALL),
        A::ControllerRegistration(r) => (r.error_code, ALL),
        A::AllocateProducerIds(r) => (r.error_code, ALL),
        // `ResponseKind` is `#[non_exhaustive]`; `PER_RESOURCE_ONLY` names the rest, and
        // `every_api_is_classified` checks that nothing falls through unnamed.
        _ => return None,
    };
    Some(found)
}

fn versions(api: ApiKey) -> RangeInclusive<i16> {
    let range = api.valid_versions();
    range.min..=range.max
}

#[test]
fn every_api_answers_with_its_own_response_kind() {
    for api in ApiKey::iter() {
        let (request, response) = defaults(api);
        for version in versions(api) {
            let answer = error_answer(&request, version, CODE)
                .unwrap_or_else(|| panic!("{api:?} v{version}: no answer"));
            assert_eq!(
                std::mem::discriminant(&answer),
                std::mem::discriminant(&response),
                "{api:?} v{version}: answered with {answer:?}"
            );
        }
    }
}

#[test]
fn every_answer_encodes_in_every_version_and_carries_the_top_level_code() {
    let mut checked = 0;
    for api in ApiKey::iter() {
        let (request, _) = defaults(api);
        for version in versions(api) {
            let decoded = refuse(api, version, request.clone());
            if let Some((code, has_it)) = top_level_error(&decoded) {
                let expected = if has_it.contains(&version) { CODE } else { 0 };
                assert_eq!(code, expected, "{api:?} v{version}: top-level error code");
                checked += usize::from(has_it.contains(&version));
            }
        }
    }
    // Catches a table that stopped matching anything (e.g. renamed variants).
    assert!(checked > 150, "only {checked} top-level codes checked");
}

#[test]
fn every_api_is_classified_by_whether_it_has_a_top_level_code() {
    for api in ApiKey::iter() {
        let (_, response) = defaults(api);
        let in_table = top_level_error(&response).is_some();
        let per_resource = PER_RESOURCE_ONLY.contains(&api);
        assert!(
            in_table != per_resource,
            "{api:?}: in the top-level table {in_table}, per-resource only {per_resource}"
        );
    }
    assert_eq!(
        ApiKey::iter().count(),
        87,
        "kafka-protocol 0.18 knows 87 API keys"
    );
}
