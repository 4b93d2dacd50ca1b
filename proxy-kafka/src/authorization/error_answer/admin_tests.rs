//! The administration APIs' refusals list every topic, partition, config resource and log dir
//! the request names, in request order, after a trip through the wire format.

use kafka_protocol::messages::{
    AlterConfigsRequest, AlterPartitionReassignmentsRequest, AlterReplicaLogDirsRequest, ApiKey,
    CreatePartitionsRequest, CreateTopicsRequest, DeleteTopicsRequest, DescribeConfigsRequest,
    ElectLeadersRequest, IncrementalAlterConfigsRequest, ResponseKind,
    alter_configs_request as alter_configs, alter_partition_reassignments_request as reassignments,
    alter_replica_log_dirs_request as log_dirs, create_partitions_request as create_partitions,
    create_topics_request as create_topics, delete_topics_request as delete_topics,
    describe_configs_request as describe_configs, elect_leaders_request as elect_leaders,
    incremental_alter_configs_request as incremental,
};

use super::error_answer_tests::{A01_B0, CODE, ID_B, listing, refuse, refused, text, topic};

/// Kafka's config resource types: 2 a topic, 4 a broker.
const TOPIC: i8 = 2;
const BROKER: i8 = 4;

#[test]
fn create_topics_and_partitions_answer_every_topic() {
    let expected = ["a", "b"].map(|t| (t.to_string(), CODE));
    for version in [2, 5, 7] {
        let topics =
            ["a", "b"].map(|name| create_topics::CreatableTopic::default().with_name(topic(name)));
        let request = CreateTopicsRequest::default().with_topics(topics.to_vec());
        let ResponseKind::CreateTopics(answer) =
            refuse(ApiKey::CreateTopics, version, request.into())
        else {
            panic!("not a create-topics response");
        };
        let listed: Vec<_> = answer
            .topics
            .iter()
            .map(|t| (t.name.0.to_string(), t.error_code))
            .collect();
        assert_eq!(listed, expected, "CreateTopics v{version}");
        assert!(answer.topics.iter().all(|t| t.error_message.is_none()));
    }

    let topics = ["a", "b"]
        .map(|name| create_partitions::CreatePartitionsTopic::default().with_name(topic(name)));
    let request = CreatePartitionsRequest::default().with_topics(topics.to_vec());
    let ResponseKind::CreatePartitions(answer) =
        refuse(ApiKey::CreatePartitions, 3, request.into())
    else {
        panic!("not a create-partitions response");
    };
    let listed: Vec<_> = answer
        .results
        .iter()
        .map(|t| (t.name.0.to_string(), t.error_code))
        .collect();
    assert_eq!(listed, expected, "CreatePartitions");
}

#[test]
fn delete_topics_answers_every_topic_by_name_then_by_name_or_id() {
    for version in [1, 5] {
        let request = DeleteTopicsRequest::default().with_topic_names(vec![topic("a"), topic("b")]);
        let ResponseKind::DeleteTopics(answer) =
            refuse(ApiKey::DeleteTopics, version, request.into())
        else {
            panic!("not a delete-topics response");
        };
        let listed: Vec<_> = answer
            .responses
            .iter()
            .map(|t| (t.name.as_ref().map(|n| n.0.to_string()), t.error_code))
            .collect();
        assert_eq!(
            listed,
            ["a", "b"].map(|t| (Some(t.to_string()), CODE)),
            "v{version}"
        );
    }

    let states = vec![
        delete_topics::DeleteTopicState::default().with_name(Some(topic("a"))),
        delete_topics::DeleteTopicState::default()
            .with_name(None)
            .with_topic_id(ID_B.parse().unwrap()),
    ];
    let request = DeleteTopicsRequest::default().with_topics(states);
    let ResponseKind::DeleteTopics(answer) = refuse(ApiKey::DeleteTopics, 6, request.into()) else {
        panic!("not a delete-topics response");
    };
    let listed: Vec<_> = answer
        .responses
        .iter()
        .map(|t| {
            (
                t.name.as_ref().map(|n| n.0.to_string()),
                t.topic_id.to_string(),
                t.error_code,
            )
        })
        .collect();
    let nil = "00000000-0000-0000-0000-000000000000".to_string();
    assert_eq!(
        listed,
        vec![
            (Some("a".to_string()), nil, CODE),
            (None, ID_B.to_string(), CODE)
        ]
    );
}

#[test]
fn config_apis_answer_every_resource_with_its_type_and_name() {
    let expected = vec![
        (TOPIC, "a".to_string(), CODE),
        (BROKER, "1".to_string(), CODE),
    ];
    let resources = [(TOPIC, "a"), (BROKER, "1")];

    for version in [1, 4] {
        let asked = resources.map(|(kind, name)| {
            describe_configs::DescribeConfigsResource::default()
                .with_resource_type(kind)
                .with_resource_name(text(name))
        });
        let request = DescribeConfigsRequest::default().with_resources(asked.to_vec());
        let ResponseKind::DescribeConfigs(answer) =
            refuse(ApiKey::DescribeConfigs, version, request.into())
        else {
            panic!("not a describe-configs response");
        };
        let listed: Vec<_> = answer
            .results
            .iter()
            .map(|r| (r.resource_type, r.resource_name.to_string(), r.error_code))
            .collect();
        assert_eq!(listed, expected, "DescribeConfigs v{version}");
        assert!(answer.results.iter().all(|r| r.configs.is_empty()));
    }

    let altered = resources.map(|(kind, name)| {
        alter_configs::AlterConfigsResource::default()
            .with_resource_type(kind)
            .with_resource_name(text(name))
    });
    let request = AlterConfigsRequest::default().with_resources(altered.to_vec());
    let ResponseKind::AlterConfigs(answer) = refuse(ApiKey::AlterConfigs, 2, request.into()) else {
        panic!("not an alter-configs response");
    };
    let listed: Vec<_> = answer
        .responses
        .iter()
        .map(|r| (r.resource_type, r.resource_name.to_string(), r.error_code))
        .collect();
    assert_eq!(listed, expected, "AlterConfigs");

    let altered = resources.map(|(kind, name)| {
        incremental::AlterConfigsResource::default()
            .with_resource_type(kind)
            .with_resource_name(text(name))
    });
    let request = IncrementalAlterConfigsRequest::default().with_resources(altered.to_vec());
    let ResponseKind::IncrementalAlterConfigs(answer) =
        refuse(ApiKey::IncrementalAlterConfigs, 1, request.into())
    else {
        panic!("not an incremental-alter-configs response");
    };
    let listed: Vec<_> = answer
        .responses
        .iter()
        .map(|r| (r.resource_type, r.resource_name.to_string(), r.error_code))
        .collect();
    assert_eq!(listed, expected, "IncrementalAlterConfigs");
}

#[test]
fn elect_leaders_answers_every_partition_and_none_for_all_partitions() {
    let asked = [("a", vec![0, 1]), ("b", vec![0])].map(|(name, partitions)| {
        elect_leaders::TopicPartitions::default()
            .with_topic(topic(name))
            .with_partitions(partitions)
    });
    for version in [0, 1, 2] {
        let request = ElectLeadersRequest::default().with_topic_partitions(Some(asked.to_vec()));
        let ResponseKind::ElectLeaders(answer) =
            refuse(ApiKey::ElectLeaders, version, request.into())
        else {
            panic!("not an elect-leaders response");
        };
        let listed = listing(
            &answer.replica_election_results,
            |t| t.topic.0.to_string(),
            |t| &t.partition_result,
            |p| (p.partition_id, p.error_code),
        );
        assert_eq!(listed, refused(A01_B0), "v{version}");
        assert_eq!(
            answer.error_code,
            if version >= 1 { CODE } else { 0 },
            "v{version}"
        );

        let all = ElectLeadersRequest::default().with_topic_partitions(None);
        let ResponseKind::ElectLeaders(answer) = refuse(ApiKey::ElectLeaders, version, all.into())
        else {
            panic!("not an elect-leaders response");
        };
        assert!(
            answer.replica_election_results.is_empty(),
            "v{version}: all partitions"
        );
    }
}

#[test]
fn alter_replica_log_dirs_answers_every_topic_of_every_dir() {
    let dirs = vec![
        log_dirs::AlterReplicaLogDir::default()
            .with_path(text("/d1"))
            .with_topics(vec![
                log_dirs::AlterReplicaLogDirTopic::default()
                    .with_name(topic("a"))
                    .with_partitions(vec![0, 1]),
            ]),
        log_dirs::AlterReplicaLogDir::default()
            .with_path(text("/d2"))
            .with_topics(vec![
                log_dirs::AlterReplicaLogDirTopic::default()
                    .with_name(topic("b"))
                    .with_partitions(vec![0]),
            ]),
    ];
    let request = AlterReplicaLogDirsRequest::default().with_dirs(dirs);
    let ResponseKind::AlterReplicaLogDirs(answer) =
        refuse(ApiKey::AlterReplicaLogDirs, 2, request.into())
    else {
        panic!("not an alter-replica-log-dirs response");
    };
    let listed = listing(
        &answer.results,
        |t| t.topic_name.0.to_string(),
        |t| &t.partitions,
        |p| (p.partition_index, p.error_code),
    );
    assert_eq!(listed, refused(A01_B0));
}

#[test]
fn alter_partition_reassignments_answers_every_partition_and_the_top_level_code() {
    let topics = [("a", &[0, 1][..]), ("b", &[0][..])].map(|(name, partitions)| {
        let partitions = partitions
            .iter()
            .map(|&i| reassignments::ReassignablePartition::default().with_partition_index(i));
        reassignments::ReassignableTopic::default()
            .with_name(topic(name))
            .with_partitions(partitions.collect())
    });
    for version in [0, 1] {
        let request = AlterPartitionReassignmentsRequest::default().with_topics(topics.to_vec());
        let ResponseKind::AlterPartitionReassignments(answer) =
            refuse(ApiKey::AlterPartitionReassignments, version, request.into())
        else {
            panic!("not an alter-partition-reassignments response");
        };
        let listed = listing(
            &answer.responses,
            |t| t.name.0.to_string(),
            |t| &t.partitions,
            |p| (p.partition_index, p.error_code),
        );
        assert_eq!(listed, refused(A01_B0), "v{version}");
        assert_eq!(answer.error_code, CODE);
    }
}
