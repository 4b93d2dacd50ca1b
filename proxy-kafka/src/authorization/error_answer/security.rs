//! Refusals of the security administration APIs: ACLs, delegation tokens, client quotas and
//! SCRAM credentials. Each lists every ACL, filter, quota entity or user the request names.

use std::collections::HashSet;

use kafka_protocol::messages::{
    AlterClientQuotasRequest, AlterClientQuotasResponse, AlterUserScramCredentialsRequest,
    AlterUserScramCredentialsResponse, CreateAclsRequest, CreateAclsResponse,
    CreateDelegationTokenResponse, DeleteAclsRequest, DeleteAclsResponse, DescribeAclsResponse,
    DescribeClientQuotasResponse, DescribeDelegationTokenResponse,
    DescribeUserScramCredentialsRequest, DescribeUserScramCredentialsResponse,
    ExpireDelegationTokenResponse, RenewDelegationTokenResponse,
    alter_client_quotas_response as alter_quotas,
    alter_user_scram_credentials_response as alter_scram, create_acls_response as create_acls,
    delete_acls_response as delete_acls,
    describe_user_scram_credentials_response as describe_scram,
};
use kafka_protocol::protocol::StrBytes;

/// No ACLs described.
pub(super) fn describe_acls(code: i16) -> DescribeAclsResponse {
    DescribeAclsResponse::default()
        .with_error_code(code)
        .with_error_message(None)
}

/// One result per ACL to create.
pub(super) fn create_acls(request: &CreateAclsRequest, code: i16) -> CreateAclsResponse {
    let results = request.creations.iter().map(|_| {
        create_acls::AclCreationResult::default()
            .with_error_code(code)
            .with_error_message(None)
    });
    CreateAclsResponse::default().with_results(results.collect())
}

/// One result per filter, matching no ACLs.
pub(super) fn delete_acls(request: &DeleteAclsRequest, code: i16) -> DeleteAclsResponse {
    let results = request.filters.iter().map(|_| {
        delete_acls::DeleteAclsFilterResult::default()
            .with_error_code(code)
            .with_error_message(None)
    });
    DeleteAclsResponse::default().with_filter_results(results.collect())
}

/// No token: principal, timestamps and HMAC stay empty.
pub(super) fn create_delegation_token(code: i16) -> CreateDelegationTokenResponse {
    CreateDelegationTokenResponse::default().with_error_code(code)
}

pub(super) fn renew_delegation_token(code: i16) -> RenewDelegationTokenResponse {
    RenewDelegationTokenResponse::default().with_error_code(code)
}

pub(super) fn expire_delegation_token(code: i16) -> ExpireDelegationTokenResponse {
    ExpireDelegationTokenResponse::default().with_error_code(code)
}

/// No tokens described.
pub(super) fn describe_delegation_token(code: i16) -> DescribeDelegationTokenResponse {
    DescribeDelegationTokenResponse::default().with_error_code(code)
}

/// Entries null, as Kafka's `DescribeClientQuotasResponse` for an error.
pub(super) fn describe_client_quotas(code: i16) -> DescribeClientQuotasResponse {
    DescribeClientQuotasResponse::default()
        .with_error_code(code)
        .with_error_message(None)
        .with_entries(None)
}

/// One result per entry, naming its entity as the request did.
pub(super) fn alter_client_quotas(
    request: &AlterClientQuotasRequest,
    code: i16,
) -> AlterClientQuotasResponse {
    let entries = request.entries.iter().map(|entry| {
        let entity = entry.entity.iter().map(|part| {
            alter_quotas::EntityData::default()
                .with_entity_type(part.entity_type.clone())
                .with_entity_name(part.entity_name.clone())
        });
        alter_quotas::EntryData::default()
            .with_error_code(code)
            .with_error_message(None)
            .with_entity(entity.collect())
    });
    AlterClientQuotasResponse::default().with_entries(entries.collect())
}

/// The top-level code and every user asked about (none when all users were asked about).
pub(super) fn describe_user_scram_credentials(
    request: &DescribeUserScramCredentialsRequest,
    code: i16,
) -> DescribeUserScramCredentialsResponse {
    let results = request.users.iter().flatten().map(|user| {
        describe_scram::DescribeUserScramCredentialsResult::default()
            .with_user(user.name.clone())
            .with_error_code(code)
            .with_error_message(None)
    });
    DescribeUserScramCredentialsResponse::default()
        .with_error_code(code)
        .with_error_message(None)
        .with_results(results.collect())
}

/// One result per user, deletions first, then upsertions: a user named twice is answered once,
/// as Kafka's `getErrorResponse` (which collects the users into a set) does.
pub(super) fn alter_user_scram_credentials(
    request: &AlterUserScramCredentialsRequest,
    code: i16,
) -> AlterUserScramCredentialsResponse {
    let deleted = request.deletions.iter().map(|deletion| &deletion.name);
    let upserted = request.upsertions.iter().map(|upsertion| &upsertion.name);
    // A set, not a scan of the answer so far: the client chooses how many users it names.
    let mut seen: HashSet<&StrBytes> = HashSet::new();
    let users = deleted.chain(upserted).filter(|&user| seen.insert(user));
    let results = users.map(|user| {
        alter_scram::AlterUserScramCredentialsResult::default()
            .with_user(user.clone())
            .with_error_code(code)
            .with_error_message(None)
    });
    AlterUserScramCredentialsResponse::default().with_results(results.collect())
}
