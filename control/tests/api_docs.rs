//! docs/api.md, the OpenAPI document and the server agree on the JSON request bodies:
//! the same fields, the same ones optional, and the server requires exactly the
//! fields the document lists as `required` (and refuses unknown ones).

mod common;

use common::Backend;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// (method, path) -> (field -> optional) of the JSON bodies in docs/api.md's table:
/// the first `{...}` in the "What" column, fields separated by commas, `name?`
/// optional, parenthesised notes ignored.
fn documented_bodies() -> BTreeMap<(String, String), BTreeMap<String, bool>> {
    let text = include_str!("../../docs/api.md");
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let cells: Vec<&str> = line.split(" | ").map(|c| c.trim_matches(|ch| ch == '|' || ch == ' ')).collect();
        // Rows of the endpoint table whose method takes a body (GET rows show answers).
        if cells.len() < 4 || !["POST", "PATCH", "PUT", "DELETE"].contains(&cells[0]) {
            continue;
        }
        let what = cells[3..].join(" | ");
        let Some(start) = what.find("`{") else { continue };
        let rest = &what[start + 2..];
        let Some(end) = rest.find("}`") else { panic!("docs/api.md: unclosed body in {line}") };
        // Drop parenthesised notes (they contain commas), then split the fields.
        let mut plain = String::new();
        let mut depth = 0;
        for ch in rest[..end].chars() {
            match ch {
                '(' => depth += 1,
                ')' => depth -= 1,
                _ if depth == 0 => plain.push(ch),
                _ => {}
            }
        }
        let mut fields = BTreeMap::new();
        for item in plain.split(',') {
            let item = item.trim();
            let name: String = item.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            assert!(!name.is_empty(), "docs/api.md: cannot read a field from {item:?} in {line}");
            fields.insert(name.clone(), item[name.len()..].starts_with('?'));
        }
        out.insert((cells[0].to_ascii_lowercase(), cells[1].to_owned()), fields);
    }
    out
}

/// (method, path) -> the JSON schema of each operation with a JSON body.
fn openapi_bodies() -> BTreeMap<(String, String), Value> {
    let doc = control::routes::openapi::document("http://localhost:8080");
    let mut out = BTreeMap::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            if let Some(schema) = op.pointer("/requestBody/content/application~1json/schema") {
                out.insert((method.clone(), path.clone()), schema.clone());
            }
        }
    }
    out
}

fn required(schema: &Value) -> Vec<String> {
    schema["required"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_owned()).collect()
}

#[test]
fn docs_and_openapi_list_the_same_fields_and_optionality() {
    let docs = documented_bodies();
    let api = openapi_bodies();
    assert!(api.len() >= 4, "{api:?}");
    assert_eq!(
        docs.keys().collect::<Vec<_>>(),
        api.keys().collect::<Vec<_>>(),
        "operations with a JSON body: docs/api.md vs OpenAPI"
    );
    for (op, schema) in &api {
        let req = required(schema);
        let props: BTreeMap<String, bool> =
            schema["properties"].as_object().unwrap().keys().map(|k| (k.clone(), !req.contains(k))).collect();
        assert_eq!(&docs[op], &props, "{op:?}: docs/api.md (field -> optional) vs OpenAPI");
    }
}

/// A value the server accepts for a field of the body of `path`: logins use the
/// existing user `login_as`, registrations a new name.
fn sample(path: &str, field: &str, login_as: &str) -> Value {
    match field {
        "username" if path.ends_with("/login") => login_as.into(),
        "username" => common::unique("u").into(),
        "password" => "password123".into(),
        "push_protocol" => "rtmp".into(),
        "record" => false.into(),
        // A public address: private ones are refused by default.
        "url" if path.contains("/forwards") => "rtmp://8.8.8.8/live".into(),
        "key" if path.contains("/forwards") => "a-stream-key".into(),
        "enabled" => true.into(),
        _ => "some text".into(),
    }
}

async fn body_contract(b: Backend) {
    let s = common::start(b).await;
    let (token, _) = s.user("docs").await;
    let me = s.req("GET", "/api/v1/users/me", Some(&token), None).await;
    let login_as = me.data()["username"].as_str().unwrap().to_owned();
    let room_id = s.room(&token).await["id"].as_i64().unwrap();
    // A forward of the room, for the operations on one.
    let fwd = json!({ "url": "rtmp://8.8.8.8/live", "key": "docs-key" });
    let r = s.req("POST", &format!("/api/v1/live/{room_id}/forwards"), Some(&token), Some(fwd)).await;
    let fid = r.data()["id"].as_i64().expect("a forward");
    for ((method, path), schema) in openapi_bodies() {
        let path = path.replace("{id}", &room_id.to_string()).replace("{fid}", &fid.to_string());
        let req = required(&schema);
        let props: Vec<String> = schema["properties"].as_object().unwrap().keys().cloned().collect();
        // "At least one of" (minProperties, or anyOf of single required fields).
        let min_props =
            schema["minProperties"].as_u64().or_else(|| schema["anyOf"].is_array().then_some(1)).unwrap_or(0) as usize;
        let only_required: Map<String, Value> = req.iter().map(|f| (f.clone(), sample(&path, f, &login_as))).collect();
        let mut body = only_required.clone();
        // minProperties beyond the required fields: add optional ones up to it.
        for f in props.iter().filter(|f| !req.contains(f)) {
            if body.len() >= min_props {
                break;
            }
            body.insert(f.clone(), sample(&path, f, &login_as));
        }
        let r = s.req(&method.to_uppercase(), &path, Some(&token), Some(Value::Object(body.clone()))).await;
        assert!((200..300).contains(&r.status), "{method} {path} with {body:?}: {} {:?}", r.status, r.body);
        if path.ends_with("/live/create") {
            assert_eq!(r.data()["push_protocol"], "rtmp", "push_protocol defaults to rtmp");
        }

        // Each required field left out: 400 naming it.
        for f in &req {
            let mut partial = body.clone();
            partial.remove(f);
            let r = s.req(&method.to_uppercase(), &path, Some(&token), Some(Value::Object(partial))).await;
            assert_eq!(r.status, 400, "{method} {path} without {f}: {:?}", r.body);
            assert!(r.body["message"].as_str().unwrap().contains(f.as_str()), "{:?}", r.body);
        }
        // Fewer than minProperties: 400.
        if min_props > req.len() {
            let r = s.req(&method.to_uppercase(), &path, Some(&token), Some(Value::Object(only_required))).await;
            assert_eq!(r.status, 400, "{method} {path} with fewer than {min_props} fields: {:?}", r.body);
        }
        // An unknown field: 400 naming it (additionalProperties: false).
        assert_eq!(schema["additionalProperties"], json!(false), "{method} {path}");
        let mut extra = body.clone();
        extra.insert("no_such_field".into(), json!(1));
        let r = s.req(&method.to_uppercase(), &path, Some(&token), Some(Value::Object(extra))).await;
        assert_eq!(r.status, 400, "{method} {path} with an unknown field: {:?}", r.body);
        assert!(r.body["message"].as_str().unwrap().contains("no_such_field"), "{:?}", r.body);
    }
}

#[tokio::test]
async fn server_requires_what_openapi_says() {
    body_contract(Backend::Embedded).await;
}
