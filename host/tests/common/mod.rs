//! Shared by the test binaries; each compiles this module and uses part of it.
#![allow(dead_code)]

use modelcar_prefetch_host::{Policy, resolve_default_module};

/// The built policy; fails the test with the rebuild command when it is missing or stale.
pub fn policy() -> Policy {
    Policy::load_default().unwrap_or_else(|e| panic!("{e}"))
}

/// The built module's bytes, checked like `policy()`.
pub fn module_bytes() -> Vec<u8> {
    let path = resolve_default_module().unwrap_or_else(|e| panic!("{e}"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}
