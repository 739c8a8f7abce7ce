//! The OpenAPI 3.1 document of the control API. `tests/api.rs` checks that it lists
//! exactly [`super::ROUTES`] and that each of its operations is routed.

use serde_json::{Map, Value, json};

struct Op {
    method: &'static str,
    path: &'static str,
    summary: &'static str,
    auth: bool,
    body: Option<Value>,
    /// Extra success/error statuses besides the defaults.
    statuses: &'static [(&'static str, &'static str)],
}

/// What the drain mark's two operations answer besides 200.
const DRAIN_STATUSES: &[(&str, &str)] = &[
    ("400", "Not a node id"),
    ("401", "No or wrong admin token"),
    ("403", "Admin API disabled"),
    ("404", "No such live node"),
    ("409", "Not in cluster mode"),
    ("503", "Redis unreachable"),
];

fn ops() -> Vec<Op> {
    // Every JSON body refuses unknown fields (`deny_unknown_fields`).
    let obj = |props: Value, required: &[&str]| json!({ "type": "object", "properties": props, "required": required, "additionalProperties": false });
    // At least one of the fields given as a string (null means "unchanged").
    let at_least_one = |mut schema: Value, fields: &[&str]| {
        let any: Vec<Value> =
            fields.iter().map(|f| json!({ "required": [f], "properties": { *f: { "type": "string" } } })).collect();
        schema["anyOf"] = json!(any);
        schema
    };
    // nginx-rtmp's fields; the key may also come as `key`, or in the query string.
    let form = json!({ "application/x-www-form-urlencoded": { "schema": {
        "type": "object",
        "properties": { "name": { "type": "string", "pattern": "^[^?]", "description": "the stream key (`name=<key>?x=y` too)" },
                        "key": { "type": "string", "minLength": 1, "description": "the stream key, when `name` is absent" },
                        "app": { "type": "string", "description": "default: the first of rtmp.apps" },
                        "addr": { "type": "string" }, "call": { "type": "string" } },
        "anyOf": [{ "required": ["name"] }, { "required": ["key"] }] } } });
    let mut patch_schema = at_least_one(
        obj(
            json!({
         "title": { "type": ["string", "null"], "minLength": 1, "maxLength": 200, "pattern": NO_CONTROL, "description": "null or absent: unchanged" },
         "description": { "type": ["string", "null"], "maxLength": 2000, "pattern": NO_CONTROL_BUT_LINES, "description": "null or absent: unchanged" },
         "private": { "type": ["boolean", "null"], "description": "null or absent: unchanged" },
         "record": { "type": ["boolean", "null"], "description": "record its broadcasts; null or absent: unchanged" } }),
            &[],
        ),
        &["title", "description"],
    );
    if let Some(any) = patch_schema["anyOf"].as_array_mut() {
        for f in ["private", "record"] {
            any.push(json!({ "required": [f], "properties": { f: { "type": "boolean" } } }));
        }
    }
    vec![
        Op {
            method: "get",
            path: "/health",
            summary: "Backend health",
            auth: false,
            body: None,
            statuses: &[("503", "A configured backend is down")],
        },
        Op {
            method: "get",
            path: "/metrics",
            summary: "Prometheus metrics (OpenMetrics text)",
            auth: false,
            body: None,
            statuses: &[],
        },
        Op {
            method: "get",
            path: "/api/v1/openapi.json",
            summary: "This document",
            auth: false,
            body: None,
            statuses: &[],
        },
        Op {
            method: "post",
            path: "/api/v1/auth/register",
            summary: "Create a user",
            auth: false,
            body: Some(json!({ "application/json": { "schema": obj(json!({
                 "username": { "type": "string", "pattern": "^[A-Za-z0-9_.-]{3,32}$",
                               "description": "3 to 32 letters, digits, '_', '-' or '.'; unique whatever the case" },
                 "password": { "type": "string", "minLength": 8, "maxLength": 128 },
                 "nickname": { "type": ["string", "null"], "maxLength": 64, "pattern": NO_CONTROL, "description": "null or absent: the username" } }), &["username", "password"]) } })),
            statuses: &[("201", "Created"), ("409", "Username taken"), ("429", "Too many registrations")],
        },
        Op {
            method: "post",
            path: "/api/v1/auth/login",
            summary: "Log in; returns a JWT",
            auth: false,
            body: Some(json!({ "application/json": { "schema": obj(json!({
                 "username": { "type": "string", "minLength": 1, "pattern": NO_CONTROL }, "password": { "type": "string", "minLength": 1 } }), &["username", "password"]) } })),
            statuses: &[("401", "Bad credentials"), ("429", "Rate limited")],
        },
        Op {
            method: "post",
            path: "/api/v1/auth/logout",
            summary: "Revoke the current token",
            auth: true,
            body: None,
            statuses: &[],
        },
        Op {
            method: "get",
            path: "/api/v1/users/me",
            summary: "The current user",
            auth: true,
            body: None,
            statuses: &[],
        },
        Op {
            method: "post",
            path: "/api/v1/live/create",
            summary: "Create a live room (returns its secret stream key)",
            auth: true,
            body: Some(json!({ "application/json": { "schema": obj(json!({
                 "title": { "type": "string", "minLength": 1, "maxLength": 200, "pattern": NO_CONTROL },
                 "push_protocol": { "type": "string", "enum": ["rtmp", "webrtc"], "default": "rtmp" },
                 "private": { "type": "boolean", "default": false, "description": "watching needs a play token (POST /api/v1/live/{id}/play-token); kept out of public listings" },
                 "description": { "type": ["string", "null"], "maxLength": 2000, "pattern": NO_CONTROL_BUT_LINES, "description": "null or absent: empty" },
                 "record": { "type": ["boolean", "null"], "description": "record its broadcasts; null or absent: recording.default_record" } }), &["title"]) } })),
            statuses: &[("201", "Created"), ("400", "Invalid field (record: true while recording is off)")],
        },
        Op {
            method: "get",
            path: "/api/v1/live/list",
            summary: "Public list of rooms (no keys; private rooms are left out)",
            auth: false,
            body: None,
            statuses: &[],
        },
        Op {
            method: "get",
            path: "/api/v1/live/my",
            summary: "The caller's rooms, with keys",
            auth: true,
            body: None,
            statuses: &[],
        },
        Op {
            method: "get",
            path: "/api/v1/live/{id}",
            summary: "A room (the key only for its owner; a private room is a 404 to anyone else)",
            auth: false,
            body: None,
            statuses: &[("404", "No such room")],
        },
        Op {
            method: "patch",
            path: "/api/v1/live/{id}",
            summary: "Change title/description/private/record (owner); making a room private disconnects its viewers; record takes effect at once on a live room",
            auth: true,
            body: Some(json!({ "application/json": { "schema": patch_schema } })),
            statuses: &[("403", "Not the owner"), ("404", "No such room")],
        },
        Op {
            method: "delete",
            path: "/api/v1/live/{id}",
            summary: "Delete a room (owner)",
            auth: true,
            body: None,
            statuses: &[("403", "Not the owner"), ("404", "No such room")],
        },
        Op {
            method: "post",
            path: "/api/v1/live/{id}/end",
            summary: "End the room's current broadcast (owner); the room stays, idle and reusable",
            auth: true,
            body: None,
            statuses: &[("403", "Not the owner"), ("409", "The room is not live")],
        },
        Op {
            method: "get",
            path: "/api/v1/live/{id}/broadcasts",
            summary: "The room's broadcasts (live periods), newest first: ?page=&page_size=",
            auth: false,
            body: None,
            statuses: &[("400", "Invalid id or paging"), ("404", "No such room")],
        },
        Op {
            method: "post",
            path: "/api/v1/live/{id}/stream-key/reset",
            summary: "Issue a new stream key (owner)",
            auth: true,
            body: None,
            statuses: &[("403", "Not the owner")],
        },
        Op {
            method: "get",
            path: "/api/v1/live/{id}/recordings",
            summary: "The room's recordings, newest first: ?page=&page_size=",
            auth: false,
            body: None,
            statuses: &[("400", "Invalid id or paging"), ("404", "No such room")],
        },
        Op {
            method: "get",
            path: "/api/v1/recordings/{id}",
            summary: "One recording (broadcast, times, duration, size, codecs, status)",
            auth: false,
            body: None,
            statuses: &[("400", "Invalid id"), ("404", "No such recording")],
        },
        Op {
            method: "delete",
            path: "/api/v1/recordings/{id}",
            summary: "Delete a recording and its file (room owner)",
            auth: true,
            body: None,
            statuses: &[
                ("400", "Invalid id"),
                ("403", "Not the owner"),
                ("404", "No such recording"),
                ("409", "Still being written"),
            ],
        },
        Op {
            method: "get",
            path: "/api/v1/recordings/{id}/media.mp4",
            summary: "An MP4 recording's file (video/mp4); HTTP Range requests resume and seek",
            auth: false,
            body: None,
            statuses: &[
                ("206", "Partial content (Range)"),
                ("400", "Invalid id"),
                ("404", "No such recording or file"),
                ("416", "Range not satisfiable"),
            ],
        },
        Op {
            method: "get",
            path: "/api/v1/recordings/{id}/media.flv",
            summary: "An FLV recording's file (video/x-flv); HTTP Range requests resume and seek",
            auth: false,
            body: None,
            statuses: &[
                ("206", "Partial content (Range)"),
                ("400", "Invalid id"),
                ("404", "No such recording or file"),
                ("416", "Range not satisfiable"),
            ],
        },
        Op {
            method: "get",
            path: "/api/v1/recordings/{id}/index.m3u8",
            summary: "HLS VOD playlist over an MP4 recording's fragments (EXT-X-MAP, byte ranges)",
            auth: false,
            body: None,
            statuses: &[
                ("400", "Invalid id or query"),
                ("404", "No such recording, or not MP4"),
                ("409", "Still being written"),
            ],
        },
        Op {
            method: "post",
            path: "/api/v1/live/{id}/play-token",
            summary: "Mint a play token of the room (owner): token, expires_at and the play URLs (rtmp, flv, ws_flv, hls, whep) carrying it; see docs/private-rooms.md",
            auth: true,
            body: Some(json!({ "application/json": { "schema": obj(json!({
                 "ttl_secs": { "type": ["integer", "null"], "minimum": 1, "maximum": 604800, "default": 3600, "description": "the token's lifetime" } }), &[]) } })),
            statuses: &[
                ("201", "Created"),
                ("400", "ttl_secs out of bounds"),
                ("403", "Not the owner"),
                ("404", "No such room"),
            ],
        },
        Op {
            method: "post",
            path: "/api/v1/live/{id}/play-token/revoke",
            summary: "Revoke every play token of the room minted so far (owner); current viewers are disconnected",
            auth: true,
            body: None,
            statuses: &[("403", "Not the owner"), ("404", "No such room")],
        },
        Op {
            method: "get",
            path: "/api/v1/live/{id}/forwards",
            summary: "The room's restreaming destinations with their status (owner); keys masked",
            auth: true,
            body: None,
            statuses: &[("403", "Not the owner")],
        },
        Op {
            method: "post",
            path: "/api/v1/live/{id}/forwards",
            summary: "Add a restreaming destination (owner): rtmp:// or rtmps:// ingest URL + stream key",
            auth: true,
            body: Some(json!({ "application/json": { "schema": obj(json!({
                 "url": { "type": "string", "minLength": 1, "maxLength": 512, "pattern": "^(?i:rtmps?)://[^?#@\\s]+/[^?#\\s]+$", "description": "ingest URL, e.g. rtmp://a.rtmp.youtube.com/live2; no query, no user" },
                 "key": { "type": "string", "minLength": 1, "maxLength": 512, "pattern": "^[^\\s\\u0000-\\u001F\\u007F-\\u009F]+$", "description": "the destination's stream key (a secret: shown back as its last characters only)" } }), &["url", "key"]) } })),
            statuses: &[("201", "Added (started at once when the room is live)"), ("403", "Not the owner")],
        },
        Op {
            method: "patch",
            path: "/api/v1/live/{id}/forwards/{fid}",
            summary: "Turn a restreaming destination on or off (owner)",
            auth: true,
            body: Some(
                json!({ "application/json": { "schema": obj(json!({ "enabled": { "type": "boolean" } }), &["enabled"]) } }),
            ),
            statuses: &[("403", "Not the owner")],
        },
        Op {
            method: "delete",
            path: "/api/v1/live/{id}/forwards/{fid}",
            summary: "Remove a restreaming destination (owner); a running one stops",
            auth: true,
            body: None,
            statuses: &[("403", "Not the owner")],
        },
        Op {
            method: "post",
            path: "/api/v1/live/auth/publish",
            summary: "nginx-rtmp on_publish callback: 2xx allows, 403 denies",
            auth: false,
            body: Some(form.clone()),
            statuses: &[("403", "Unknown key or unknown app")],
        },
        Op {
            method: "post",
            path: "/api/v1/live/auth/publish_done",
            summary: "nginx-rtmp on_publish_done callback: the room ends",
            auth: false,
            body: Some(form),
            statuses: &[("403", "Unknown key")],
        },
        Op {
            method: "get",
            path: "/api/v1/live/ws",
            summary: "WebSocket signaling of a live room (query: room_id, role=publisher|viewer, token=<JWT of the owner> for the publisher, play_token=<play token> for a private room's viewer); JSON messages offer/answer/candidate/leave, pushes stream_state, viewer_count and error; see docs/webrtc.md",
            auth: false,
            body: None,
            statuses: &[
                ("101", "Switching Protocols"),
                ("400", "Not a WebSocket upgrade, or a bad query"),
                ("426", "Upgrade Required"),
            ],
        },
        Op {
            method: "get",
            path: "/api/v1/cluster/nodes",
            summary: "Cluster nodes (Authorization: Bearer <server.admin_token>): each live node's addresses, load and streams, and the totals; one node (this one) outside cluster mode",
            auth: false,
            body: None,
            statuses: &[
                ("401", "No or wrong admin token"),
                ("403", "Admin API disabled"),
                ("503", "Redis unreachable"),
            ],
        },
        Op {
            method: "post",
            path: "/api/v1/cluster/nodes/{id}/drain",
            summary: "Drain a cluster node (admin token): placement sends it no new rooms or players; its live streams and players stay. Node id in the path",
            auth: false,
            body: None,
            statuses: DRAIN_STATUSES,
        },
        Op {
            method: "delete",
            path: "/api/v1/cluster/nodes/{id}/drain",
            summary: "Take a cluster node's drain mark off (admin token): it takes new rooms and players again",
            auth: false,
            body: None,
            statuses: DRAIN_STATUSES,
        },
        Op {
            method: "post",
            path: "/whip/{stream_name}",
            summary: "WHIP (RFC 9725): publish over WebRTC. Authorization: Bearer <stream key>; body: SDP offer; answer: 201 + Location + ETag + SDP answer",
            auth: false,
            body: Some(json!({ "application/sdp": { "schema": { "type": "string" } } })),
            statuses: &[
                ("201", "Created: the SDP answer"),
                ("400", "Bad SDP offer"),
                ("401", "No bearer"),
                ("403", "Wrong key"),
                ("404", "No such stream"),
                ("409", "Already published"),
                ("415", "Not application/sdp"),
            ],
        },
        Op {
            method: "options",
            path: "/whip/{stream_name}",
            summary: "CORS preflight / WHIP capability discovery",
            auth: false,
            body: None,
            statuses: &[("204", "No Content: the allowed methods and headers")],
        },
        Op {
            method: "patch",
            path: "/whip/{stream_name}/{session_id}",
            summary: "Trickle ICE (application/trickle-ice-sdpfrag); If-Match checked",
            auth: false,
            body: Some(json!({ "application/trickle-ice-sdpfrag": { "schema": { "type": "string" } } })),
            statuses: &[("204", "Accepted"), ("412", "ETag mismatch")],
        },
        Op {
            method: "delete",
            path: "/whip/{stream_name}/{session_id}",
            summary: "End a WHIP session (Authorization: Bearer <stream key>)",
            auth: false,
            body: None,
            statuses: &[("404", "No such session")],
        },
        Op {
            method: "post",
            path: "/whep/{stream_name}",
            summary: "WHEP: watch over WebRTC; body: SDP offer (recvonly); answer: 201 + Location + SDP answer. A private room's viewer shows a play token: Authorization: Bearer <token> or ?token=",
            auth: false,
            body: Some(json!({ "application/sdp": { "schema": { "type": "string" } } })),
            statuses: &[
                ("201", "Created: the SDP answer"),
                ("400", "Bad SDP offer"),
                ("401", "Private room: no play token"),
                ("403", "Private room: invalid, expired or revoked play token"),
                ("404", "Stream not live"),
            ],
        },
        Op {
            method: "options",
            path: "/whep/{stream_name}",
            summary: "CORS preflight / WHEP capability discovery",
            auth: false,
            body: None,
            statuses: &[("204", "No Content: the allowed methods and headers")],
        },
        Op {
            method: "patch",
            path: "/whep/{stream_name}/{session_id}",
            summary: "Trickle ICE; If-Match checked",
            auth: false,
            body: Some(json!({ "application/trickle-ice-sdpfrag": { "schema": { "type": "string" } } })),
            statuses: &[("204", "Accepted"), ("412", "ETag mismatch")],
        },
        Op {
            method: "delete",
            path: "/whep/{stream_name}/{session_id}",
            summary: "End a WHEP session",
            auth: false,
            body: None,
            statuses: &[("404", "No such session")],
        },
    ]
}

/// Text fields refuse control characters (Unicode Cc); descriptions may hold line
/// breaks and tabs.
const NO_CONTROL: &str = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$";
const NO_CONTROL_BUT_LINES: &str = "^[^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F\\u007F-\\u009F]*$";

/// Operations that take query parameters.
const QUERY_PATHS: &[&str] = &["/api/v1/live/list", "/api/v1/live/my", "/api/v1/live/ws"];

/// The document, with `server_url` as its server.
pub fn document(server_url: &str) -> Value {
    let mut paths = Map::new();
    let envelope = |what: &str| {
        json!({ "description": what, "content": { "application/json": {
            "schema": { "$ref": "#/components/schemas/Envelope" } } } })
    };
    for op in ops() {
        let mut responses = Map::new();
        let explicit_success = op.statuses.iter().any(|(c, _)| c.starts_with('1') || c.starts_with('2'));
        if op.path == "/metrics" {
            responses.insert(
                "200".into(),
                json!({ "description": "Prometheus / OpenMetrics text", "content": {
                    "application/openmetrics-text": { "schema": { "type": "string" } } } }),
            );
        } else if !explicit_success {
            responses.insert("200".into(), envelope("Success"));
        }
        // What any operation may answer besides its own statuses (all with the
        // envelope): bad input, unknown ids, bodies of the wrong type or size, a
        // backend that is down.
        let has_input = op.body.is_some() || op.path.contains('{') || QUERY_PATHS.contains(&op.path);
        if has_input {
            responses.insert("400".into(), envelope("Invalid input: the message names the field"));
        }
        if op.path.contains('{') {
            responses.insert("404".into(), envelope("No such room, stream or session"));
        }
        if op.body.is_some() {
            responses.insert("413".into(), envelope("Body too large"));
            responses.insert("415".into(), envelope("Wrong Content-Type"));
        }
        if op.auth {
            responses.insert("401".into(), envelope("Missing, invalid, expired or revoked token"));
        }
        if op.path != "/metrics" && op.method != "options" {
            responses.insert("503".into(), envelope("A backend (database, cache or media engine) is unavailable"));
        }
        for (code, what) in op.statuses {
            let r = match *code {
                "101" | "204" => json!({ "description": what }),
                _ => envelope(what),
            };
            responses.insert((*code).into(), r);
        }
        let mut o = json!({ "summary": op.summary, "operationId": format!("{} {}", op.method, op.path), "responses": responses });
        if op.auth {
            o["security"] = json!([{ "bearer": [] }]);
        }
        if let Some(b) = op.body {
            // Minting a play token takes an optional body.
            let required = !op.path.ends_with("/play-token");
            o["requestBody"] = json!({ "required": required, "content": b });
        }
        if op.path.starts_with("/api/v1/cluster/") {
            o["parameters"] = json!([{ "name": "id", "in": "path", "required": true, "schema": { "type": "string", "pattern": "^[A-Za-z0-9._-]{1,64}$" } }]);
        } else if op.path.contains("{fid}") {
            // Ids are 64-bit: a larger number is not one (400).
            o["parameters"] = json!([
                { "name": "id", "in": "path", "required": true, "schema": { "type": "integer", "minimum": 1, "maximum": i64::MAX } },
                { "name": "fid", "in": "path", "required": true, "schema": { "type": "integer", "minimum": 1, "maximum": i64::MAX } }
            ]);
        } else if op.path.contains("{id}") {
            o["parameters"] = json!([{ "name": "id", "in": "path", "required": true, "schema": { "type": "integer", "minimum": 1, "maximum": i64::MAX } }]);
        }
        if op.path == "/api/v1/live/{id}/broadcasts" {
            o["parameters"] = json!([
                { "name": "id", "in": "path", "required": true, "schema": { "type": "integer", "minimum": 1 } },
                { "name": "page", "in": "query", "schema": { "type": "integer", "minimum": 1, "maximum": 1_000_000, "default": 1 } },
                { "name": "page_size", "in": "query", "schema": { "type": "integer", "minimum": 1, "maximum": 100, "default": 20 } }
            ]);
        }
        if op.path.contains("{stream_name}") {
            let mut params =
                vec![json!({ "name": "stream_name", "in": "path", "required": true, "schema": { "type": "string" } })];
            if op.path.contains("{session_id}") {
                params.push(
                    json!({ "name": "session_id", "in": "path", "required": true, "schema": { "type": "string" } }),
                );
            }
            o["parameters"] = json!(params);
        }
        if op.path == "/api/v1/live/list" || op.path == "/api/v1/live/my" {
            let mut params = vec![
                json!({ "name": "page", "in": "query", "schema": { "type": "integer", "minimum": 1, "maximum": 1_000_000, "default": 1 } }),
                json!({ "name": "page_size", "in": "query", "schema": { "type": "integer", "minimum": 1, "maximum": 100, "default": 20 } }),
            ];
            // Only the public list filters by status; /my lists all of the caller's rooms.
            if op.path == "/api/v1/live/list" {
                params.insert(
                    0,
                    json!({ "name": "status", "in": "query", "schema": { "type": "string", "enum": ["idle", "live"] } }),
                );
            }
            o["parameters"] = json!(params);
        }
        let entry = paths.entry(op.path.to_string()).or_insert_with(|| json!({}));
        entry[op.method] = o;
    }
    json!({
        "openapi": "3.1.0",
        "info": { "title": "MicroVibe Live control API", "version": env!("CARGO_PKG_VERSION") },
        "servers": [{ "url": server_url }],
        "paths": paths,
        "components": {
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer", "bearerFormat": "JWT" } },
            "schemas": { "Envelope": { "type": "object", "required": ["code", "message", "data"], "properties": {
                "code": { "type": "integer", "description": "0 on success, else the HTTP status" },
                "message": { "type": "string" },
                "data": {} } } }
        }
    })
}
