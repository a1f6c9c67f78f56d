//! Property tests of what parses outside input: webhook payloads of each provider and their
//! signature headers. Whatever arrives, parsing never panics; a body signed with the right key
//! verifies, and any change to it does not.

use proptest::prelude::*;
use serde_json::{json, Value};

use crate::{alerts, github, signature};

/// JSON values of any shape, with the keys the parsers look for among the random ones.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        ".{0,20}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        let key = prop_oneof![
            Just("event".to_string()),
            Just("data".to_string()),
            Just("event_type".to_string()),
            Just("incident".to_string()),
            Just("alerts".to_string()),
            Just("status".to_string()),
            Just("labels".to_string()),
            Just("annotations".to_string()),
            Just("startsAt".to_string()),
            Just("action".to_string()),
            Just("pull_request".to_string()),
            Just("deployment".to_string()),
            Just("repository".to_string()),
            Just("payload".to_string()),
            "[a-z_]{1,10}",
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map(key, inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        json_value().prop_map(|v| v.to_string().into_bytes()),
        prop::collection::vec(any::<u8>(), 0..256),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn payloads_of_every_provider_parse_or_fail_cleanly(b in body(), event in "[a-z_]{0,20}") {
        let _ = alerts::parse_pagerduty(&b);
        let _ = alerts::pagerduty_event_id(&b);
        let _ = alerts::body_id(&b);
        for provider in ["alertmanager", "grafana"] {
            let _ = alerts::parse_alertmanager(provider, &b);
        }
        let _ = github::parse_webhook(&event, &b);
        for known in ["pull_request", "deployment_status", "deployment", "ping", "push"] {
            let _ = github::parse_webhook(known, &b);
        }
        if let Ok(ev) = serde_json::from_slice::<alerts::GenericEvent>(&b) {
            let _ = alerts::parse_generic(&ev, &b);
        }
    }

    #[test]
    fn a_standard_webhook_signature_verifies_and_any_change_breaks_it(
        secret in prop::collection::vec(any::<u8>(), 1..64),
        id in "[a-zA-Z0-9_]{1,20}",
        b in prop::collection::vec(any::<u8>(), 0..200),
        flip in any::<prop::sample::Index>(),
        now in 1_600_000_000i64..2_000_000_000,
    ) {
        let sig = signature::sign_standard(&secret, &id, now, &b);
        let ts = now.to_string();
        prop_assert!(signature::verify_standard(&secret, Some(&id), Some(&ts), Some(&sig), &b, now).is_ok());
        if !b.is_empty() {
            let mut changed = b.clone();
            let i = flip.index(changed.len());
            changed[i] ^= 0x01;
            prop_assert!(signature::verify_standard(&secret, Some(&id), Some(&ts), Some(&sig), &changed, now).is_err());
        }
    }

    #[test]
    fn signature_headers_of_any_shape_are_refused_not_panicked_on(
        header in proptest::option::of(".{0,80}"),
        ts in proptest::option::of("[0-9a-z ]{0,12}"),
        b in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let now = 1_800_000_000;
        prop_assert!(signature::verify_github("s3cret", header.as_deref(), &b).is_err());
        prop_assert!(signature::verify_pagerduty("s3cret", header.as_deref(), &b).is_err());
        prop_assert!(signature::verify_slack("s3cret", ts.as_deref(), header.as_deref(), &b, now).is_err());
        prop_assert!(signature::verify_grafana("s3cret", header.as_deref(), ts.as_deref(), &b, now).is_err());
        prop_assert!(signature::verify_standard(b"k", Some("id"), ts.as_deref(), header.as_deref(), &b, now).is_err());
    }
}
