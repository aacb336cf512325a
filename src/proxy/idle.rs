//! What a keep-alive connection costs while it waits for its next request.
//!
//! A plain connection that has been quiet for `conn::IDLE_HOLD` gives its buffers to the
//! worker's spares and its request pipeline (a boxed future, over 10 KiB) is freed: what is left
//! is the connection's task holding its `conn::Link` and `Link::wait` - a readiness poll on the
//! socket, a slot in the worker's [`crate::timer::Deadlines`] and a slot in the drain event; a
//! few hundred bytes, as nginx frees a keep-alive connection's buffers. The pipeline is
//! allocated again when bytes arrive (once per quiet period, not per request: a busy connection
//! keeps it).
//!
//! The idle deadline is not a monoio timer (640 bytes at 128-byte alignment each, which would
//! align the whole task): every idle connection of a worker shares the worker's coarse
//! [`crate::timer::Deadlines`], as its requests' timeouts do. A deadline fires up to one
//! [`crate::timer::TICK`] late.
