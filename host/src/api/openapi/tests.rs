//! The document parses, and it describes every route the router has: the routes are
//! read from the routers' own source, so a route added without its `#[utoipa::path]`
//! fails here.

use std::collections::BTreeSet;

use serde_json::Value;

/// Each router's module, the prefix it is nested under, and its source.
const ROUTERS: &[(&str, &str, &str)] = &[
    ("jobs", "/v2", include_str!("../jobs.rs")),
    ("metadata", "/v2", include_str!("../metadata.rs")),
    ("webhooks", "/v2", include_str!("../webhooks.rs")),
    ("webhook_secret", "/v2", include_str!("../webhook_secret.rs")),
    ("events", "/v2", include_str!("../events.rs")),
    ("uploads", "/v2", include_str!("../uploads.rs")),
    ("octet", "/v0", include_str!("../octet.rs")),
    ("admin", "/admin", include_str!("../admin.rs")),
    ("files", "", include_str!("../files.rs")),
    ("ops", "", include_str!("../ops.rs")),
    ("openapi", "", include_str!("mod.rs")),
];

/// `api::router`'s own source: its routes, and the routers it nests or merges.
const API: &str = include_str!("../mod.rs");

const METHODS: &[&str] = &["get", "post", "put", "patch", "delete"];

/// A path with its parameters' names left out (`/v2/jobs/{}`), without a trailing `/`
/// (the router's `/metadata/jobs/{id}/` is an alias for Coconut's client libraries).
fn shape(path: &str) -> String {
    let mut out = String::new();
    let mut in_param = false;
    for c in path.chars() {
        match c {
            '{' => {
                in_param = true;
                out.push_str("{}");
            }
            '}' => in_param = false,
            _ if !in_param => out.push(c),
            _ => {}
        }
    }
    if out.len() > 1 { out.trim_end_matches('/').to_string() } else { out }
}

/// `(method, path shape)` of every `.route("PATH", method(...).method(...))` in the source.
fn routes_in(prefix: &str, source: &str) -> Vec<(String, String)> {
    let mut routes = Vec::new();
    for (i, _) in source.match_indices(".route(\"") {
        let rest = &source[i + 8..];
        let Some(end) = rest.find('"') else { continue };
        let path = &rest[..end];
        let call = &rest[end..];
        let call = &call[..call.find(".route(").unwrap_or(call.len()).min(call.find('\n').unwrap_or(call.len()))];
        for method in METHODS {
            let called = call.match_indices(&format!("{method}(")).any(|(at, _)| {
                at == 0 || !call[..at].ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
            });
            if called {
                routes.push((method.to_string(), shape(&format!("{prefix}{path}"))));
            }
        }
    }
    routes
}

fn documented() -> BTreeSet<(String, String)> {
    let doc: Value = serde_json::from_str(super::json()).expect("the document is JSON");
    let mut found = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in METHODS {
            if item.get(*method).is_some() {
                found.insert((method.to_string(), shape(path)));
            }
        }
    }
    found
}

#[test]
fn every_route_is_documented_and_nothing_else() {
    let mut routed: BTreeSet<(String, String)> = ROUTERS.iter().flat_map(|(_, prefix, source)| routes_in(prefix, source)).collect();
    routed.extend(routes_in("", API));
    assert!(routed.len() >= 19, "the routes were read: {routed:?}");
    assert!(routed.contains(&("get".into(), "/v2/jobs".into())) && routed.contains(&("delete".into(), "/admin/plugins/{}".into())));
    let documented = documented();
    let missing: Vec<_> = routed.difference(&documented).collect();
    assert!(missing.is_empty(), "routes without a #[utoipa::path]: {missing:?}");
    let extra: Vec<_> = documented.difference(&routed).collect();
    assert!(extra.is_empty(), "documented routes the router lacks: {extra:?}");
}

/// Routers that are not API: the web dashboard's page and assets (`/`, `/ui/...`).
const NOT_API: &[&str] = &["ui"];

/// The routers `api::router` nests and merges are the ones read above, under the same
/// prefixes: a new router module cannot escape the check (unless it is named in `NOT_API`).
#[test]
fn every_router_is_read() {
    let mut used = BTreeSet::new();
    for line in API.lines() {
        let prefix = line.split_once(".nest(\"").and_then(|(_, rest)| rest.split_once('"')).map_or("", |(prefix, _)| prefix);
        for (at, _) in line.match_indices("::router()") {
            let name = line[..at].rsplit(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).next().unwrap_or_default();
            if !NOT_API.contains(&name) {
                used.insert((name.to_string(), prefix.to_string()));
            }
        }
    }
    let read: BTreeSet<(String, String)> = ROUTERS.iter().map(|(name, prefix, _)| (name.to_string(), prefix.to_string())).collect();
    assert_eq!(used, read);
}

#[test]
fn the_v2_part_is_coconuts_document() {
    let doc: Value = serde_json::from_str(super::json()).unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    // Seed 000's operations, schema names and security scheme.
    for (path, method, operation) in [
        ("/v2/jobs", "post", "createJob"),
        ("/v2/jobs/{jobId}", "get", "retrieveJob"),
        ("/v2/metadata/jobs/{jobId}", "get", "retrieveJobMetadata"),
        ("/v2/metadata/jobs/{jobId}/{key}", "get", "retrieveOutputMetadata"),
    ] {
        let op = &doc["paths"][path][method];
        assert_eq!(op["operationId"], operation, "{method} {path}");
        assert_eq!(op["security"][0]["basicAuth"], serde_json::json!([]), "{operation}");
    }
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for name in [
        "CreateJobRequest", "Input", "Storage", "Credentials", "Outputs", "Output", "Notification", "Settings", "Job",
        "InputStatus", "OutputStatus", "MetadataResponse", "Metadata", "Stream", "Format",
    ] {
        assert!(schemas.contains_key(name), "schema {name}");
    }
    let request = &schemas["CreateJobRequest"];
    let mut required: Vec<&str> = request["required"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    required.sort();
    // `input`, or `inputs` in its place.
    assert_eq!(required, ["outputs", "storage"]);
    assert!(request["properties"]["inputs"]["items"].is_object(), "{request}");
    assert_eq!(doc["components"]["securitySchemes"]["basicAuth"]["scheme"], "basic");
    assert_eq!(schemas["Notification"]["properties"]["progress_interval"]["minimum"], 1);
    // Served without auth; everything else names a scheme.
    assert_eq!(doc["paths"]["/openapi.json"]["get"]["security"], serde_json::json!([{}]));
}
