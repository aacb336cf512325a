use super::*;
use crate::config::raw;
use serde_json::{json, Value};

/// Imports with output schemas on (most tests look at them too).
fn run(spec: &str) -> Import {
    import(spec, &ImportOptions { output_schemas: true, ..ImportOptions::default() }).unwrap()
}

#[test]
fn output_schemas_only_when_asked() {
    let spec = doc("paths:
  /x:
    get:
      operationId: x
      responses:
        200: {description: ok, content: {application/json: {schema: {type: object, properties: {n: {type: integer}}}}}}
");
    let plain = import(&spec, &ImportOptions::default()).unwrap();
    assert!(plain.json()["tools"][0].get("outputSchema").is_none(), "{}", plain.json());
    assert_eq!(run(&spec).json()["tools"][0]["outputSchema"]["properties"]["n"]["type"], "integer");
}

fn err(spec: &str) -> ImportError {
    import(spec, &ImportOptions { output_schemas: true, ..ImportOptions::default() }).unwrap_err()
}

/// A 3.1 document with one server; `rest` is appended at the top level.
fn doc(rest: &str) -> String {
    format!("openapi: 3.1.0\ninfo: {{title: Test API, version: '1'}}\nservers: [{{url: 'https://api.example.com/v1/'}}]\n{rest}")
}

fn tools(i: &Import) -> Vec<Value> {
    i.json()["tools"].as_array().unwrap().clone()
}

fn tool(i: &Import, name: &str) -> Value {
    tools(i)
        .into_iter()
        .find(|t| t["name"] == name)
        .unwrap_or_else(|| panic!("no tool {name}: {:#}", i.json()))
}

fn arg(t: &Value, name: &str) -> Value {
    t["args"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("no arg {name}: {t:#}"))
}

fn warned(i: &Import, needle: &str) -> bool {
    i.warnings.iter().any(|w| w.contains(needle))
}

/// The entry is a valid raw `servers[]` object, its deferred blocks included.
fn assert_raw_server(entry: &Value) {
    let s: raw::Server = serde_json::from_value(entry.clone()).unwrap();
    if let Some(server) = &s.server {
        server.parse("server").unwrap();
    }
    for (i, t) in s.tools.iter().flatten().enumerate() {
        t.parse(&format!("tools[{i}]")).unwrap();
    }
}

#[test]
fn self_referential_schema_is_cut_not_looped() {
    let i = run(&doc("paths:
  /nodes:
    post:
      operationId: addNode
      requestBody:
        content:
          application/json:
            schema: {$ref: '#/components/schemas/Node'}
      responses:
        '200':
          description: ok
          content:
            application/json:
              schema: {$ref: '#/components/schemas/Node'}
components:
  schemas:
    Node:
      type: object
      properties:
        name: {type: string}
        parent: {$ref: '#/components/schemas/Node'}
        children: {type: array, items: {$ref: '#/components/schemas/Node'}}
"));
    let t = tool(&i, "addNode");
    // The body is the first level of Node; every nested Node is cut to its type.
    assert_eq!(arg(&t, "name")["type"], "string");
    assert_eq!(arg(&t, "parent"), json!({"name": "parent", "type": "object", "position": "body"}));
    assert_eq!(arg(&t, "children")["items"], json!({"type": "object"}));
    assert_eq!(t["outputSchema"]["properties"]["parent"], json!({"type": "object"}));
    assert_eq!(
        t["outputSchema"]["properties"]["children"],
        json!({"type": "array", "items": {"type": "object"}})
    );
    assert!(warned(&i, "components.schemas.Node: recursive schema"), "{:?}", i.warnings);
    assert_raw_server(&i.json());
}

#[test]
fn mutually_recursive_and_pure_ref_cycles_terminate() {
    // A schema cycle through refs only is cut like any other cycle ...
    let i = run(&doc("paths:
  /x:
    get:
      operationId: x
      parameters:
        - {name: q, in: query, schema: {$ref: '#/components/schemas/A'}}
components:
  schemas:
    A: {$ref: '#/components/schemas/B'}
    B: {$ref: '#/components/schemas/A'}
"));
    assert_eq!(arg(&tool(&i, "x"), "q")["name"], "q");
    // ... and a parameter that refers to itself is an error naming the reference.
    let e = err(&doc("paths:
  /x:
    get:
      parameters: [{$ref: '#/components/parameters/P'}]
components:
  parameters:
    P: {$ref: '#/components/parameters/P'}
"));
    assert!(matches!(e, ImportError::BrokenRef { .. }), "{e}");
    assert!(e.to_string().contains("#/components/parameters/P"), "{e}");
}

#[test]
fn exponential_ref_fan_out_is_bounded() {
    // Ten levels of ten properties each referring to the next level: 10^10 nodes if inlined.
    let mut schemas = String::new();
    for level in 0..10 {
        schemas.push_str(&format!("    L{level}:\n      type: object\n      properties:\n"));
        for p in 0..10 {
            let next = if level == 9 {
                "{type: string}".to_string()
            } else {
                format!("{{$ref: '#/components/schemas/L{}'}}", level + 1)
            };
            schemas.push_str(&format!("        p{p}: {next}\n"));
        }
    }
    let spec = doc(&format!(
        "paths:
  /x:
    post:
      operationId: big
      requestBody:
        content:
          application/json:
            schema: {{$ref: '#/components/schemas/L0'}}
components:
  schemas:
{schemas}"
    ));
    let started = std::time::Instant::now();
    let i = run(&spec);
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    assert!(warned(&i, "larger than 10000 nodes"), "{:?}", i.warnings);
    assert_eq!(tool(&i, "big")["args"].as_array().unwrap().len(), 10);
}

#[test]
fn openapi_31_type_lists_pick_the_non_null_type() {
    let i = run(&doc("paths:
  /x:
    get:
      operationId: x
      parameters:
        - {name: a, in: query, schema: {type: [string, 'null']}}
        - {name: b, in: query, schema: {type: ['null', integer]}}
        - {name: c, in: query, schema: {type: ['null']}}
        - {name: d, in: query, schema: {type: [string, 'null'], enum: [x, y, null]}}
        - {name: e, in: query, schema: {anyOf: [{type: integer}, {type: integer, minimum: 3}]}}
"));
    let t = tool(&i, "x");
    assert_eq!(arg(&t, "a")["type"], "string");
    assert_eq!(arg(&t, "b")["type"], "integer");
    assert!(arg(&t, "c").get("type").is_none());
    assert_eq!(arg(&t, "d")["enum"], json!(["x", "y"]));
    assert_eq!(arg(&t, "e")["type"], "integer");
}

#[test]
fn openapi_30_keywords_are_rewritten_as_json_schema() {
    let i = run(&doc("paths:
  /x:
    get:
      operationId: x
      parameters:
        - name: filter
          in: query
          schema:
            type: object
            x-internal: true
            properties:
              since: {type: string, nullable: true, example: '2020-01-01'}
              limit: {type: integer, minimum: 0, exclusiveMinimum: true, maximum: 9, exclusiveMaximum: false}
"));
    let props = &arg(&tool(&i, "x"), "filter")["properties"];
    assert_eq!(props["since"], json!({"type": ["string", "null"]}));
    assert_eq!(props["limit"], json!({"type": "integer", "maximum": 9, "exclusiveMinimum": 0}));
}

#[test]
fn tool_names_are_sanitised_truncated_and_deduplicated() {
    let long = "a".repeat(140);
    let i = run(&doc(&format!(
        "paths:
  /pets/{{petId}}:
    get: {{parameters: [{{name: petId, in: path, required: true, schema: {{type: string}}}}]}}
    put: {{operationId: 'update pet!', parameters: [{{name: petId, in: path, required: true}}]}}
    options: {{operationId: 'repos/get-content.v2', parameters: [{{name: petId, in: path, required: true}}]}}
    post: {{operationId: {long}, parameters: [{{name: petId, in: path, required: true}}]}}
    delete: {{operationId: get_pets_petId, parameters: [{{name: petId, in: path, required: true}}]}}
    patch: {{operationId: get_pets_petId, parameters: [{{name: petId, in: path, required: true}}]}}
  /:
    get: {{}}
"
    )));
    let all = tools(&i);
    let names: Vec<&str> = all.iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "get_pets_petId",
            "update_pet_",
            "repos_get-content.v2",
            &"a".repeat(128),
            "get_pets_petId_2",
            "get_pets_petId_3",
            "get_root"
        ]
    );
    assert!(
        warned(&i, "tool name \"get_pets_petId\" is already used by paths./pets/{petId}.get"),
        "{:?}",
        i.warnings
    );
    assert!(warned(&i, "operationId \"update pet!\""));
    assert_raw_server(&i.json());
}

#[test]
fn server_names_come_from_the_title_or_the_option() {
    let spec = "openapi: 3.0.3\ninfo: {title: '  Swagger Petstore (v2) ', version: '1'}\npaths: {}";
    assert_eq!(run(spec).json()["name"], "swagger-petstore-v2");
    assert_eq!(run(spec).json()["server"]["name"], "swagger-petstore-v2");
    let named =
        import(spec, &ImportOptions { name: Some("Pets_API".into()), base_url: None, output_schemas: false })
            .unwrap();
    assert_eq!(named.json()["name"], "Pets_API");
    let fixed =
        import(spec, &ImportOptions { name: Some("pets api".into()), base_url: None, output_schemas: false })
            .unwrap();
    assert_eq!(fixed.json()["name"], "pets-api");
    assert!(warned(&fixed, "--name \"pets api\""));
    let untitled = run("openapi: 3.0.3\ninfo: {title: '日本', version: '1'}\npaths: {}");
    assert_eq!(untitled.json()["name"], "openapi");
}

const SCHEMES: &str = "components:
  securitySchemes:
    basic: {type: http, scheme: basic}
    bearer: {type: http, scheme: Bearer, bearerFormat: JWT}
    header: {type: apiKey, in: header, name: X-Key}
    query: {type: apiKey, in: query, name: key}
    cookie: {type: apiKey, in: cookie, name: sid}
    digest: {type: http, scheme: digest}
    oauth: {type: oauth2, flows: {}}
    oidc: {type: openIdConnect, openIdConnectUrl: 'https://id.example.com'}
    tls: {type: mutualTLS}
";

#[test]
fn security_schemes_keep_the_supported_kinds() {
    let i = run(&doc(SCHEMES));
    assert_eq!(
        i.json()["server"]["securitySchemes"],
        json!([
            {"id": "basic", "type": "http", "scheme": "basic"},
            {"id": "bearer", "type": "http", "scheme": "bearer"},
            {"id": "header", "type": "apiKey", "in": "header", "name": "X-Key"},
            {"id": "query", "type": "apiKey", "in": "query", "name": "key"},
        ])
    );
    for skipped in ["cookie", "digest", "oauth", "oidc", "tls"] {
        assert!(warned(&i, &format!("components.securitySchemes.{skipped}:")), "{skipped}: {:?}", i.warnings);
    }
    assert!(warned(&i, "securitySchemes \"basic\": no credential imported; add defaultCredential: ${BASIC}"));
    assert!(i.json()["server"]["securitySchemes"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s.get("defaultCredential").is_none()));
    assert_raw_server(&i.json());
}

#[test]
fn security_selection_rules() {
    let i = run(&doc(&format!(
        "security: [{{oauth: []}}, {{header: []}}]
paths:
  /inherit:
    get: {{operationId: inherit}}
  /override:
    get: {{operationId: override, security: [{{query: []}}]}}
  /none:
    get: {{operationId: none, security: []}}
  /optional:
    get: {{operationId: optional, security: [{{oauth: []}}, {{}}, {{basic: []}}]}}
  /and:
    get: {{operationId: and, security: [{{bearer: [], header: []}}, {{basic: []}}]}}
  /and-unsupported:
    get: {{operationId: and_unsupported, security: [{{basic: [], oauth: []}}, {{query: []}}]}}
  /unsupported:
    get: {{operationId: unsupported, security: [{{oauth: []}}, {{cookie: []}}]}}
  /undeclared:
    get: {{operationId: undeclared, security: [{{nope: []}}, {{bearer: []}}]}}
{SCHEMES}"
    )));
    let sec = |name: &str| tool(&i, name)["requestTemplate"].get("security").cloned();
    assert_eq!(sec("inherit"), Some(json!({"id": "header"})));
    assert_eq!(sec("override"), Some(json!({"id": "query"})));
    assert_eq!(sec("none"), None);
    assert_eq!(sec("optional"), None, "an empty requirement means anonymous access is allowed");
    assert_eq!(sec("and"), Some(json!({"id": "bearer"})));
    assert!(warned(&i, "paths./and.get.security[0]: requires \"bearer\" and \"header\" together"));
    assert_eq!(sec("and_unsupported"), Some(json!({"id": "query"})));
    assert_eq!(sec("unsupported"), None);
    assert!(
        warned(&i, "tool \"unsupported\" accepts only unsupported schemes (oauth, cookie)"),
        "{:?}",
        i.warnings
    );
    assert_eq!(sec("undeclared"), Some(json!({"id": "bearer"})));
    assert!(warned(&i, "security scheme \"nope\" is not declared"));
    assert_raw_server(&i.json());
}

#[test]
fn server_urls_variables_levels_and_override() {
    let spec = "openapi: 3.0.3
info: {title: t, version: '1'}
servers:
  - url: 'https://{region}.api.example.com:{port}/{base}/'
    variables:
      region: {default: eu, enum: [eu, us]}
      port: {default: 8443}
      base: {default: v2}
paths:
  /doc:
    get: {operationId: doc}
  /path:
    servers: [{url: 'http://path.example.com'}]
    get: {operationId: path}
    post:
      operationId: op
      servers: [{url: 'http://op.example.com/x'}]
";
    let i = run(spec);
    let url = |name: &str| tool(&i, name)["requestTemplate"]["url"].as_str().unwrap().to_string();
    assert_eq!(url("doc"), "https://eu.api.example.com:8443/v2/doc");
    assert_eq!(url("path"), "http://path.example.com/path");
    assert_eq!(url("op"), "http://op.example.com/x/path");

    let o = ImportOptions {
        name: None,
        base_url: Some("https://staging.example.com/api/".into()),
        output_schemas: false,
    };
    let i = import(spec, &o).unwrap();
    assert_eq!(tool(&i, "op")["requestTemplate"]["url"], "https://staging.example.com/api/path");

    let bad = ImportOptions { name: None, base_url: Some("/relative".into()), output_schemas: false };
    assert!(matches!(import(spec, &bad), Err(ImportError::BaseUrl { .. })));
}

#[test]
fn server_url_errors_say_to_pass_base_url() {
    let relative =
        "openapi: 3.0.3\ninfo: {title: t, version: '1'}\nservers: [{url: /api/v3}]\npaths: {/x: {get: {}}}";
    let e = err(relative);
    assert!(matches!(&e, ImportError::BaseUrl { path, .. } if path == "servers[0].url"), "{e}");
    assert!(e.to_string().contains("--base-url"), "{e}");
    let fixed = import(
        relative,
        &ImportOptions {
            name: None,
            base_url: Some("https://h.example/api/v3".into()),
            output_schemas: false,
        },
    );
    assert_eq!(tools(&fixed.unwrap())[0]["requestTemplate"]["url"], "https://h.example/api/v3/x");

    let none = "openapi: 3.0.3\ninfo: {title: t, version: '1'}\npaths: {/x: {get: {}}}";
    assert!(err(none).to_string().contains("--base-url"));
    // Without operations no URL is needed.
    assert!(import("openapi: 3.0.3\ninfo: {title: t, version: '1'}\npaths: {}", &ImportOptions::default())
        .is_ok());

    let no_default = "openapi: 3.0.3\ninfo: {title: t, version: '1'}\nservers: [{url: 'https://{h}/', variables: {h: {enum: [a]}}}]\npaths: {/x: {get: {}}}";
    let e = err(no_default);
    assert!(e.to_string().starts_with("servers[0].variables.h: server variable \"h\" has no default"), "{e}");
}

#[test]
fn swagger_2_and_other_versions_are_rejected() {
    let e = err("swagger: '2.0'\ninfo: {title: t, version: '1'}\npaths: {}");
    assert!(matches!(e, ImportError::Version(_)));
    assert!(e.to_string().contains("OpenAPI 2.0") && e.to_string().contains("convert"), "{e}");
    assert!(err("{\"info\": {}}").to_string().contains("no `openapi` version field"));
    assert!(err("openapi: 4.0.0\npaths: {}").to_string().contains("\"4.0.0\" is not supported"));
    assert!(matches!(err("- a\n- b"), ImportError::Version(_)));
    assert!(matches!(err("{ not: [valid"), ImportError::Syntax(_)));
    assert!(matches!(err(""), ImportError::Version(_)));
    // An unquoted `openapi: 3.0` reads as a number and is still accepted.
    assert!(import("openapi: 3.0\ninfo: {title: t}\npaths: {}", &ImportOptions::default()).is_ok());
}

#[test]
fn external_refs_are_errors_naming_the_ref_and_the_place() {
    let e = err(&doc("paths:
  /pets/{id}:
    get:
      parameters:
        - {name: id, in: path, required: true}
        - {name: a, in: query}
        - $ref: 'common.yaml#/components/parameters/Limit'
"));
    assert_eq!(
        e,
        ImportError::ExternalRef {
            path: "paths./pets/{id}.get.parameters[2]".into(),
            reference: "common.yaml#/components/parameters/Limit".into()
        }
    );
    assert!(e.to_string().contains("bundle"), "{e}");
    let e = err(&doc(
        "paths:\n  /x:\n    get:\n      responses: {'200': {description: ok, content: {application/json: {schema: {$ref: 'https://x.example/s.json'}}}}}\n",
    ));
    assert!(
        matches!(e, ImportError::ExternalRef { ref path, .. } if path == "paths./x.get.responses.200.content.application/json.schema"),
        "{e}"
    );
}

#[test]
fn broken_local_refs_are_errors() {
    let e =
        err(&doc("paths:\n  /x:\n    get:\n      parameters: [{$ref: '#/components/parameters/Nope'}]\n"));
    assert!(
        matches!(&e, ImportError::BrokenRef { reason, .. } if reason.contains("no \"components\"")),
        "{e}"
    );
    let e = err(&doc("paths:\n  /x:\n    get:\n      parameters: [{$ref: '#components'}]\n"));
    assert!(e.to_string().contains("not a JSON Pointer"), "{e}");
    let e = err(&doc("paths:\n  /x:\n    get:\n      parameters: [{$ref: '#/a%zz'}]\n"));
    assert!(e.to_string().contains("percent-encoding"), "{e}");
}

#[test]
fn json_pointer_escapes_resolve() {
    let i = run(&doc("paths:
  /x:
    get:
      operationId: x
      parameters:
        - $ref: '#/components/parameters/a~1b~0c'
        - $ref: '#/components/parameters/with%20space'
        - $ref: '#/paths/~1x/get/x-shared/0'
      x-shared:
        - {name: shared, in: header}
components:
  parameters:
    a/b~c: {name: slashy, in: query}
    with space: {name: spaced, in: query}
"));
    let t = tool(&i, "x");
    assert_eq!(arg(&t, "slashy")["position"], "query");
    assert_eq!(arg(&t, "spaced")["position"], "query");
    assert_eq!(arg(&t, "shared")["position"], "header");
}

#[test]
fn parameters_merge_path_and_operation_levels() {
    let i = run(&doc("paths:
  /pets/{petId}:
    parameters:
      - {name: petId, in: path, required: true, description: path level, schema: {type: string}}
      - {name: verbose, in: query, schema: {type: boolean}}
    get:
      operationId: get
      parameters:
        - {name: petId, in: path, required: true, description: operation level, schema: {type: integer}}
        - {name: Accept, in: header, schema: {type: string}}
        - {name: Authorization, in: header, schema: {type: string}}
        - {name: X-Trace, in: header, schema: {type: string}}
        - {name: session, in: cookie, schema: {type: string}}
        - {name: verbose, in: header, schema: {type: string}}
"));
    let t = tool(&i, "get");
    let names: Vec<&str> =
        t["args"].as_array().unwrap().iter().map(|a| a["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["petId", "verbose", "X-Trace", "session"]);
    assert_eq!(arg(&t, "petId")["description"], "operation level");
    assert_eq!(arg(&t, "petId")["type"], "integer");
    assert_eq!(arg(&t, "verbose")["position"], "query");
    assert_eq!(arg(&t, "session")["position"], "cookie");
    assert!(
        warned(&i, "parameter \"verbose\" in header has the name of the query parameter"),
        "{:?}",
        i.warnings
    );
    assert_eq!(t["requestTemplate"]["url"], "https://api.example.com/v1/pets/{petId}");
    assert_raw_server(&i.json());
}

#[test]
fn path_placeholders_and_path_parameters_are_reconciled() {
    let i = run(&doc("paths:
  /a/{id}/b/{other}:
    get:
      operationId: x
      parameters:
        - {name: id, in: path, required: true, schema: {type: integer}}
        - {name: gone, in: path, required: true}
        - {name: list, in: query, style: pipeDelimited, schema: {type: array, items: {type: string}}}
        - {name: flat, in: query, explode: false, schema: {type: array, items: {type: string}}}
        - {name: plain, in: query, explode: false, schema: {type: string}}
"));
    let t = tool(&i, "x");
    assert_eq!(
        arg(&t, "other"),
        json!({"name": "other", "type": "string", "required": true, "position": "path"})
    );
    assert!(t["args"].as_array().unwrap().iter().all(|a| a["name"] != "gone"));
    assert!(warned(&i, "has {other} but no path parameter"));
    assert!(warned(&i, "path parameter \"gone\" has no {gone}"));
    assert!(warned(&i, "parameter \"list\" asks for style \"pipeDelimited\""));
    assert!(warned(&i, "parameter \"flat\" asks for style \"form\", no explode"));
    assert!(!warned(&i, "\"plain\""));
}

#[test]
fn request_bodies() {
    let i = run(&doc(
        "paths:
  /json/{id}:
    post:
      operationId: json
      parameters: [{name: id, in: path, required: true}]
      requestBody:
        required: true
        content:
          application/xml: {schema: {type: object}}
          application/merge-patch+json:
            schema:
              allOf:
                - {$ref: '#/components/schemas/Base'}
                - {type: object, required: [extra], properties: {extra: {type: boolean}}}
  /form:
    post:
      operationId: form
      requestBody:
        content:
          application/x-www-form-urlencoded:
            schema: {type: object, required: [user], properties: {user: {type: string}, tags: {type: array, items: {type: string}}}}
  /list:
    put:
      operationId: list
      requestBody:
        description: The new list
        required: true
        content: {application/json: {schema: {type: array, items: {type: integer}}}}
  /clash/{name}:
    put:
      operationId: clash
      parameters: [{name: name, in: path, required: true}]
      requestBody:
        content: {application/json: {schema: {$ref: '#/components/schemas/Base'}}}
  /upload:
    post:
      operationId: upload
      requestBody:
        content: {multipart/form-data: {schema: {type: object}}, application/octet-stream: {}}
components:
  schemas:
    Base:
      type: object
      required: [name]
      properties:
        id: {type: integer, readOnly: true}
        name: {type: string, description: The name}
        secret: {type: string, writeOnly: true}
",
    ));
    let json = tool(&i, "json");
    let names: Vec<&str> =
        json["args"].as_array().unwrap().iter().map(|a| a["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["id", "name", "secret", "extra"], "readOnly properties are not request arguments");
    assert_eq!(
        arg(&json, "name"),
        json!({"name": "name", "description": "The name", "type": "string", "required": true, "position": "body"})
    );
    assert_eq!(arg(&json, "extra")["required"], true);
    assert_eq!(
        json["requestTemplate"]["headers"],
        json!([{"key": "Content-Type", "value": "application/merge-patch+json"}])
    );
    assert!(json["requestTemplate"].get("body").is_none());

    let form = tool(&i, "form");
    assert_eq!(form["requestTemplate"]["argsToFormBody"], true);
    assert_eq!(form["requestTemplate"]["headers"][0]["value"], "application/x-www-form-urlencoded");
    assert_eq!(arg(&form, "user")["required"], true);
    assert_eq!(arg(&form, "tags")["position"], "body");

    let list = tool(&i, "list");
    assert_eq!(
        arg(&list, "body"),
        json!({"name": "body", "description": "The new list", "type": "array", "required": true, "items": {"type": "integer"}, "position": "body"})
    );
    assert_eq!(list["requestTemplate"]["body"], "{{.args.body}}");

    let clash = tool(&i, "clash");
    assert_eq!(arg(&clash, "body")["type"], "object");
    assert_eq!(arg(&clash, "body")["properties"]["name"]["type"], "string");
    assert_eq!(clash["requestTemplate"]["body"], "{{.args.body}}");
    assert!(warned(&i, "body property \"name\" has the name of a parameter"));

    let upload = tool(&i, "upload");
    assert!(upload.get("args").is_none());
    assert!(upload["requestTemplate"].get("headers").is_none());
    assert!(warned(&i, "request body multipart/form-data, application/octet-stream is not supported"));
    assert_raw_server(&i.json());
}

#[test]
fn output_schema_is_the_first_2xx_json_object() {
    let i = run(&doc(
        "paths:
  /a:
    get:
      operationId: a
      responses:
        '404': {description: no, content: {application/json: {schema: {type: object, properties: {err: {type: string}}}}}}
        '201': {$ref: '#/components/responses/Thing'}
        '200': {description: ok, content: {application/json; charset=utf-8: {schema: {allOf: [{$ref: '#/components/schemas/Thing'}, {properties: {more: {type: integer}}}]}}}}
  /b:
    get:
      operationId: b
      responses: {'200': {description: ok, content: {application/json: {schema: {type: array, items: {type: object}}}}}}
  /c:
    get:
      operationId: c
      responses: {'204': {description: empty}, '200': {description: xml, content: {application/xml: {schema: {type: object}}}}}
components:
  responses:
    Thing: {description: created, content: {application/json: {schema: {$ref: '#/components/schemas/Thing'}}}}
  schemas:
    Thing:
      properties:
        id: {type: integer, readOnly: true}
        password: {type: string, writeOnly: true}
",
    ));
    assert_eq!(
        tool(&i, "a")["outputSchema"],
        json!({"type": "object", "properties": {"id": {"type": "integer", "readOnly": true}, "more": {"type": "integer"}}})
    );
    assert!(tool(&i, "b").get("outputSchema").is_none(), "MCP output schemas are objects");
    assert!(tool(&i, "c").get("outputSchema").is_none());
}

#[test]
fn yaml_number_keys_and_merge_keys_are_read() {
    let i = run(&doc(
        "x-common: &common {description: ok, content: {application/json: {schema: {type: object, properties: {n: {type: integer}}}}}}
paths:
  /x:
    get:
      operationId: x
      responses:
        200:
          <<: *common
",
    ));
    assert_eq!(tool(&i, "x")["outputSchema"]["properties"]["n"]["type"], "integer");
}

#[test]
fn env_syntax_in_imported_text_is_neutralised() {
    let i = run(&doc("paths:\n  /x:\n    get: {operationId: x, summary: 'Use ${HOME} here'}\n"));
    assert_eq!(tool(&i, "x")["description"], "Use $ {HOME} here");
    assert!(warned(&i, "tools[0].description: \"${\" written as \"$ {\""), "{:?}", i.warnings);
}

#[test]
fn descriptions_combine_summary_description_and_deprecation() {
    let i = run(&doc("paths:
  /a: {get: {operationId: a, summary: ' Same ', description: Same}}
  /b: {get: {operationId: b, summary: Short, description: '  Long text.  '}}
  /c: {get: {operationId: c, deprecated: true, description: Old}}
  /d: {get: {operationId: d}}
"));
    assert_eq!(tool(&i, "a")["description"], "Same");
    assert_eq!(tool(&i, "b")["description"], "Short\n\nLong text.");
    assert_eq!(tool(&i, "c")["description"], "Deprecated. Old");
    assert!(tool(&i, "d").get("description").is_none());
}

#[test]
fn yaml_output_is_a_pasteable_list_with_a_comment_header() {
    let i = run(&doc(
        "paths:\n  /x:\n    get: {operationId: x}\ncomponents: {securitySchemes: {o: {type: oauth2}}}\n",
    ));
    let text = i.to_yaml("api.yaml").unwrap();
    let mut lines = text.lines();
    assert!(lines.next().unwrap().starts_with("# Imported by `portcullis import openapi` from api.yaml"));
    assert!(text.contains("\n# warning: components.securitySchemes.o: oauth2 is not supported"));
    assert!(text.contains("\n- name: test-api\n"));
    let parsed: Vec<raw::Server> = yaml_serde::from_str(&text).unwrap();
    assert_eq!(parsed.len(), 1);
}

#[test]
fn structural_errors_name_the_path() {
    let e = err(&doc("paths:\n  /x:\n    get:\n      parameters: [{name: a}]\n"));
    assert_eq!(
        e.to_string(),
        "paths./x.get.parameters[0]: a parameter needs `in`: query, path, header or cookie"
    );
    let e = err(&doc("paths:\n  /x:\n    post:\n      parameters: [{name: b, in: body}]\n"));
    assert!(e.to_string().contains("Swagger 2.0"), "{e}");
    let e = err(&doc("paths: [1, 2]"));
    assert_eq!(e.to_string(), "paths: must be a mapping");
    let e = err(&doc("paths:\n  /x:\n    get: 7\n"));
    assert_eq!(e.to_string(), "paths./x.get: an operation must be a mapping");
}

/// Every node of a small but complete description replaced by values of the wrong shape, and
/// every prefix of it: the importer answers (Ok or Err), it never panics.
#[test]
fn mangled_descriptions_never_panic() {
    let base = doc(&format!(
        "security: [{{header: []}}]
paths:
  /pets/{{petId}}:
    parameters: [{{name: petId, in: path, required: true, schema: {{type: string}}}}]
    get:
      operationId: getPet
      parameters: [{{$ref: '#/components/parameters/Limit'}}]
      responses:
        '200': {{description: ok, content: {{application/json: {{schema: {{$ref: '#/components/schemas/Pet'}}}}}}}}
    post:
      requestBody: {{content: {{application/json: {{schema: {{$ref: '#/components/schemas/Pet'}}}}}}}}
components:
  parameters:
    Limit: {{name: limit, in: query, schema: {{type: [integer, 'null']}}}}
  schemas:
    Pet: {{type: object, properties: {{id: {{type: integer}}, kids: {{type: array, items: {{$ref: '#/components/schemas/Pet'}}}}}}}}
{}",
        SCHEMES.replace("components:\n", "")
    ));
    let root = parse(&base).unwrap();
    assert!(import(&base, &ImportOptions::default()).is_ok());

    fn pointers(v: &Value, at: String, out: &mut Vec<String>) {
        out.push(at.clone());
        match v {
            Value::Object(m) => m.iter().for_each(|(k, c)| {
                pointers(c, format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")), out)
            }),
            Value::Array(a) => a.iter().enumerate().for_each(|(i, c)| pointers(c, format!("{at}/{i}"), out)),
            _ => {}
        }
    }
    let mut all = Vec::new();
    pointers(&root, String::new(), &mut all);
    let junk = [
        json!(null),
        json!(7),
        json!("x"),
        json!([]),
        json!({}),
        json!({"$ref": "#/"}),
        json!({"$ref": "#"}),
    ];
    let mut runs = 0;
    for p in all.iter().filter(|p| !p.is_empty()) {
        for j in &junk {
            let mut mangled = root.clone();
            *mangled.pointer_mut(p).unwrap() = j.clone();
            let text = serde_json::to_string(&mangled).unwrap();
            let _ = import(&text, &ImportOptions::default());
            runs += 1;
        }
    }
    assert!(runs > 500, "{runs}");
    let json_text = serde_json::to_string(&root).unwrap();
    for end in (0..json_text.len()).step_by(3).filter(|e| json_text.is_char_boundary(*e)) {
        let _ = import(&json_text[..end], &ImportOptions::default());
    }
}

#[test]
fn hostile_yaml_is_refused_not_expanded() {
    let deep = format!("openapi: 3.1.0\nx: {}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert!(matches!(err(&deep), ImportError::Syntax(_)));
    let mut laughs =
        String::from("openapi: 3.1.0\na0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for i in 1..12 {
        let prev = i - 1;
        laughs.push_str(&format!("a{i}: &a{i} [*a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}]\n"));
    }
    assert!(matches!(err(&laughs), ImportError::Syntax(_)));
}

#[test]
fn json_descriptions_are_read_as_json() {
    // An escaped surrogate pair (a thumbs-up) is one character in JSON; YAML 1.1 parsers refuse it.
    let spec = r#"{"openapi": "3.0.3", "info": {"title": "T", "version": "1"},
      "servers": [{"url": "https://api.example.com"}],
      "paths": {"/x": {"get": {"operationId": "x", "summary": "like \ud83d\udc4d",
        "responses": {"200": {"description": "ok"}}}}}}"#;
    let i = run(spec);
    assert_eq!(tool(&i, "x")["description"], "like \u{1F44D}");
    // Broken JSON is reported as JSON, with its position.
    let e = err(r#"{"openapi": "3.0.3", "info": }"#).to_string();
    assert!(e.contains("JSON") && e.contains("column"), "{e}");
}

#[test]
fn a_large_description_imports_whole() {
    // ~3 MB: 3,000 operations with long descriptions and parameters (the size of the largest
    // public descriptions; the time it takes is measured in perf/RESULTS.md, not asserted here).
    let mut paths = serde_json::Map::new();
    for n in 0..3000 {
        paths.insert(
            format!("/items{n}/{{id}}"),
            json!({"get": {"operationId": format!("get_item_{n}"), "description": "d".repeat(800),
              "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}},
                             {"name": "q", "in": "query", "schema": {"type": "integer", "minimum": 0}}],
              "responses": {"200": {"description": "ok"}}}}),
        );
    }
    let spec = json!({"openapi": "3.0.3", "info": {"title": "Big", "version": "1"},
        "servers": [{"url": "https://api.example.com"}], "paths": paths})
    .to_string();
    assert!(spec.len() > 2_800_000, "{}", spec.len());
    let i = run(&spec);
    assert_eq!(tools(&i).len(), 3000);
    assert_eq!(arg(&tool(&i, "get_item_2999"), "q")["type"], "integer");
}
