//! What a 2026-07-28 backend hands a client to come back with, through the gateway: a task (the
//! `io.modelcontextprotocol/tasks` extension) reaches the client under a gateway id bound to the
//! caller, and the task methods are routed by that id with the backend's own; the `requestState`
//! of an `InputRequiredResult` (SEP-2322) is made the gateway's the same way, and the retry gets
//! the backend's own state. The backend is written here: a 2026-07-28 server answering by
//! method, recording what reached it.
#![allow(clippy::unwrap_used)] // test harness
#![allow(clippy::disallowed_methods)] // fixture threads, not the data path

mod common;

use common::{recorder, Seen};
use serde_json::{json, Value};

const JWT_KEY: &[u8] = b"tasks-test-hmac-key-0123456789abcdef";

fn rpc(addr: std::net::SocketAddr, method: &str, params: &str, sub: &str) -> common::Resp {
    let token = common::hs256_token(JWT_KEY, sub, "tools.call");
    common::rpc_2026(addr, method, params, &format!("Authorization: Bearer {token}\r\n"))
}

#[test]
fn tasks_are_routed_by_a_gateway_id_bound_to_the_caller() {
    let backend = recorder(|seen: &Seen| {
        let msg: Value = serde_json::from_str(&seen.body).unwrap_or(Value::Null);
        let task = |status: &str| {
            json!({"resultType":"complete","taskId":msg["params"]["taskId"],"status":status,
                   "createdAt":"2026-12-07T00:00:00Z","lastUpdatedAt":"2026-12-07T00:00:01Z","ttlMs":60000,
                   "result":{"content":[{"type":"text","text":"done"}],"isError":false}})
        };
        let result = match msg["method"].as_str().unwrap_or("") {
            "server/discover" => json!({"supportedVersions":["2026-07-28"],"resultType":"complete",
                "capabilities":{"tools":{},"extensions":{"io.modelcontextprotocol/tasks":{}}},
                "serverInfo":{"name":"m","version":"1"}}),
            "tools/list" => {
                json!({"resultType":"complete","tools":[{"name":"slow","inputSchema":{"type":"object"}}]})
            }
            "tools/call" => json!({"resultType":"task","taskId":"task-7f3a","status":"working",
                "createdAt":"2026-12-07T00:00:00Z","lastUpdatedAt":"2026-12-07T00:00:00Z","ttlMs":60000,"pollIntervalMs":100}),
            "tasks/get" if msg["params"]["taskId"] == "task-7f3a" => task("completed"),
            "tasks/cancel" => json!({"resultType":"complete"}),
            _ => {
                let e =
                    json!({"jsonrpc":"2.0","id":msg["id"],"error":{"code":-32602,"message":"Unknown task"}});
                return (200, "application/json", e.to_string().into_bytes());
            }
        };
        (
            200,
            "application/json",
            json!({"jsonrpc":"2.0","id":msg["id"],"result":result}).to_string().into_bytes(),
        )
    });
    let gw = common::start(&format!(
        "listen: 127.0.0.1:0\nworkers: 2\nservers:\n  - name: s\n    path: /mcp\n    resource: https://gw.test/mcp\n    {auth}\n    \
         backends: [{{ name: m, url: \"http://{addr}/mcp\" }}]\n",
        auth = common::hs256_auth(JWT_KEY),
        addr = backend.addr
    ));
    let addr = gw.addrs()[0];

    // The endpoint offers the extension its backend offers.
    let d = rpc(addr, "server/discover", "", "alice").json();
    assert!(d["result"]["capabilities"]["extensions"]["io.modelcontextprotocol/tasks"].is_object(), "{d}");

    // The backend's task id reaches the client as the gateway's: the backend named, bound.
    let r = rpc(addr, "tools/call", r#""name":"slow","arguments":{}"#, "alice");
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let created = r.json();
    assert_eq!(created["result"]["resultType"], "task", "{created}");
    assert_eq!(created["result"]["status"], "working");
    let id = created["result"]["taskId"].as_str().unwrap().to_string();
    assert!(id.starts_with("m__") && id.ends_with(".task-7f3a") && id != "m__task-7f3a", "{id}");

    // tasks/get with it reaches the backend with the backend's own id, in the body and Mcp-Name.
    backend.take();
    let r = rpc(addr, "tasks/get", &format!(r#""taskId":"{id}""#), "alice");
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let got = r.json();
    assert_eq!(got["result"]["status"], "completed", "{got}");
    assert_eq!(got["result"]["taskId"], id.as_str(), "the answer names the task as the client knows it");
    assert_eq!(got["result"]["result"]["content"][0]["text"], "done");
    let seen = backend.take().into_iter().find(|s| s.body.contains("tasks/get")).unwrap();
    let sent: Value = serde_json::from_str(&seen.body).unwrap();
    assert_eq!(sent["params"]["taskId"], "task-7f3a");
    assert_eq!(seen.header("mcp-name"), Some("task-7f3a"));
    assert_eq!(seen.header("mcp-method"), Some("tasks/get"));

    let r = rpc(addr, "tasks/cancel", &format!(r#""taskId":"{id}""#), "alice");
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["result"]["resultType"], "complete");

    // Another caller with the same id, an id with its tag altered and one the gateway never
    // handed out are all unknown tasks, and none reaches the backend.
    backend.take();
    let forged = format!("m__{}.task-7f3a", "0".repeat(16));
    for (who, task) in [("mallory", id.as_str()), ("alice", forged.as_str()), ("alice", "task-7f3a")] {
        let r = rpc(addr, "tasks/get", &format!(r#""taskId":"{task}""#), who);
        let v = r.json();
        assert_eq!(v["error"]["code"], -32602, "{who} {task}: {v}");
        assert!(v["error"]["message"].as_str().unwrap().starts_with("Unknown task"), "{v}");
    }
    assert!(backend.take().iter().all(|s| !s.body.contains("tasks/get")), "refused at the gateway");

    // Mcp-Name must name the task the body names (the revision's header rule).
    let token = common::hs256_token(JWT_KEY, "alice", "tools.call");
    let body = format!(
        r#"{{"jsonrpc":"2.0","id":3,"method":"tasks/get","params":{{"taskId":"{id}","_meta":{{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{{}}}}}}}}"#
    );
    let r = common::send(
        addr,
        &format!(
            "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/json, text/event-stream\r\n\
Content-Type: application/json\r\nMCP-Protocol-Version: 2026-07-28\r\nMcp-Method: tasks/get\r\nMcp-Name: other\r\n\
Authorization: Bearer {token}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    );
    assert_eq!(r.status, 400, "{}", String::from_utf8_lossy(&r.body));
    gw.shutdown();
}

/// A backend's state between rounds (JSON, as the official SDKs' fixtures keep it).
const STATE: &str = r#"{"round":1}"#;

#[test]
fn request_state_is_the_gateways_and_bound_to_the_caller() {
    let backend = recorder(|seen: &Seen| {
        let msg: Value = serde_json::from_str(&seen.body).unwrap_or(Value::Null);
        let result = match (msg["method"].as_str().unwrap_or(""), msg["params"]["requestState"].as_str()) {
            ("server/discover", _) => json!({"supportedVersions":["2026-07-28"],"resultType":"complete",
                "capabilities":{"tools":{}},"serverInfo":{"name":"m","version":"1"}}),
            ("tools/list", _) => {
                json!({"resultType":"complete","tools":[{"name":"ask","inputSchema":{"type":"object"}}]})
            }
            ("tools/call", None) => {
                json!({"resultType":"input_required","requestState":STATE,"inputRequests":{"who":{
                "method":"elicitation/create","params":{"mode":"form","message":"Your name?",
                "requestedSchema":{"type":"object","properties":{"name":{"type":"string"}}}}}}})
            }
            ("tools/call", Some(STATE)) if msg["params"]["inputResponses"]["who"].is_object() => {
                json!({"resultType":"complete","content":[{"type":"text","text":"thanks"}],"isError":false})
            }
            _ => {
                let e = json!({"jsonrpc":"2.0","id":msg["id"],"error":{"code":-32602,"message":"bad state"}});
                return (200, "application/json", e.to_string().into_bytes());
            }
        };
        (
            200,
            "application/json",
            json!({"jsonrpc":"2.0","id":msg["id"],"result":result}).to_string().into_bytes(),
        )
    });
    let gw = common::start(&format!(
        "listen: 127.0.0.1:0\nworkers: 1\nservers:\n  - name: s\n    path: /mcp\n    resource: https://gw.test/mcp\n    \
         {auth}\n    backends: [{{ name: m, url: \"http://{addr}/mcp\" }}]\n",
        auth = common::hs256_auth(JWT_KEY),
        addr = backend.addr
    ));
    let addr = gw.addrs()[0];
    let r = rpc(addr, "tools/call", r#""name":"ask","arguments":{}"#, "alice");
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let asked = r.json();
    assert_eq!(asked["result"]["resultType"], "input_required", "{asked}");
    assert!(
        asked["result"]["inputRequests"]["who"].is_object(),
        "the requests pass as the backend wrote them"
    );
    let state = asked["result"]["requestState"].as_str().unwrap().to_string();
    assert!(state.ends_with(&format!(".{STATE}")) && state != STATE, "{state}");

    let retry = |state: &str, who: &str| {
        let state = serde_json::to_string(state).unwrap(); // the state needs escapes in JSON
        let params = format!(
            r#""name":"ask","arguments":{{}},"requestState":{state},"inputResponses":{{"who":{{"action":"accept","content":{{"name":"Ada"}}}}}}"#
        );
        rpc(addr, "tools/call", &params, who)
    };
    backend.take();
    let r = retry(&state, "alice");
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["result"]["content"][0]["text"], "thanks", "{}", r.json());
    let seen = backend.take().into_iter().find(|s| s.body.contains("inputResponses")).unwrap();
    let sent: Value = serde_json::from_str(&seen.body).unwrap();
    assert_eq!(sent["params"]["requestState"], STATE, "the backend gets its own state");

    // The backend's raw state, another caller, a tag moved onto another state: refused here.
    let moved = format!("{}.{{\"round\":2}}", state.split_once('.').unwrap().0);
    for (s, who) in [(STATE, "alice"), (state.as_str(), "mallory"), (moved.as_str(), "alice")] {
        let v = retry(s, who).json();
        assert_eq!(v["error"]["code"], -32602, "{who} {s}: {v}");
        assert!(v["error"]["message"].as_str().unwrap().starts_with("Invalid requestState"), "{v}");
    }
    assert!(backend.take().iter().all(|s| !s.body.contains("inputResponses")), "no backend saw them");
    gw.shutdown();
}

/// A 2025-11-25 backend (no session id) with tasks: a task-augmented `tools/call` creates task
/// `<tag>-1` (answered on an SSE stream that first reports the task's status); `tasks/get`,
/// `tasks/result`, `tasks/cancel` and `tasks/list` know it.
fn legacy_tasks_backend(tag: &'static str) -> common::Recorder {
    recorder(move |seen: &Seen| {
        let msg: Value = serde_json::from_str(&seen.body).unwrap_or(Value::Null);
        let own = format!("{tag}-1");
        let task = |status: &str| {
            json!({"taskId":own,"status":status,"createdAt":"2026-12-07T00:00:00Z",
                   "lastUpdatedAt":"2026-12-07T00:00:01Z","ttl":60000,"pollInterval":100})
        };
        let result = match msg["method"].as_str().unwrap_or("") {
            "initialize" => json!({"protocolVersion":"2025-11-25","serverInfo":{"name":tag,"version":"1"},
                "capabilities":{"tools":{},"tasks":{"list":{},"cancel":{},"requests":{"tools":{"call":{}}}}}}),
            "tools/list" => json!({"tools":[{"name":"slow","inputSchema":{"type":"object"}}]}),
            "tools/call" if msg["params"]["task"].is_object() => {
                let status =
                    json!({"jsonrpc":"2.0","method":"notifications/tasks/status","params":task("working")});
                let done = json!({"jsonrpc":"2.0","id":msg["id"],"result":{"task":task("working")}});
                let body = format!("event: message\ndata: {status}\n\nevent: message\ndata: {done}\n\n");
                return (200, "text/event-stream", body.into_bytes());
            }
            "tasks/get" if msg["params"]["taskId"] == own.as_str() => task("completed"),
            "tasks/cancel" if msg["params"]["taskId"] == own.as_str() => task("cancelled"),
            "tasks/result" if msg["params"]["taskId"] == own.as_str() => json!({
                "content":[{"type":"text","text":format!("{tag} done")}],"isError":false,
                "_meta":{"io.modelcontextprotocol/related-task":{"taskId":own}}}),
            "tasks/list" => json!({"tasks":[task("completed")]}),
            m if msg.get("id").is_none() || m.is_empty() => return (202, "application/json", Vec::new()),
            _ => {
                let e = json!({"jsonrpc":"2.0","id":msg["id"],"error":{"code":-32602,"message":"Failed to retrieve task: Task not found"}});
                return (200, "application/json", e.to_string().into_bytes());
            }
        };
        (
            200,
            "application/json",
            json!({"jsonrpc":"2.0","id":msg["id"],"result":result}).to_string().into_bytes(),
        )
    })
}

/// The 2025-11-25 tasks of a session across two backends: each task id is the gateway's (its
/// backend named, bound to the caller) in the created task, its status notification, `tasks/get`,
/// `tasks/result`'s related-task and the merged `tasks/list`; the methods reach the backend that
/// made the task with its own id; another caller's session knows none of them.
#[test]
fn tasks_of_a_2025_session_are_routed_across_two_backends() {
    let (b1, b2) = (legacy_tasks_backend("one"), legacy_tasks_backend("two"));
    let gw = common::start(&format!(
        "listen: 127.0.0.1:0\nworkers: 1\nservers:\n  - name: s\n    path: /mcp\n    resource: https://gw.test/mcp\n    {auth}\n    \
         backends: [{{ name: b1, url: \"http://{a1}/mcp\" }}, {{ name: b2, url: \"http://{a2}/mcp\" }}]\n",
        auth = common::hs256_auth(JWT_KEY),
        a1 = b1.addr,
        a2 = b2.addr,
    ));
    let addr = gw.addrs()[0];
    let session = |who: &str| {
        let auth = format!("Authorization: Bearer {}\r\n", common::hs256_token(JWT_KEY, who, "tools.call"));
        let init = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;
        let r = common::post_mcp(addr, init, &auth);
        let caps = r.json()["result"]["capabilities"].clone();
        let sid = r.header("mcp-session-id").unwrap().to_string();
        (format!("{auth}Mcp-Session-Id: {sid}\r\nMCP-Protocol-Version: 2025-11-25\r\n"), caps)
    };
    let (alice, caps) = session("alice");
    assert!(caps["tasks"]["requests"]["tools"]["call"].is_object(), "tasks offered: {caps}");
    let call = |extra: &str, method: &str, params: &str| {
        let body = format!(r#"{{"jsonrpc":"2.0","id":9,"method":"{method}","params":{{{params}}}}}"#);
        common::post_mcp(addr, &body, extra)
    };
    let data = |r: &common::Resp| -> Vec<Value> {
        String::from_utf8_lossy(&r.body)
            .lines()
            .filter_map(|l| l.strip_prefix("data: "))
            .filter_map(|d| serde_json::from_str(d).ok())
            .collect()
    };

    let mut ids = Vec::new();
    for b in ["b1", "b2"] {
        let r = call(
            &alice,
            "tools/call",
            &format!(r#""name":"{b}__slow","arguments":{{}},"task":{{"ttl":60000}}"#),
        );
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        let msgs = data(&r);
        let status = msgs.iter().find(|m| m["method"] == "notifications/tasks/status").unwrap();
        let created = msgs.iter().find(|m| m.get("result").is_some()).unwrap();
        let id = created["result"]["task"]["taskId"].as_str().unwrap().to_string();
        assert!(id.starts_with(&format!("{b}__")) && id.contains(".") && id.ends_with("-1"), "{id}");
        assert_eq!(status["params"]["taskId"], id.as_str(), "the status names the gateway's id");
        ids.push(id);
    }

    for (id, (b, tag)) in ids.iter().zip([(&b1, "one"), (&b2, "two")]) {
        b.take();
        let got = call(&alice, "tasks/get", &format!(r#""taskId":"{id}""#)).json();
        assert_eq!(got["result"]["status"], "completed", "{got}");
        assert_eq!(got["result"]["taskId"], id.as_str());
        let sent: Value = serde_json::from_str(&b.last().body).unwrap();
        assert_eq!(sent["params"]["taskId"], format!("{tag}-1"), "the backend gets its own id");
        let payload = call(&alice, "tasks/result", &format!(r#""taskId":"{id}""#)).json();
        assert_eq!(payload["result"]["content"][0]["text"], format!("{tag} done"), "{payload}");
        assert_eq!(payload["result"]["_meta"]["io.modelcontextprotocol/related-task"]["taskId"], id.as_str());
        let cancelled = call(&alice, "tasks/cancel", &format!(r#""taskId":"{id}""#)).json();
        assert_eq!(cancelled["result"]["status"], "cancelled", "{cancelled}");
    }

    let listed = call(&alice, "tasks/list", "").json();
    let mut listed: Vec<String> = listed["result"]["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["taskId"].as_str().unwrap().to_string())
        .collect();
    listed.sort();
    assert_eq!(listed, ids, "the merged list names the tasks as the client knows them");

    // Another caller's session: alice's ids are unknown tasks, and reach no backend.
    let (mallory, _) = session("mallory");
    b1.take();
    let v = call(&mallory, "tasks/get", &format!(r#""taskId":"{}""#, ids[0])).json();
    assert_eq!(v["error"]["code"], -32602, "{v}");
    assert!(b1.take().iter().all(|s| !s.body.contains("tasks/get")));
    gw.shutdown();
}
