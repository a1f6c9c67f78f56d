//! The OpenAPI document describes the wire: enum values as serde writes them, every error
//! answer with the JSON error body, both export formats, and request bodies as the server
//! takes them.

use serde_json::Value;

fn spec() -> Value {
    serde_json::to_value(opslens_api::openapi()).unwrap()
}

fn enum_values(spec: &Value, schema: &str) -> Vec<String> {
    spec["components"]["schemas"][schema]["enum"]
        .as_array()
        .unwrap_or_else(|| panic!("{schema} has no enum"))
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

/// What serde writes for each value of `all`.
fn wire<T: serde::Serialize>(all: &[T]) -> Vec<String> {
    all.iter()
        .map(|v| {
            serde_json::to_value(v)
                .unwrap()
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect()
}

#[test]
fn enums_in_the_spec_are_the_wire_values() {
    use opslens_domain::*;
    let s = spec();
    assert_eq!(enum_values(&s, "Severity"), wire(Severity::ALL));
    assert_eq!(enum_values(&s, "IncidentStatus"), wire(IncidentStatus::ALL));
    assert_eq!(enum_values(&s, "IncidentSource"), wire(IncidentSource::ALL));
    assert_eq!(enum_values(&s, "EvidenceType"), wire(EvidenceType::ALL));
    assert_eq!(enum_values(&s, "AnalysisState"), wire(AnalysisState::ALL));
    assert_eq!(enum_values(&s, "TimelineKind"), wire(TimelineKind::ALL));
    assert_eq!(
        enum_values(&s, "HypothesisStatus"),
        wire(HypothesisStatus::ALL)
    );
    assert_eq!(
        enum_values(&s, "HypothesisOrigin"),
        wire(HypothesisOrigin::ALL)
    );
    assert_eq!(enum_values(&s, "ActionStatus"), wire(ActionStatus::ALL));
    assert_eq!(
        enum_values(&s, "AnalysisState"),
        ["waiting-for-model", "queued", "running", "done", "failed"]
    );
    // Request fields narrower than their type: what the route takes, no more.
    let props = &s["components"]["schemas"]["NewEvidence"]["properties"];
    let types: Vec<&str> = props["evidence_type"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(types, ["log", "metric", "deployment", "alert", "note"]);
    let kinds = &s["components"]["schemas"]["NewTimelineEvent"]["properties"]["kind"]["enum"];
    assert_eq!(kinds, &serde_json::json!(["note", "observation", null]));
}

/// Every operation's error answers carry the error body; the shared ones are all listed.
#[test]
fn every_error_answer_is_listed_with_the_error_body() {
    let s = spec();
    let error_ref = "#/components/schemas/ErrorBody";
    for (path, ops) in s["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            let responses = op["responses"].as_object().unwrap();
            let statuses: Vec<u16> = responses.keys().filter_map(|k| k.parse().ok()).collect();
            for (status, res) in responses {
                if status.parse::<u16>().is_ok_and(|s| s >= 400) {
                    assert_eq!(
                        res["content"]["application/json"]["schema"]["$ref"], error_ref,
                        "{method} {path} {status}"
                    );
                }
            }
            assert!(statuses.contains(&403), "{method} {path}: 403 (Host guard)");
            let public = op["security"] == serde_json::json!([{}]);
            if !public {
                assert!(statuses.contains(&401), "{method} {path}: 401 (token)");
            }
            if path.contains('{') {
                assert!(
                    statuses.contains(&400) && statuses.contains(&404),
                    "{method} {path}"
                );
            }
            if op["requestBody"]["content"]["application/json"].is_object()
                && !path.ends_with("/analyze")
                && !path.contains("webhooks")
            {
                for s in [400, 413, 415, 422] {
                    assert!(statuses.contains(&s), "{method} {path}: {s}");
                }
            }
            if method != "get" && !path.contains("/auth/") && !path.contains("/models") {
                assert!(statuses.contains(&507), "{method} {path}: 507");
                assert!(statuses.contains(&503), "{method} {path}: 503");
            }
        }
    }
}

#[test]
fn the_export_lists_both_content_types() {
    let s = spec();
    let content =
        &s["paths"]["/api/v1/incidents/{id}/export"]["get"]["responses"]["200"]["content"];
    assert_eq!(
        content["application/json"]["schema"]["$ref"],
        "#/components/schemas/IncidentExport"
    );
    assert!(content["text/markdown"]["schema"].is_object(), "{content}");
}

#[test]
fn text_fields_state_the_server_rules() {
    let s = spec();
    let title = &s["components"]["schemas"]["NewIncident"]["properties"]["title"];
    assert_eq!(title["minLength"], 1);
    assert_eq!(title["maxLength"], 500);
    assert_eq!(title["pattern"], opslens_api::spec::NONBLANK_TEXT_PATTERN);
    let description = &s["components"]["schemas"]["NewIncident"]["properties"]["description"];
    assert_eq!(description["pattern"], opslens_api::spec::TEXT_PATTERN);
    let analyze = &s["paths"]["/api/v1/evidence/{id}/analyze"]["post"]["requestBody"];
    assert_ne!(analyze["required"], true, "an empty body is allowed");
    assert_eq!(
        analyze["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/AnalyzeRequest",
        "{analyze}"
    );
}

#[test]
fn operation_ids_are_unique() {
    let s = spec();
    let mut ids = Vec::new();
    for ops in s["paths"].as_object().unwrap().values() {
        for op in ops.as_object().unwrap().values() {
            ids.push(op["operationId"].as_str().unwrap().to_string());
        }
    }
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(ids.len(), unique.len(), "{ids:?}");
    assert!(ids.contains(&"incidents_get".to_string()), "{ids:?}");
}

/// The UI generates its wire types from `ui/openapi.json`; that file must be what the server
/// serves, or the UI type-checks against a spec nobody runs. `OPSLENS_UPDATE_SPEC=1` rewrites
/// it (the same as `opslens openapi > ui/openapi.json`).
#[test]
fn the_ui_spec_is_the_server_spec() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../ui/openapi.json");
    let current = serde_json::to_string_pretty(&opslens_api::openapi()).unwrap() + "\n";
    if std::env::var_os("OPSLENS_UPDATE_SPEC").is_some() {
        std::fs::write(&path, &current).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == current,
        "ui/openapi.json differs from the server's spec: run \
         `OPSLENS_UPDATE_SPEC=1 cargo test -p opslens-api --test spec` (or \
         `opslens openapi > ui/openapi.json`), then `cd ui && npm run build`, and commit both"
    );
}
