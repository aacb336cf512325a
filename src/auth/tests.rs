//! Stage-1 unit tests (filled below).
