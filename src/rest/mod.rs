//! Higress-style tools: templates ([`template`]), the input schema generated from `args`
//! ([`schema`]), and REST APIs called as MCP tools ([`tool`]). A tool without
//! `requestTemplate.url` renders its `responseTemplate.body` locally.

pub mod schema;
pub mod template;
pub mod tool;
