//! Raw configuration types: serde only, no logic (see `compile.rs` for every rule). Field names
//! are the contract of docs/config.md and must not be renamed. Unknown keys are errors everywhere
//! except inside `server.config`, which is free-form as in Higress.
//!
//! Nested blocks that can fail independently are [`Deferred`]: they are kept as YAML values and
//! parsed by the compiler one by one, so one file reports every broken block at once, each with
//! its exact path.

#![allow(missing_docs)] // field meanings are documented in docs/config.md, the contract these mirror

use std::marker::PhantomData;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};
use yaml_serde::Value;

/// A block parsed later, on its own, so its errors do not hide its siblings' errors.
#[derive(Clone, Debug)]
pub struct Deferred<T> {
    pub value: Value,
    _t: PhantomData<fn() -> T>,
}

impl<'de, T> Deserialize<'de> for Deferred<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Deferred { value: Value::deserialize(d)?, _t: PhantomData })
    }
}

impl<T: DeserializeOwned> Deferred<T> {
    /// Wraps an already parsed YAML value.
    pub fn from_value(value: Value) -> Self {
        Deferred { value, _t: PhantomData }
    }

    /// Parses the block; on failure returns the error with its full path under `path`.
    pub fn parse(&self, path: &str) -> Result<T, String> {
        serde_path_to_error::deserialize(self.value.clone()).map_err(|e| {
            let inner = e.path().to_string();
            let full = if inner == "." || inner.is_empty() {
                path.to_string()
            } else if inner.starts_with('[') {
                format!("{path}{inner}")
            } else {
                format!("{path}.{inner}")
            };
            format!("{full}: {}", redact_values(&e.into_inner().to_string()))
        })
    }
}

/// Replaces the double-quoted values serde puts in type errors (`invalid type: string "..."`)
/// with `"<redacted>"`: the value may be a secret from `${ENV}`, and these messages reach logs
/// and the admin `/reload` answer. Field and variant names (in backticks) stay visible.
pub fn redact_values(msg: &str) -> String {
    let mut out = String::with_capacity(msg.len());
    let mut rest = msg;
    while let Some(start) = rest.find('"') {
        out.push_str(&rest[..start]);
        match rest[start + 1..].find('"') {
            Some(len) => {
                out.push_str("\"<redacted>\"");
                rest = &rest[start + 1 + len + 1..];
            }
            None => {
                rest = &rest[start..];
                break;
            }
        }
    }
    out.push_str(rest);
    out
}

/// `a` or `[a, b]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany<T> {
    One(T),
    Many(Vec<T>),
}

impl<T> OneOrMany<T> {
    pub fn into_vec(self) -> Vec<T> {
        match self {
            OneOrMany::One(t) => vec![t],
            OneOrMany::Many(v) => v,
        }
    }
}

/// A `listen` entry in its long form (the short form is a `host:port` string).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenFull {
    pub address: String,
    pub tls: Option<OneOrMany<Tls>>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tls {
    pub cert: String,
    pub key: String,
}

/// A number, also written as a string: `${VAR}` substitution always yields a string, so
/// `maxBodyBytes: ${MAX_BODY}` must work.
pub fn lenient_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum N {
        Num(u64),
        Text(String),
    }
    match Option::<N>::deserialize(d)? {
        None => Ok(None),
        Some(N::Num(n)) => Ok(Some(n)),
        Some(N::Text(t)) => t
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| serde::de::Error::custom("expected a non-negative integer")),
    }
}

/// A boolean, also written as the string `true` or `false` (see [`lenient_u64`]).
pub fn lenient_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum B {
        Bool(bool),
        Text(String),
    }
    match Option::<B>::deserialize(d)? {
        None => Ok(None),
        Some(B::Bool(b)) => Ok(Some(b)),
        Some(B::Text(t)) => match t.trim() {
            "true" => Ok(Some(true)),
            "false" => Ok(Some(false)),
            _ => Err(serde::de::Error::custom("expected true or false")),
        },
    }
}

/// A top-level number (`shutdownGraceMs`), accepting the string form too.
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(transparent)]
pub struct Number(#[serde(deserialize_with = "lenient_u64")] pub Option<u64>);

/// `workers: auto` or a number.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum Workers {
    Count(u64),
    Word(String),
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Limits {
    #[serde(default, deserialize_with = "lenient_u64")]
    pub max_header_bytes: Option<u64>,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub max_headers: Option<u64>,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub max_body_bytes: Option<u64>,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub header_timeout_ms: Option<u64>,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub idle_timeout_ms: Option<u64>,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub upstream_connect_timeout_ms: Option<u64>,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub upstream_timeout_ms: Option<u64>,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub max_connections_per_worker: Option<u64>,
}

/// The top-level `log` block.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Log {
    pub level: Option<String>,
    pub format: Option<String>,
    #[serde(default, deserialize_with = "lenient_bool")]
    pub access: Option<bool>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Sessions {
    pub keys: Option<Vec<SessionKey>>,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub ttl_seconds: Option<u64>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionKey {
    pub id: String,
    pub secret: String,
}

/// One `servers[]` entry.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Server {
    pub name: String,
    pub path: Option<String>,
    pub resource: Option<String>,
    /// Extension: text returned as `instructions` from initialize.
    pub instructions: Option<String>,
    pub authentication: Option<Deferred<Authentication>>,
    pub authorization: Option<Deferred<Authorization>>,
    pub allow_tools: Option<Vec<String>>,
    pub server: Option<Deferred<HigressServer>>,
    pub tools: Option<Vec<Deferred<Tool>>>,
    pub backends: Option<Vec<Deferred<Backend>>>,
    pub tool_name_separator: Option<String>,
    /// An OpenAPI description whose operations become REST tools of this server, read at every
    /// load (start and reload).
    pub openapi: Option<Deferred<OpenApi>>,
    /// Per-principal rate limits on `tools/call`.
    pub rate_limits: Option<Vec<RateLimit>>,
    /// The pins file of the backends' tool definitions.
    pub pins: Option<String>,
    /// Where REST tools with a relative `requestTemplate.url` are sent (Higress sends them to
    /// its route's backend service).
    pub base_url: Option<String>,
}

/// The top-level `tracing` block.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Tracing {
    pub otlp: Otlp,
    /// Ratio of requests without a sampled parent that are traced (default 1.0).
    pub sampling: Option<f64>,
    /// `service.name` of the spans (default `portcullis`).
    pub service_name: Option<String>,
}

/// `tracing.otlp`: where spans are exported (OTLP over HTTP, protobuf).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Otlp {
    pub endpoint: String,
    pub headers: Option<std::collections::BTreeMap<String, String>>,
    /// Extra CA certificates (PEM) for an https endpoint.
    pub ca_file: Option<String>,
}

/// The top-level `audit` block.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Audit {
    pub file: String,
}

/// `servers[].rateLimits[]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    pub name: Option<String>,
    #[serde(rename = "match")]
    pub matches: Option<RateMatch>,
    pub key: String,
    pub requests: u64,
    pub per: String,
    pub burst: Option<u64>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateMatch {
    pub tools: Vec<String>,
}

/// `servers[].openapi`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct OpenApi {
    /// The description (OpenAPI 3.0/3.1, JSON or YAML).
    pub file: String,
    /// Replaces the description's `servers` (needed when they are relative or absent).
    pub base_url: Option<String>,
    /// Give tools the `outputSchema` of their first 2xx JSON response.
    #[serde(default, deserialize_with = "lenient_bool")]
    pub output_schemas: Option<bool>,
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub enum AuthMode {
    Jwt,
    ApiKey,
    Basic,
    Proxy,
    Mtls,
    None,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Authentication {
    pub mode: AuthMode,
    pub jwt: Option<Jwt>,
    pub api_key: Option<ApiKey>,
    pub basic: Option<Basic>,
    pub proxy: Option<Proxy>,
    pub mtls: Option<Mtls>,
    pub protected_resource: Option<ProtectedResource>,
}

/// `authentication.mtls` (extension: docs/config.md names the mode, not its block).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Mtls {
    /// PEM file of the CA(s) whose client certificates this endpoint accepts.
    pub ca_file: String,
    /// `commonName` (default), `subject`, `dnsName`, `uri` or `email`.
    pub principal: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Jwt {
    pub providers: Vec<JwtProvider>,
    /// Extension: verified-token cache entries per core (default 4096; 0 disables).
    #[serde(default, deserialize_with = "lenient_u64")]
    pub cache_entries: Option<u64>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct JwtProvider {
    pub name: String,
    pub issuer: String,
    pub audiences: Option<Vec<String>>,
    pub jwks: Jwks,
    pub algorithms: Option<Vec<String>>,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub clock_skew_seconds: Option<u64>,
    pub claim_to_headers: Option<Vec<ClaimToHeader>>,
    #[serde(default, deserialize_with = "lenient_bool")]
    pub require_exp: Option<bool>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Jwks {
    pub file: Option<String>,
    pub inline: Option<Value>,
    pub uri: Option<String>,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub refresh_seconds: Option<u64>,
    /// Extension: extra CA certificates (PEM) trusted for an https `uri`.
    pub ca_file: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimToHeader {
    pub claim: String,
    pub header: String,
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum In {
    Header,
    Query,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKey {
    #[serde(rename = "in")]
    pub location: In,
    pub name: String,
    pub keys: Vec<NamedSecret>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NamedSecret {
    pub id: String,
    pub value: String,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Basic {
    pub users: Vec<BasicUser>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicUser {
    pub name: String,
    pub password: String,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Proxy {
    pub user_header: Option<String>,
    pub trusted_sources: Option<Vec<String>>,
    #[serde(default, deserialize_with = "lenient_bool")]
    pub require_user: Option<bool>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ProtectedResource {
    pub authorization_servers: Option<Vec<String>>,
    pub scopes_supported: Option<Vec<String>>,
    pub resource_name: Option<String>,
    pub resource_documentation: Option<String>,
    pub resource_policy_uri: Option<String>,
    pub jwks_uri: Option<String>,
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    // Envoy AI Gateway writes `Allow` / `Deny`.
    #[serde(alias = "Allow")]
    Allow,
    #[serde(alias = "Deny")]
    Deny,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Authorization {
    pub default_action: Option<Action>,
    pub rules: Option<Vec<Rule>>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub name: Option<String>,
    pub source: Option<RuleSource>,
    pub target: Option<RuleTarget>,
    pub cel: Option<String>,
    pub action: Option<Action>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSource {
    pub jwt: Option<JwtSource>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwtSource {
    pub scopes: Option<Vec<String>>,
    pub claims: Option<Vec<ClaimMatch>>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[serde(rename_all = "camelCase")]
pub struct ClaimMatch {
    pub name: String,
    pub values: Vec<String>,
    pub value_type: Option<ClaimValueType>,
}

/// How a claim is compared (Envoy AI Gateway's `valueType`).
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
pub enum ClaimValueType {
    /// The claim is a string equal to one of the values.
    String,
    /// The claim is an array with an element equal to one of the values (or such a string).
    StringArray,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleTarget {
    #[serde(default)]
    pub tools: Vec<ToolTarget>,
    #[serde(default)]
    pub resources: Vec<ResourceTarget>,
    #[serde(default)]
    pub prompts: Vec<PromptTarget>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceTarget {
    pub backend: String,
    pub uri: String,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromptTarget {
    pub backend: String,
    pub name: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ToolTarget {
    pub backend: String,
    pub tool: Option<String>,
    pub tool_name: Option<String>,
    pub when: Option<String>,
}

/// Higress `server` block.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HigressServer {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Free-form; visible to templates as `.config`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub security_schemes: Option<Vec<SecurityScheme>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_downstream_security: Option<SecurityRef>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_upstream_security: Option<SecurityRef>,
    #[serde(default, deserialize_with = "lenient_bool")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub passthrough_auth_header: Option<bool>,
    /// Extension: PEM CA certificates trusted (besides the system roots) for https REST tools.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<String>,
    /// Higress `server.allowTools` (same meaning as the server entry's `allowTools`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_tools: Option<Vec<String>>,
    /// Higress `server.description`: informational (Higress does not send it either).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub enum SchemeType {
    #[serde(rename = "http")]
    Http,
    #[serde(rename = "apiKey")]
    ApiKey,
    /// A token from an STS (`flows`): for backends and REST tools only.
    #[serde(rename = "oauth2")]
    OAuth2,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SecurityScheme {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: SchemeType,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scheme: Option<String>,
    #[serde(rename = "in")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<In>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_credential: Option<String>,
    /// A credential per principal, from a file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credentials: Option<PrincipalCredentials>,
    /// `type: oauth2`: how the token is obtained.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flows: Option<OAuthFlows>,
}

/// `securitySchemes[].flows` (exactly one).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct OAuthFlows {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_credentials: Option<OAuthFlow>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_exchange: Option<OAuthFlow>,
}

/// One OAuth 2.0 flow to a token endpoint (RFC 6749 4.4, RFC 8693).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct OAuthFlow {
    pub token_url: String,
    pub client_id: String,
    pub client_secret: String,
    /// `client_secret_basic` (default) | `client_secret_post`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_method: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    /// Token exchange: RFC 8707 resource.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// Token exchange: the subject token's type.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject_token_type: Option<String>,
    /// Extra CA certificates (PEM) for an https `tokenUrl`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<String>,
}

/// `securitySchemes[].credentials`: a file of key -> credential, and what picks the key.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PrincipalCredentials {
    pub file: String,
    /// `sub` (default) | `subject` | `claim:<dotted path>`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// `deny` (default) | `default`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fallback: Option<String>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SecurityRef {
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
    #[serde(default, deserialize_with = "lenient_bool")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub passthrough: Option<bool>,
}

/// Higress `tools[]` entry.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Tool {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub args: Option<Vec<Arg>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_template: Option<RequestTemplate>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_template: Option<ResponseTemplate>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_response_template: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_schema: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub security: Option<SecurityRef>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Arg {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(rename = "type")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, deserialize_with = "lenient_bool")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub required: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default: Option<Value>,
    #[serde(rename = "enum")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub choices: Option<Vec<Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub items: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub properties: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub position: Option<String>,
    /// JSON Schema keywords published in the tool's `inputSchema` as written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub minimum: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub maximum: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    #[serde(rename = "minLength")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_length: Option<Value>,
    #[serde(rename = "maxLength")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_length: Option<Value>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RequestTemplate {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub headers: Option<Vec<HeaderTemplate>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    #[serde(default, deserialize_with = "lenient_bool")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub args_to_json_body: Option<bool>,
    #[serde(default, deserialize_with = "lenient_bool")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub args_to_url_param: Option<bool>,
    #[serde(default, deserialize_with = "lenient_bool")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub args_to_form_body: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub security: Option<SecurityRef>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HeaderTemplate {
    pub key: String,
    pub value: String,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ResponseTemplate {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prepend_body: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub append_body: Option<String>,
}

/// An MCP backend aggregated behind a server.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Backend {
    pub name: String,
    pub url: String,
    pub tool_selector: Option<ToolSelector>,
    pub security: Option<SecurityRef>,
    pub forward_headers: Option<Vec<ForwardHeader>>,
    pub endpoints: Option<Vec<String>>,
    pub ca_file: Option<String>,
    /// `off` (default), `warn` or `enforce`.
    pub pinning: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ToolSelector {
    pub include: Option<Vec<String>>,
    pub include_regex: Option<Vec<String>>,
    pub exclude: Option<Vec<String>>,
    pub exclude_regex: Option<Vec<String>>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForwardHeader {
    pub name: String,
}
