//! The host reports broken inputs and modules as errors, never by crashing the test process.

mod common;

use std::fs;
use std::time::{Duration, SystemTime};

use modelcar_prefetch_host::{HostError, HostTable, Policy, ensure_fresh};
use serde_json::json;

#[test]
fn missing_module_names_the_rebuild_command() {
    let dir = tempfile::tempdir().unwrap();
    let error = Policy::load(dir.path().join("policy.wasm"), HostTable::new()).unwrap_err();
    assert!(
        matches!(error, HostError::ModuleMissing { .. }),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(message.contains("does not exist"), "{message}");
    assert!(message.contains("`make policy.wasm`"), "{message}");
}

#[test]
fn module_older_than_a_source_is_stale() {
    let root = tempfile::tempdir().unwrap();
    fs::create_dir_all(root.path().join("src/nested")).unwrap();
    let module = root.path().join("policy.wasm");
    fs::write(&module, b"\0asm").unwrap();
    for file in ["Cargo.toml", "Cargo.lock", "src/lib.rs"] {
        fs::write(root.path().join(file), "").unwrap();
    }
    let source = root.path().join("src/nested/settings.rs");
    fs::write(&source, "").unwrap();
    let an_hour_ago = SystemTime::now() - Duration::from_secs(3600);
    for file in ["Cargo.toml", "Cargo.lock", "src/lib.rs"] {
        set_modified(&root.path().join(file), an_hour_ago);
    }
    set_modified(&module, an_hour_ago + Duration::from_secs(60));

    let error = ensure_fresh(&module, root.path()).unwrap_err();
    assert!(matches!(error, HostError::ModuleStale { .. }), "{error:?}");
    let message = error.to_string();
    assert!(message.contains("is older than"), "{message}");
    assert!(message.contains("settings.rs"), "{message}");
    assert!(message.contains("`make policy.wasm`"), "{message}");

    set_modified(&source, an_hour_ago);
    ensure_fresh(&module, root.path()).unwrap();
}

#[test]
fn module_that_is_not_wasm_is_a_load_error() {
    let dir = tempfile::tempdir().unwrap();
    let module = dir.path().join("policy.wasm");
    fs::write(&module, b"not a module").unwrap();
    let error = Policy::load(&module, HostTable::new()).unwrap_err();
    assert!(matches!(error, HostError::Load { .. }), "{error:?}");
}

#[test]
fn non_json_payload_does_not_crash_the_host() {
    let policy = common::policy();
    // The policy may refuse the payload or trap: either way the host answers.
    match policy.call_raw("validate", b"\xff not json {") {
        Ok(response) => assert!(!response.is_empty()),
        Err(error) => assert!(matches!(error, HostError::Guest { .. }), "{error:?}"),
    }
    // The instance is usable afterwards.
    assert_eq!(policy.protocol_version().unwrap(), "v1");
}

#[test]
fn unknown_guest_function_is_an_error() {
    let policy = common::policy();
    let error = policy.call_raw("no_such_function", b"{}").unwrap_err();
    assert!(matches!(error, HostError::Guest { .. }), "{error:?}");
    assert_eq!(policy.protocol_version().unwrap(), "v1");
}

#[test]
fn request_without_object_does_not_crash_the_host() {
    let policy = common::policy();
    let request = json!({"uid": "u", "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "operation": "CREATE"});
    let _ = policy.validate(&request, &json!({}));
    assert_eq!(policy.protocol_version().unwrap(), "v1");
}

fn set_modified(path: &std::path::Path, time: SystemTime) {
    fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(time)
        .unwrap();
}
