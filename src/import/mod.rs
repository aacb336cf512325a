//! Cold-path converters from other formats into this gateway's configuration (`portcullis
//! import ...` and `servers[].openapi`). Nothing here runs on the request path.

pub mod mcproute;
pub mod openapi;
