//! The runtime's integration tests, one binary (like wasmtime's `tests/all`).

mod common;
mod determinism;
mod examples;
mod hostile;
