//! What Kubewarden's policy server needs from any waPC policy module, whatever it mutates.

mod common;

use serde_json::json;
use wasmparser::{Parser, Payload, TypeRef};

const WAPC_IMPORTS: &[&str] = &[
    "__guest_request",
    "__guest_response",
    "__guest_error",
    "__host_call",
    "__host_response",
    "__host_response_len",
    "__host_error",
    "__host_error_len",
    "__console_log",
];

#[test]
fn protocol_version_is_v1() {
    assert_eq!(common::policy().protocol_version().unwrap(), "v1");
}

#[test]
fn empty_settings_are_valid() {
    let verdict = common::policy().validate_settings(&json!({})).unwrap();
    assert!(verdict.valid, "{verdict:?}");
}

#[test]
fn unknown_settings_field_is_refused_by_name() {
    let verdict = common::policy()
        .validate_settings(&json!({"nonsenseField": 1}))
        .unwrap();
    assert!(!verdict.valid, "{verdict:?}");
    let message = verdict.message.unwrap_or_default();
    assert!(message.contains("nonsenseField"), "message: {message}");
}

#[test]
fn imports_only_wapc_and_wasi_functions() {
    let module = common::module_bytes();
    let mut imports = Vec::new();
    for payload in Parser::new(0).parse_all(&module) {
        if let Payload::ImportSection(section) = payload.unwrap() {
            for import in section.into_imports() {
                let import = import.unwrap();
                imports.push((import.module.to_owned(), import.name.to_owned(), import.ty));
            }
        }
    }
    assert!(
        !imports.is_empty(),
        "a waPC guest imports at least __guest_request"
    );
    for (module, name, ty) in imports {
        assert!(
            matches!(ty, TypeRef::Func(_)),
            "{module}.{name} is not a function import"
        );
        let allowed = match module.as_str() {
            "wapc" => WAPC_IMPORTS.contains(&name.as_str()),
            "wasi_snapshot_preview1" => true,
            _ => false,
        };
        assert!(allowed, "unexpected import {module}.{name}");
    }
}

#[test]
fn exports_wapc_entry_points_and_memory() {
    let module = common::module_bytes();
    let mut exports = Vec::new();
    for payload in Parser::new(0).parse_all(&module) {
        if let Payload::ExportSection(section) = payload.unwrap() {
            for export in section {
                let export = export.unwrap();
                exports.push((export.name.to_owned(), export.kind));
            }
        }
    }
    for (name, kind) in [
        ("wapc_init", wasmparser::ExternalKind::Func),
        ("__guest_call", wasmparser::ExternalKind::Func),
        ("memory", wasmparser::ExternalKind::Memory),
    ] {
        assert!(
            exports.iter().any(|(n, k)| n == name && *k == kind),
            "missing export {name} ({kind:?}); exports: {exports:?}"
        );
    }
}
