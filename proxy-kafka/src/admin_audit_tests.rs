//! The admin audit stage on real frames: the resources a request names, the broker's outcome
//! for each from its answer, in request order; other APIs are not reported.

use std::sync::Arc;

use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{
    ApiKey, CreateTopicsRequest, CreateTopicsResponse, DeleteGroupsRequest, DeleteGroupsResponse,
    GroupId, MetadataResponse, RequestKind, ResponseKind, TopicName,
};
use parking_lot::Mutex;
use proxy_core::audit::{AuditDetail, AuditEvent, AuditKind, AuditSink};
use proxy_core::codec::Codec;
use proxy_core::stage::{Flow, NewStage, StageContext};

use crate::admin_audit::NewAdminAudit;
use crate::test_support::{Session, cx, metadata_request, name, request_frame, response_frame};

#[derive(Debug, Default)]
struct Recorded(Mutex<Vec<AuditEvent>>);

impl AuditSink for Recorded {
    fn wants(&self, kind: AuditKind) -> bool {
        kind == AuditKind::Admin
    }

    fn record(&self, event: AuditEvent) {
        self.0.lock().push(event);
    }
}

/// Sends `request` and `response` through the stage; returns what it reported.
fn through(
    api: ApiKey,
    version: i16,
    request: &RequestKind,
    response: &ResponseKind,
) -> Vec<AuditEvent> {
    let sink = Arc::new(Recorded::default());
    let mut cx = cx();
    cx.set_audit(sink.clone());
    let mut stage = NewAdminAudit.new_stage(&cx);
    let mut session = Session::default();
    let read = session.read_request(&request_frame(api, version, 9, request));
    let Flow::Forward(read) = stage.on_request(read, &mut StageContext::new(&mut cx)) else {
        panic!("the request was not forwarded");
    };
    session
        .codec
        .encode_request(read, &mut session.to_backend)
        .unwrap();
    let answer = session
        .read_response(&response_frame(api, version, 9, response))
        .unwrap();
    assert!(matches!(
        stage.on_response(answer, &mut StageContext::new(&mut cx)),
        Flow::Forward(_)
    ));
    sink.0.lock().clone()
}

#[test]
fn create_topics_is_reported_with_each_topics_outcome_in_request_order() {
    let topic = |n: &'static str| CreatableTopic::default().with_name(TopicName(name(n)));
    let request = RequestKind::CreateTopics(
        CreateTopicsRequest::default().with_topics(vec![topic("orders"), topic("audit")]),
    );
    let result = |n: &'static str, code: i16| {
        CreatableTopicResult::default()
            .with_name(TopicName(name(n)))
            .with_error_code(code)
    };
    // The broker answers in its own order; 36 is TOPIC_ALREADY_EXISTS.
    let response = ResponseKind::CreateTopics(
        CreateTopicsResponse::default().with_topics(vec![result("audit", 36), result("orders", 0)]),
    );
    let events = through(ApiKey::CreateTopics, 5, &request, &response);
    assert_eq!(events.len(), 1);
    let AuditDetail::Admin {
        api,
        api_version,
        resources,
        unanswered,
    } = &events[0].detail
    else {
        panic!("{:?}", events[0]);
    };
    assert_eq!(
        (&**api, *api_version, *unanswered),
        ("CreateTopics", 5, false)
    );
    let outcomes: Vec<_> = resources
        .iter()
        .map(|r| (r.resource_type, &*r.name, r.error_code))
        .collect();
    assert_eq!(
        outcomes,
        [("topic", "orders", Some(0)), ("topic", "audit", Some(36))]
    );
}

#[test]
fn delete_groups_is_reported_per_group() {
    let request = RequestKind::DeleteGroups(
        DeleteGroupsRequest::default().with_groups_names(vec![GroupId(name("payments"))]),
    );
    let response = ResponseKind::DeleteGroups(DeleteGroupsResponse::default().with_results(vec![
        DeletableGroupResult::default()
            .with_group_id(GroupId(name("payments")))
            .with_error_code(69),
    ]));
    let events = through(ApiKey::DeleteGroups, 2, &request, &response);
    let AuditDetail::Admin { resources, .. } = &events[0].detail else {
        panic!("{:?}", events[0]);
    };
    assert_eq!(resources[0].resource_type, "group");
    assert_eq!(&*resources[0].name, "payments");
    assert_eq!(resources[0].error_code, Some(69));
}

#[test]
fn requests_that_change_nothing_are_not_reported() {
    let events = through(
        ApiKey::Metadata,
        12,
        &metadata_request(&["orders"]),
        &ResponseKind::Metadata(MetadataResponse::default()),
    );
    assert!(events.is_empty(), "{events:?}");
}
