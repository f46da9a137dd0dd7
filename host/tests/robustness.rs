//! The policy module against bad input, and the host against a module that traps: every
//! call ends in an answer or a reported error, never a crash of the host, and garbage sent
//! to `validate` is still accepted (the policy never blocks a pod).

mod common;

use modelcar_prefetch_host::{HostError, HostTable, Policy, fixture};
use serde_json::{Value, json};

fn accepted(policy: &Policy, payload: &[u8]) -> Value {
    let raw = policy
        .call_raw("validate", payload)
        .unwrap_or_else(|e| panic!("validate({:?}) failed: {e}", preview(payload)));
    let response: Value = serde_json::from_slice(&raw).unwrap();
    assert_eq!(response["accepted"], json!(true), "{response}");
    assert!(response.get("mutated_object").is_none_or(Value::is_null));
    response
}

fn preview(payload: &[u8]) -> String {
    String::from_utf8_lossy(&payload[..payload.len().min(80)]).into_owned()
}

#[test]
fn settings_payload_that_is_not_json_is_a_guest_error() {
    let policy = common::policy();
    for payload in [
        &b"\xff\xfe not json"[..],
        b"{\"mode\": ",
        b"",
        b"mode: auto",
    ] {
        match policy.call_raw("validate_settings", payload) {
            Err(HostError::Guest { operation, message }) => {
                assert_eq!(operation, "validate_settings");
                assert!(!message.is_empty());
            }
            other => panic!("{}: {other:?}", preview(payload)),
        }
        // The host replaced the failed instance: the next call works.
        assert_eq!(policy.protocol_version().unwrap(), "v1");
    }
}

#[test]
fn settings_that_are_json_but_not_a_map_are_refused_with_a_reason() {
    let policy = common::policy();
    for (settings, named) in [
        (json!("auto"), "settings"),
        (json!([1]), "settings"),
        (json!(7), "settings"),
        (json!({"mode": ["auto"]}), "mode: "),
    ] {
        let verdict = policy.validate_settings(&settings).unwrap();
        assert!(!verdict.valid, "{settings}: {verdict:?}");
        let message = verdict.message.unwrap_or_default();
        assert!(message.starts_with(named), "{settings}: {message}");
    }
    assert!(policy.validate_settings(&Value::Null).unwrap().valid);
}

#[test]
fn garbage_sent_to_validate_is_accepted_with_a_warning() {
    let policy = common::policy();
    let deep = "[".repeat(100_000);
    let deep_object = format!(
        r#"{{"request": {{"kind": {{"kind": "Pod"}}, "operation": "CREATE", "object": {deep}}}}}"#
    );
    let payloads: Vec<Vec<u8>> = vec![
        b"\xff\x00\x13garbage".to_vec(),
        Vec::new(),
        b"null".to_vec(),
        b"[]".to_vec(),
        b"{\"request\": 1}".to_vec(),
        br#"{"request": {"kind": {"kind": "Pod"}, "operation": "CREATE", "object": "pod"}}"#
            .to_vec(),
        br#"{"request": {"kind": {"kind": "Pod"}, "operation": "CREATE", "object": {"spec": {"containers": [{"name": "modelcar", "image": 1}]}}}}"#.to_vec(),
        deep.into_bytes(),
        deep_object.into_bytes(),
    ];
    for payload in &payloads {
        let response = accepted(&policy, payload);
        assert!(
            response["warnings"]
                .as_array()
                .is_some_and(|w| !w.is_empty()),
            "{}: {response}",
            preview(payload)
        );
    }
}

#[test]
fn corrupted_fixture_payloads_are_always_accepted() {
    let policy = common::policy();
    let payload = serde_json::to_vec(
        &json!({"request": fixture("kserve-predictor-v0.13-modelcar"), "settings": {}}),
    )
    .unwrap();
    // A fixed pseudo-random sequence (xorshift): the same 300 corruptions every run.
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..300 {
        let mut corrupted = payload.clone();
        for _ in 0..=(next() % 4) {
            let at = (next() % corrupted.len() as u64) as usize;
            match next() % 3 {
                0 => corrupted[at] = next() as u8,
                1 => corrupted.truncate(at.max(1)),
                _ => corrupted.insert(at, b"{}[]\":,\\0-e"[(next() % 11) as usize]),
            }
        }
        let raw = policy
            .call_raw("validate", &corrupted)
            .unwrap_or_else(|e| panic!("{}: {e}", preview(&corrupted)));
        let response: Value = serde_json::from_slice(&raw).unwrap();
        assert_eq!(response["accepted"], json!(true), "{response}");
    }
}

/// A waPC guest whose every call traps (`unreachable`), hand-assembled: the module exports
/// `memory` and `__guest_call`, which is all the host looks for.
const TRAPPING_MODULE: &[u8] = &[
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // \0asm, version 1
    0x01, 0x07, 0x01, 0x60, 0x02, 0x7f, 0x7f, 0x01, 0x7f, // type: (i32, i32) -> i32
    0x03, 0x02, 0x01, 0x00, // one function of that type
    0x05, 0x03, 0x01, 0x00, 0x01, // one memory, one page
    0x07, 0x19, 0x02, // two exports
    0x0c, b'_', b'_', b'g', b'u', b'e', b's', b't', b'_', b'c', b'a', b'l', b'l', 0x00, 0x00, 0x06,
    b'm', b'e', b'm', b'o', b'r', b'y', 0x02, 0x00, //
    0x0a, 0x05, 0x01, 0x03, 0x00, 0x00, 0x0b, // body: unreachable
];

#[test]
fn a_trapping_module_is_a_reported_error_and_the_host_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("trap.wasm");
    std::fs::write(&path, TRAPPING_MODULE).unwrap();
    let policy = Policy::load(&path, HostTable::new()).unwrap();
    for operation in ["validate", "validate_settings", "validate"] {
        match policy.call_raw(operation, b"{}") {
            Err(HostError::Guest {
                operation: op,
                message,
            }) => {
                assert_eq!(op, operation);
                assert!(!message.is_empty());
            }
            other => panic!("{operation}: {other:?}"),
        }
    }
    assert!(matches!(
        policy.validate(&json!({}), &json!({})),
        Err(HostError::Guest { .. })
    ));
    assert!(matches!(
        policy.validate_settings(&json!({})),
        Ok(verdict) if !verdict.valid
    ));
    // The real policy still runs in the same process.
    assert_eq!(common::policy().protocol_version().unwrap(), "v1");
}
