//! Tool input schemas, generated from the same utoipa descriptions as the REST API's OpenAPI
//! document, so an agent and a script see one contract (a field added to `NewIncident` shows up
//! in both, with the same limits and wording).

use rmcp::model::JsonObject;
use serde_json::{json, Map, Value};
use utoipa::openapi::path::ParameterIn;
use utoipa::{IntoParams, ToSchema};

/// The JSON Schema (draft 2020-12, as MCP wants) of a body type: its OpenAPI schema with the
/// types it names inlined under `$defs`.
pub fn of<T: ToSchema>() -> JsonObject {
    let mut defs = Vec::new();
    T::schemas(&mut defs);
    let mut root = to_object(serde_json::to_value(T::schema()).unwrap_or(Value::Null));
    if !defs.is_empty() {
        let defs: Map<String, Value> = defs
            .into_iter()
            .map(|(name, s)| (name, serde_json::to_value(s).unwrap_or(Value::Null)))
            .collect();
        root.insert("$defs".into(), Value::Object(defs));
    }
    retarget_refs(Value::Object(root))
}

/// The object schema of a query type's parameters (`GET /incidents`'s filter).
pub fn of_params<T: IntoParams>() -> JsonObject {
    let mut props = Map::new();
    let mut required = Vec::new();
    for p in T::into_params(|| Some(ParameterIn::Query)) {
        let p = serde_json::to_value(p).unwrap_or(Value::Null);
        let Some(name) = p["name"].as_str().map(str::to_string) else {
            continue;
        };
        let mut s = to_object(p["schema"].clone());
        if let Some(d) = p["description"].as_str() {
            s.insert("description".into(), d.into());
        }
        if p["required"] == json!(true) {
            required.push(Value::String(name.clone()));
        }
        props.insert(name, Value::Object(s));
    }
    let mut o = Map::new();
    o.insert("type".into(), "object".into());
    o.insert("properties".into(), Value::Object(props));
    if !required.is_empty() {
        o.insert("required".into(), Value::Array(required));
    }
    retarget_refs(Value::Object(o))
}

/// `schema` with one more required integer property (the incident or evidence the REST route
/// takes from its path), listed first among the required.
pub fn with_id(mut schema: JsonObject, name: &str, description: &str) -> JsonObject {
    let props = schema
        .entry("properties")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Value::Object(props) = props {
        let mut with = Map::new();
        with.insert(
            name.into(),
            json!({"type": "integer", "format": "int64", "description": description}),
        );
        with.extend(std::mem::take(props));
        *props = with;
    }
    let required = schema
        .entry("required")
        .or_insert_with(|| Value::Array(Vec::new()));
    if let Value::Array(r) = required {
        r.insert(0, Value::String(name.into()));
    }
    schema
}

fn to_object(v: Value) -> JsonObject {
    match v {
        Value::Object(o) => o,
        _ => Map::new(),
    }
}

/// OpenAPI points at `#/components/schemas/X`; inside one JSON Schema that is `#/$defs/X`.
fn retarget_refs(v: Value) -> JsonObject {
    fn walk(v: &mut Value) {
        match v {
            Value::Object(o) => {
                if let Some(Value::String(r)) = o.get_mut("$ref") {
                    if let Some(name) = r.strip_prefix("#/components/schemas/") {
                        *r = format!("#/$defs/{name}");
                    }
                }
                o.values_mut().for_each(walk);
            }
            Value::Array(a) => a.iter_mut().for_each(walk),
            _ => {}
        }
    }
    let mut v = v;
    walk(&mut v);
    to_object(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use opslens_domain::{IncidentFilter, NewIncident};

    #[test]
    fn body_schema_is_the_openapi_one_with_its_enums_inlined() {
        let s = Value::Object(of::<NewIncident>());
        assert_eq!(s["type"], "object");
        assert_eq!(s["required"], json!(["title"]));
        assert_eq!(s["properties"]["title"]["maxLength"], 500);
        let text = s.to_string();
        assert!(!text.contains("#/components/"), "{text}");
        // Every reference resolves inside the schema itself.
        for name in ["Severity", "IncidentStatus"] {
            assert!(text.contains(&format!("#/$defs/{name}")), "{text}");
            assert!(s["$defs"][name].is_object(), "{name} missing: {text}");
        }
    }

    #[test]
    fn query_params_become_an_object_and_the_path_id_is_required() {
        let s = of_params::<IncidentFilter>();
        assert!(s["properties"]["limit"].is_object());
        assert!(s["properties"]["q"]["description"]
            .as_str()
            .unwrap()
            .contains("Full-text"));
        let s = with_id(of::<NewIncident>(), "incident_id", "The incident");
        assert_eq!(s["required"], json!(["incident_id", "title"]));
        assert_eq!(s["properties"]["incident_id"]["type"], "integer");
    }
}
