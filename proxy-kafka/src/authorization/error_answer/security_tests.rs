//! The security APIs' refusals answer every ACL, filter, quota entity and user the request
//! names, in request order, after a trip through the wire format.

use kafka_protocol::messages::{
    AlterClientQuotasRequest, AlterUserScramCredentialsRequest, ApiKey, CreateAclsRequest,
    DeleteAclsRequest, DescribeUserScramCredentialsRequest, ResponseKind,
    alter_client_quotas_request as quotas, alter_user_scram_credentials_request as alter_scram,
    create_acls_request as create_acls, delete_acls_request as delete_acls,
    describe_user_scram_credentials_request as describe_scram,
};

use super::error_answer_tests::{CODE, refuse, text};

#[test]
fn acl_changes_answer_every_creation_and_every_filter() {
    for version in [1, 2, 3] {
        let creations = ["User:a", "User:b"]
            .map(|p| create_acls::AclCreation::default().with_principal(text(p)));
        let request = CreateAclsRequest::default().with_creations(creations.to_vec());
        let ResponseKind::CreateAcls(answer) = refuse(ApiKey::CreateAcls, version, request.into())
        else {
            panic!("not a create-acls response");
        };
        let listed: Vec<_> = answer
            .results
            .iter()
            .map(|r| (r.error_code, r.error_message.clone()))
            .collect();
        assert_eq!(
            listed,
            vec![(CODE, None), (CODE, None)],
            "CreateAcls v{version}"
        );

        let filters = ["User:a", "User:b"]
            .map(|p| delete_acls::DeleteAclsFilter::default().with_principal_filter(Some(text(p))));
        let request = DeleteAclsRequest::default().with_filters(filters.to_vec());
        let ResponseKind::DeleteAcls(answer) = refuse(ApiKey::DeleteAcls, version, request.into())
        else {
            panic!("not a delete-acls response");
        };
        let listed: Vec<_> = answer
            .filter_results
            .iter()
            .map(|r| (r.error_code, r.matching_acls.len()))
            .collect();
        assert_eq!(listed, vec![(CODE, 0), (CODE, 0)], "DeleteAcls v{version}");
    }
}

#[test]
fn alter_client_quotas_answers_every_entry_with_its_entity() {
    let entry = |kind: &'static str, name: Option<&'static str>| {
        let entity = quotas::EntityData::default()
            .with_entity_type(text(kind))
            .with_entity_name(name.map(text));
        quotas::EntryData::default().with_entity(vec![entity])
    };
    for version in [0, 1] {
        let request = AlterClientQuotasRequest::default()
            .with_entries(vec![entry("user", Some("alice")), entry("client-id", None)]);
        let ResponseKind::AlterClientQuotas(answer) =
            refuse(ApiKey::AlterClientQuotas, version, request.into())
        else {
            panic!("not an alter-client-quotas response");
        };
        let listed: Vec<_> = answer
            .entries
            .iter()
            .map(|e| {
                let entity = e.entity.iter().map(|d| {
                    (
                        d.entity_type.to_string(),
                        d.entity_name.as_ref().map(|n| n.to_string()),
                    )
                });
                (e.error_code, entity.collect::<Vec<_>>())
            })
            .collect();
        let expected = vec![
            (CODE, vec![("user".to_string(), Some("alice".to_string()))]),
            (CODE, vec![("client-id".to_string(), None)]),
        ];
        assert_eq!(listed, expected, "v{version}");
    }
}

#[test]
fn scram_credentials_answer_every_user_once() {
    let request = AlterUserScramCredentialsRequest::default()
        .with_deletions(vec![
            alter_scram::ScramCredentialDeletion::default().with_name(text("alice")),
        ])
        .with_upsertions(vec![
            alter_scram::ScramCredentialUpsertion::default().with_name(text("bob")),
            alter_scram::ScramCredentialUpsertion::default().with_name(text("alice")),
        ]);
    let ResponseKind::AlterUserScramCredentials(answer) =
        refuse(ApiKey::AlterUserScramCredentials, 0, request.into())
    else {
        panic!("not an alter-user-scram-credentials response");
    };
    let listed: Vec<_> = answer
        .results
        .iter()
        .map(|r| (r.user.to_string(), r.error_code))
        .collect();
    assert_eq!(listed, ["alice", "bob"].map(|u| (u.to_string(), CODE)));

    let users = ["alice", "bob"].map(|u| describe_scram::UserName::default().with_name(text(u)));
    let request = DescribeUserScramCredentialsRequest::default().with_users(Some(users.to_vec()));
    let ResponseKind::DescribeUserScramCredentials(answer) =
        refuse(ApiKey::DescribeUserScramCredentials, 0, request.into())
    else {
        panic!("not a describe-user-scram-credentials response");
    };
    let listed: Vec<_> = answer
        .results
        .iter()
        .map(|r| (r.user.to_string(), r.error_code))
        .collect();
    assert_eq!(listed, ["alice", "bob"].map(|u| (u.to_string(), CODE)));
    assert_eq!(answer.error_code, CODE);
}
