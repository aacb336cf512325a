//! Higress-style tools: templates ([`template`]) and the input schema generated from `args`
//! ([`schema`]). Calling REST backends arrives with the REST tools issue; today a tool without
//! `requestTemplate.url` renders its `responseTemplate.body` locally.

pub mod schema;
pub mod template;
