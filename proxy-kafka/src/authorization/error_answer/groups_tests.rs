//! The group APIs' refusals list every group, coordinator key, member, topic and partition the
//! request names, in request order, after a trip through the wire format.

use kafka_protocol::messages::{
    ApiKey, ConsumerGroupDescribeRequest, DeleteGroupsRequest, DeleteShareGroupOffsetsRequest,
    DescribeGroupsRequest, DescribeShareGroupOffsetsRequest, FindCoordinatorRequest, GroupId,
    LeaveGroupRequest, OffsetCommitRequest, OffsetDeleteRequest, OffsetFetchRequest, ResponseKind,
    ShareGroupDescribeRequest, delete_share_group_offsets_request as delete_share_offsets,
    describe_share_group_offsets_request as describe_share_offsets,
    leave_group_request as leave_group, offset_commit_request as offset_commit,
    offset_delete_request as offset_delete, offset_fetch_request as offset_fetch,
};

use super::error_answer_tests::{
    A01_B0, CODE, IDS_A01_B0, Listing, listing, refuse, refused, text, topic,
};

fn group(name: &'static str) -> GroupId {
    GroupId(text(name))
}

#[test]
fn offset_commit_lists_every_partition_by_name_then_by_topic_id() {
    for version in [2, 8, 9, 10] {
        let by_id = version >= 10;
        let named = if by_id { IDS_A01_B0 } else { A01_B0 };
        let topics = named.map(|(name, partitions)| {
            let partitions = partitions.iter().map(|&i| {
                offset_commit::OffsetCommitRequestPartition::default().with_partition_index(i)
            });
            let data = offset_commit::OffsetCommitRequestTopic::default()
                .with_partitions(partitions.collect());
            if by_id {
                data.with_topic_id(name.parse().unwrap())
            } else {
                data.with_name(topic(name))
            }
        });
        let request = OffsetCommitRequest::default()
            .with_group_id(group("g"))
            .with_topics(topics.to_vec());
        let ResponseKind::OffsetCommit(answer) =
            refuse(ApiKey::OffsetCommit, version, request.into())
        else {
            panic!("not an offset-commit response");
        };
        let name =
            |t: &kafka_protocol::messages::offset_commit_response::OffsetCommitResponseTopic| {
                if by_id {
                    t.topic_id.to_string()
                } else {
                    t.name.0.to_string()
                }
            };
        let listed = listing(
            &answer.topics,
            name,
            |t| &t.partitions,
            |p| (p.partition_index, p.error_code),
        );
        assert_eq!(listed, refused(named), "v{version}");
    }
}

#[test]
fn offset_fetch_before_v8_lists_the_partitions_and_from_v2_the_top_level_code() {
    let topics = A01_B0.map(|(name, partitions)| {
        offset_fetch::OffsetFetchRequestTopic::default()
            .with_name(topic(name))
            .with_partition_indexes(partitions.to_vec())
    });
    for version in [1, 2, 7] {
        let request = OffsetFetchRequest::default()
            .with_group_id(group("g"))
            .with_topics(Some(topics.to_vec()));
        let ResponseKind::OffsetFetch(answer) =
            refuse(ApiKey::OffsetFetch, version, request.into())
        else {
            panic!("not an offset-fetch response");
        };
        let listed = listing(
            &answer.topics,
            |t| t.name.0.to_string(),
            |t| &t.partitions,
            |p| (p.partition_index, p.error_code),
        );
        assert_eq!(listed, refused(A01_B0), "v{version}");
        assert!(
            answer
                .topics
                .iter()
                .flat_map(|t| &t.partitions)
                .all(|p| p.committed_offset == -1)
        );
        assert_eq!(
            answer.error_code,
            if version >= 2 { CODE } else { 0 },
            "v{version}"
        );
    }
}

#[test]
fn offset_fetch_from_v8_answers_every_group_with_its_partitions() {
    let topics = A01_B0.map(|(name, partitions)| {
        offset_fetch::OffsetFetchRequestTopics::default()
            .with_name(topic(name))
            .with_partition_indexes(partitions.to_vec())
    });
    let groups = vec![
        offset_fetch::OffsetFetchRequestGroup::default()
            .with_group_id(group("g1"))
            .with_topics(Some(topics.to_vec())),
        // All of the group's topics: none to list.
        offset_fetch::OffsetFetchRequestGroup::default()
            .with_group_id(group("g2"))
            .with_topics(None),
    ];
    for version in [8, 9] {
        let request = OffsetFetchRequest::default().with_groups(groups.clone());
        let ResponseKind::OffsetFetch(answer) =
            refuse(ApiKey::OffsetFetch, version, request.into())
        else {
            panic!("not an offset-fetch response");
        };
        let listed: Vec<(String, i16, Listing)> = answer
            .groups
            .iter()
            .map(|g| {
                let topics = listing(
                    &g.topics,
                    |t| t.name.0.to_string(),
                    |t| &t.partitions,
                    |p| (p.partition_index, p.error_code),
                );
                (g.group_id.0.to_string(), g.error_code, topics)
            })
            .collect();
        let expected = vec![
            ("g1".to_string(), CODE, refused(A01_B0)),
            ("g2".to_string(), CODE, Vec::new()),
        ];
        assert_eq!(listed, expected, "v{version}");
    }
}

#[test]
fn find_coordinator_names_no_coordinator_for_the_key_or_for_every_key() {
    let request = FindCoordinatorRequest::default().with_key(text("g"));
    let ResponseKind::FindCoordinator(answer) = refuse(ApiKey::FindCoordinator, 3, request.into())
    else {
        panic!("not a find-coordinator response");
    };
    assert_eq!(
        (answer.error_code, answer.node_id.0, answer.port),
        (CODE, -1, -1)
    );
    assert_eq!(answer.host.as_str(), "");
    assert!(answer.coordinators.is_empty());

    for version in [4, 6] {
        let request =
            FindCoordinatorRequest::default().with_coordinator_keys(vec![text("g1"), text("g2")]);
        let ResponseKind::FindCoordinator(answer) =
            refuse(ApiKey::FindCoordinator, version, request.into())
        else {
            panic!("not a find-coordinator response");
        };
        let listed: Vec<_> = answer
            .coordinators
            .iter()
            .map(|c| {
                (
                    c.key.to_string(),
                    c.error_code,
                    c.node_id.0,
                    c.host.to_string(),
                    c.port,
                )
            })
            .collect();
        let expected = ["g1", "g2"].map(|key| (key.to_string(), CODE, -1, String::new(), -1));
        assert_eq!(listed, expected, "v{version}");
    }
}

#[test]
fn leave_group_from_v3_answers_every_member() {
    let members = vec![
        leave_group::MemberIdentity::default().with_member_id(text("m1")),
        leave_group::MemberIdentity::default()
            .with_member_id(text("m2"))
            .with_group_instance_id(Some(text("i2"))),
    ];
    for version in [3, 5] {
        let request = LeaveGroupRequest::default()
            .with_group_id(group("g"))
            .with_members(members.clone());
        let ResponseKind::LeaveGroup(answer) = refuse(ApiKey::LeaveGroup, version, request.into())
        else {
            panic!("not a leave-group response");
        };
        let listed: Vec<_> = answer
            .members
            .iter()
            .map(|m| {
                (
                    m.member_id.to_string(),
                    m.group_instance_id.as_ref().map(|i| i.to_string()),
                    m.error_code,
                )
            })
            .collect();
        let expected = vec![
            ("m1".to_string(), None, CODE),
            ("m2".to_string(), Some("i2".to_string()), CODE),
        ];
        assert_eq!(listed, expected, "v{version}");
        assert_eq!(answer.error_code, CODE);
    }
}

#[test]
fn group_describers_and_deleters_answer_every_group() {
    let expected = ["g1", "g2"].map(|g| (g.to_string(), CODE));
    let names = vec![group("g1"), group("g2")];

    for version in [0, 5, 6] {
        let request = DescribeGroupsRequest::default().with_groups(names.clone());
        let ResponseKind::DescribeGroups(answer) =
            refuse(ApiKey::DescribeGroups, version, request.into())
        else {
            panic!("not a describe-groups response");
        };
        let listed: Vec<_> = answer
            .groups
            .iter()
            .map(|g| (g.group_id.0.to_string(), g.error_code))
            .collect();
        assert_eq!(listed, expected, "DescribeGroups v{version}");
        assert!(
            answer
                .groups
                .iter()
                .all(|g| g.members.is_empty() && g.group_state.is_empty())
        );
    }

    let request = DeleteGroupsRequest::default().with_groups_names(names.clone());
    let ResponseKind::DeleteGroups(answer) = refuse(ApiKey::DeleteGroups, 2, request.into()) else {
        panic!("not a delete-groups response");
    };
    let listed: Vec<_> = answer
        .results
        .iter()
        .map(|g| (g.group_id.0.to_string(), g.error_code))
        .collect();
    assert_eq!(listed, expected, "DeleteGroups");

    let request = ConsumerGroupDescribeRequest::default().with_group_ids(names.clone());
    let ResponseKind::ConsumerGroupDescribe(answer) =
        refuse(ApiKey::ConsumerGroupDescribe, 1, request.into())
    else {
        panic!("not a consumer-group-describe response");
    };
    let listed: Vec<_> = answer
        .groups
        .iter()
        .map(|g| (g.group_id.0.to_string(), g.error_code))
        .collect();
    assert_eq!(listed, expected, "ConsumerGroupDescribe");

    let request = ShareGroupDescribeRequest::default().with_group_ids(names);
    let ResponseKind::ShareGroupDescribe(answer) =
        refuse(ApiKey::ShareGroupDescribe, 1, request.into())
    else {
        panic!("not a share-group-describe response");
    };
    let listed: Vec<_> = answer
        .groups
        .iter()
        .map(|g| (g.group_id.0.to_string(), g.error_code))
        .collect();
    assert_eq!(listed, expected, "ShareGroupDescribe");
}

#[test]
fn offset_delete_lists_every_partition_and_the_top_level_code() {
    let topics = A01_B0.map(|(name, partitions)| {
        let partitions = partitions.iter().map(|&i| {
            offset_delete::OffsetDeleteRequestPartition::default().with_partition_index(i)
        });
        offset_delete::OffsetDeleteRequestTopic::default()
            .with_name(topic(name))
            .with_partitions(partitions.collect())
    });
    let request = OffsetDeleteRequest::default()
        .with_group_id(group("g"))
        .with_topics(topics.to_vec());
    let ResponseKind::OffsetDelete(answer) = refuse(ApiKey::OffsetDelete, 0, request.into()) else {
        panic!("not an offset-delete response");
    };
    let listed = listing(
        &answer.topics,
        |t| t.name.0.to_string(),
        |t| &t.partitions,
        |p| (p.partition_index, p.error_code),
    );
    assert_eq!(listed, refused(A01_B0));
    assert_eq!(answer.error_code, CODE);
}

#[test]
fn share_group_offsets_list_every_group_topic_and_partition() {
    let topics = A01_B0.map(|(name, partitions)| {
        describe_share_offsets::DescribeShareGroupOffsetsRequestTopic::default()
            .with_topic_name(topic(name))
            .with_partitions(partitions.to_vec())
    });
    let group_asking = |id, topics| {
        describe_share_offsets::DescribeShareGroupOffsetsRequestGroup::default()
            .with_group_id(group(id))
            .with_topics(topics)
    };
    let groups = vec![
        group_asking("g1", Some(topics.to_vec())),
        group_asking("g2", None),
    ];
    let request = DescribeShareGroupOffsetsRequest::default().with_groups(groups);
    let ResponseKind::DescribeShareGroupOffsets(answer) =
        refuse(ApiKey::DescribeShareGroupOffsets, 0, request.into())
    else {
        panic!("not a describe-share-group-offsets response");
    };
    let listed: Vec<(String, i16, Listing)> = answer
        .groups
        .iter()
        .map(|g| {
            let topics = listing(
                &g.topics,
                |t| t.topic_name.0.to_string(),
                |t| &t.partitions,
                |p| (p.partition_index, p.error_code),
            );
            (g.group_id.0.to_string(), g.error_code, topics)
        })
        .collect();
    assert_eq!(
        listed,
        vec![
            ("g1".to_string(), CODE, refused(A01_B0)),
            ("g2".to_string(), CODE, Vec::new())
        ]
    );

    let topics = ["a", "b"].map(|name| {
        delete_share_offsets::DeleteShareGroupOffsetsRequestTopic::default()
            .with_topic_name(topic(name))
    });
    let request = DeleteShareGroupOffsetsRequest::default()
        .with_group_id(group("g"))
        .with_topics(topics.to_vec());
    let ResponseKind::DeleteShareGroupOffsets(answer) =
        refuse(ApiKey::DeleteShareGroupOffsets, 0, request.into())
    else {
        panic!("not a delete-share-group-offsets response");
    };
    let listed: Vec<_> = answer
        .responses
        .iter()
        .map(|t| (t.topic_name.0.to_string(), t.error_code))
        .collect();
    assert_eq!(listed, ["a", "b"].map(|t| (t.to_string(), CODE)));
    assert_eq!(answer.error_code, CODE);
}
