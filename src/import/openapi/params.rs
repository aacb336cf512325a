//! Parameters and request bodies become tool arguments with a position (path, query, header,
//! cookie, body).

use serde_json::{json, Value};

use crate::config::raw::{Arg, HeaderTemplate, RequestTemplate};

use super::cx::*;
use super::document::*;
use super::error::*;
use super::schema::*;

/// The media type without parameters, lower-case (`application/json; charset=utf-8` ->
/// `application/json`).
pub(super) fn essence(media: &str) -> String {
    media.split(';').next().unwrap_or("").trim().to_ascii_lowercase()
}

pub(super) fn is_json(media: &str) -> bool {
    let e = essence(media);
    e == "application/json" || e.ends_with("+json")
}

pub(super) const FORM: &str = "application/x-www-form-urlencoded";

/// A parameter after `$ref` resolution, keyed by `(name, in)`.
pub(super) struct Param {
    pub(super) name: String,
    pub(super) location: String,
    pub(super) value: Value,
    pub(super) path: String,
}

/// A JSON value from the description as the configuration's value type. Infallible for JSON
/// (its keys are strings); `null` stands in should that ever change.
/// The formats JSON Schema (2020-12) defines. OpenAPI's own (`int32`, `int64`, `float`,
/// `double`, `byte`, `binary`, `password`) are not carried over: a strict validator (Ajv) refuses
/// a schema with an unknown format.
const JSON_SCHEMA_FORMATS: [&str; 19] = [
    "date-time",
    "date",
    "time",
    "duration",
    "email",
    "idn-email",
    "hostname",
    "idn-hostname",
    "ipv4",
    "ipv6",
    "uri",
    "uri-reference",
    "iri",
    "iri-reference",
    "uuid",
    "uri-template",
    "json-pointer",
    "relative-json-pointer",
    "regex",
];

pub(super) fn config_value(v: &Value) -> yaml_serde::Value {
    yaml_serde::to_value(v).unwrap_or(yaml_serde::Value::Null)
}

/// The `position` of a generated argument, empty when absent.
pub(super) fn position(a: &Arg) -> &str {
    a.position.as_deref().unwrap_or("")
}

impl<'a> Cx<'a> {
    pub(super) fn param(&self, p: &Value, at: &str) -> Result<Param, ImportError> {
        let (value, path) = self.deref(p, at)?;
        let Some(name) = value.get("name").and_then(Value::as_str).filter(|n| !n.is_empty()) else {
            return Err(invalid(&path, "a parameter needs a non-empty string `name`"));
        };
        let location = match value.get("in").and_then(Value::as_str) {
            Some(l @ ("query" | "path" | "header" | "cookie")) => l.to_string(),
            Some(l @ ("body" | "formData")) => {
                return Err(invalid(
                    &path,
                    format!("`in: {l}` is Swagger 2.0; OpenAPI 3 describes bodies with requestBody"),
                ))
            }
            _ => return Err(invalid(&path, "a parameter needs `in`: query, path, header or cookie")),
        };
        Ok(Param { name: name.to_string(), location, value: value.into_owned(), path })
    }

    pub(super) fn param_arg(&mut self, param: &Param) -> Result<Arg, ImportError> {
        let p = &param.value;
        // A parameter has `schema`, or `content` with exactly one media type (section 4.8.12.4).
        let (schema, schema_path) = match (p.get("schema"), p.get("content")) {
            (Some(s), _) => (Some(s), key(&param.path, "schema")),
            (None, Some(Value::Object(c))) => match c.iter().next() {
                Some((media, m)) => {
                    (m.get("schema"), key(&key(&key(&param.path, "content"), media), "schema"))
                }
                None => (None, String::new()),
            },
            _ => (None, String::new()),
        };
        let schema = match schema {
            Some(s) => self.inline(s, &schema_path, Dir::Request)?,
            None => json!({}),
        };
        self.check_style(param, &schema);
        let description = text(p.get("description")).or_else(|| text(schema.get("description")));
        let required = param.location == "path" || p.get("required") == Some(&Value::Bool(true));
        Ok(self.arg(&param.name, description, required, &schema, &param.location, &param.path))
    }

    /// Warns when a parameter asks for a serialisation other than the one the runtime applies
    /// (OpenAPI's defaults: `form` + explode for query and cookie, `simple` for path and header).
    pub(super) fn check_style(&mut self, param: &Param, schema: &Value) {
        let default = match param.location.as_str() {
            "query" | "cookie" => "form",
            _ => "simple",
        };
        let style = param.value.get("style").and_then(Value::as_str).unwrap_or(default);
        let default_explode = style == "form";
        let explode = param.value.get("explode").and_then(Value::as_bool).unwrap_or(default_explode);
        let structured = matches!(arg_type(schema), Some("array" | "object"));
        if style != default || (structured && explode != default_explode) {
            self.warn(format!(
                "{}: parameter {:?} asks for style {style:?}{}; the gateway sends {} parameters in OpenAPI's \
                 default style ({default}{})",
                param.path,
                param.name,
                if explode { ", explode" } else { ", no explode" },
                param.location,
                if default_explode { ", explode" } else { "" }
            ));
        }
    }

    /// One argument from an (inlined) schema.
    pub(super) fn arg(
        &mut self,
        name: &str,
        description: Option<String>,
        required: bool,
        schema: &Value,
        position: &str,
        at: &str,
    ) -> Arg {
        let kind = arg_type(schema);
        if kind.is_none() {
            if let Some(Value::String(t)) = schema.get("type") {
                if t != "null" {
                    self.warn(format!(
                        "{at}: argument {name:?} has type {t:?}, not a JSON Schema type; left untyped"
                    ));
                }
            }
        }
        let choices = match (schema.get("enum"), schema.get("const")) {
            (Some(Value::Array(values)), _) => Some(values.clone()),
            (None, Some(c)) => Some(vec![c.clone()]),
            _ => None,
        };
        let choices = choices
            .map(|mut values| {
                if kind.is_some() {
                    values.retain(|v| !v.is_null());
                }
                values
            })
            .filter(|values| !values.is_empty())
            .map(|values| values.iter().map(config_value).collect());
        let items = match kind {
            Some("array") => {
                schema.get("items").filter(|i| i.is_object() || i.is_boolean()).map(config_value)
            }
            _ => None,
        };
        let properties = match kind {
            Some("object") => {
                flatten_all_of(schema.clone()).get("properties").filter(|p| p.is_object()).map(config_value)
            }
            _ => None,
        };
        Arg {
            name: name.to_string(),
            description,
            kind: kind.map(str::to_string),
            required: required.then_some(true),
            default: schema.get("default").map(config_value),
            choices,
            items,
            properties,
            position: Some(position.to_string()),
            // The schema's constraints, published as written (clients validate against them).
            format: schema
                .get("format")
                .and_then(Value::as_str)
                .filter(|f| JSON_SCHEMA_FORMATS.contains(f))
                .map(str::to_string),
            minimum: schema.get("minimum").filter(|v| v.is_number()).map(config_value),
            maximum: schema.get("maximum").filter(|v| v.is_number()).map(config_value),
            pattern: schema.get("pattern").and_then(Value::as_str).map(str::to_string),
            min_length: schema.get("minLength").filter(|v| v.is_u64()).map(config_value),
            max_length: schema.get("maxLength").filter(|v| v.is_u64()).map(config_value),
        }
    }

    /// The request body: a JSON or form object's properties become `position: body` arguments;
    /// any other JSON body becomes one argument sent whole through `requestTemplate.body`.
    pub(super) fn body(
        &mut self,
        body: &Value,
        at: &str,
        args: &mut Vec<Arg>,
        request: &mut RequestTemplate,
    ) -> Result<(), ImportError> {
        let (body, body_path) = self.deref(body, at)?;
        let content = match body.get("content") {
            Some(Value::Object(c)) if !c.is_empty() => c,
            Some(Value::Object(_)) | None => return Ok(()),
            Some(_) => return Err(invalid(&key(&body_path, "content"), "must be a mapping")),
        };
        let chosen = content
            .iter()
            .find(|(media, _)| is_json(media))
            .or_else(|| content.iter().find(|(media, _)| essence(media) == FORM));
        let Some((media, media_obj)) = chosen else {
            let types: Vec<&str> = content.keys().map(String::as_str).collect();
            self.warn(format!(
                "{body_path}: request body {} is not supported (JSON and {FORM} are); the tool has no body \
                 arguments",
                types.join(", ")
            ));
            return Ok(());
        };
        let media_essence = essence(media);
        let form = media_essence == FORM;
        let schema_path = key(&key(&key(&body_path, "content"), media), "schema");
        let schema = match media_obj.get("schema") {
            Some(s) => flatten_all_of(self.inline(s, &schema_path, Dir::Request)?),
            None => json!({}),
        };
        let body_required = body.get("required") == Some(&Value::Bool(true));
        let props = schema.get("properties").and_then(Value::as_object).filter(|p| !p.is_empty());
        let taken = |name: &str, args: &[Arg]| args.iter().any(|a| a.name == name);
        let clash = props.and_then(|p| p.keys().find(|k| taken(k, args)).cloned());
        match props {
            Some(props) if is_object(&schema) && clash.is_none() => {
                let required: Vec<&str> = schema
                    .get("required")
                    .and_then(Value::as_array)
                    .map(|r| r.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                for (name, prop) in props {
                    let d = text(prop.get("description"));
                    let a = self.arg(name, d, required.contains(&name.as_str()), prop, "body", &schema_path);
                    args.push(a);
                }
            }
            _ if form => {
                self.warn(format!(
                    "{schema_path}: a form body that is not an object with properties{} is not supported; the \
                     tool has no body arguments",
                    clash.as_deref().map(|c| format!(" (or whose {c:?} clashes with a parameter)")).unwrap_or_default()
                ));
                return Ok(());
            }
            _ => {
                let name = ["body", "requestBody", "_body"]
                    .into_iter()
                    .find(|n| !taken(n, args))
                    .map(str::to_string)
                    .unwrap_or_else(|| {
                        (2..).map(|n| format!("body_{n}")).find(|n| !taken(n, args)).unwrap_or_default()
                    });
                if let Some(c) = &clash {
                    self.warn(format!(
                        "{schema_path}: body property {c:?} has the name of a parameter; the body is one argument \
                         {name:?} instead"
                    ));
                }
                if arg_type(&schema) == Some("string") {
                    self.warn(format!(
                        "{schema_path}: a JSON string body is sent as the argument's raw text, not as a quoted \
                         JSON string"
                    ));
                }
                let d = text(body.get("description")).or_else(|| text(schema.get("description")));
                let a = self.arg(&name, d, body_required, &schema, "body", &schema_path);
                args.push(a);
                request.body = Some(format!("{{{{.args.{name}}}}}"));
            }
        }
        request.headers = Some(vec![HeaderTemplate { key: "Content-Type".into(), value: media_essence }]);
        if form {
            request.args_to_form_body = Some(true);
        }
        Ok(())
    }
}
