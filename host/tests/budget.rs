//! The module's size budget: every pod creation in a selected namespace waits for this
//! policy, and policy-server downloads and compiles the module before the first one.
//! README "Performance" says where the bytes go and what each release-profile choice costs.

mod common;

use wasmparser::{Parser, Payload};

const BUDGET_BYTES: u64 = 250_000;

#[test]
fn release_module_is_at_most_250_kb() {
    let size = common::module_bytes().len() as u64;
    assert!(
        size <= BUDGET_BYTES,
        "policy.wasm is {size} bytes, over the {BUDGET_BYTES}-byte budget (README \"Performance\")"
    );
}

/// `strip = true` with `panic = "abort"` is worth 80 KB: a name or debug section means the
/// module was not built with the release profile.
#[test]
fn release_module_carries_no_custom_sections() {
    let module = common::module_bytes();
    let custom: Vec<String> = Parser::new(0)
        .parse_all(&module)
        .filter_map(|payload| match payload.unwrap() {
            Payload::CustomSection(section) => Some(section.name().to_string()),
            _ => None,
        })
        .collect();
    assert!(custom.is_empty(), "custom sections: {custom:?}");
}
