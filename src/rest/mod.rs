//! Higress-style tools: templates ([`template`]), the input schema generated from `args`
//! ([`schema`]), REST APIs called as MCP tools ([`tool`]), and the OpenAPI importer that writes
//! such tools ([`openapi`]: used by the CLI and at config load, never on the request path). A
//! tool without `requestTemplate.url` renders its `responseTemplate.body` locally.

pub mod args;
pub mod schema;
pub mod template;
pub mod tool;
