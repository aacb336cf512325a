//! Table of raw requests and verdicts (RFC 9112 MUST rules, llhttp-corpus style).
