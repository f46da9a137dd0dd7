//! Raw `validate` payload bytes, as policy-server hands them to the module: the policy
//! answers every one of them, accepted, without a panic (a wasm trap) or an `Err` (both
//! make policy-server reject the request).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|payload: &[u8]| {
    let response = match modelcar_prefetch_policy::validate(payload) {
        Ok(r) => r,
        Err(e) => panic!("validate returned Err: {e}"),
    };
    let response: serde_json::Value =
        serde_json::from_slice(&response).expect("the response is a ValidationResponse");
    assert_eq!(
        response["accepted"],
        serde_json::Value::Bool(true),
        "{response}"
    );
});
