//! Integration tests through the public API. One binary, one module per area.

mod common;
mod engine_basics;
