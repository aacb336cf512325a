//! Higress-style tools: templates ([`template`]), the input schema generated from `args`
//! ([`schema`]) and the OpenAPI importer that writes such tools ([`openapi`], used by the CLI,
//! never by the data plane). Calling REST backends arrives with the REST tools issue; today a
//! tool without `requestTemplate.url` renders its `responseTemplate.body` locally.

pub mod openapi;
pub mod schema;
pub mod template;
