//! Credentials: today the backend side - how a `server.securitySchemes` entry puts a credential
//! on a backend request (`scheme`). Client authentication (JWT, API keys, basic, trusted proxy)
//! joins here with the authentication issue. Secrets live only in these types, whose `Debug`
//! never prints them.

pub mod scheme;
