//! Not a policy: it answers "accepted" without reading the request. What an evaluation of
//! it costs is the host's share of every evaluation (copying the request in, calling the
//! module, reading the answer), which no policy can go below.

use wapc_guest::{CallResult, register_function};

#[unsafe(no_mangle)]
pub extern "C" fn wapc_init() {
    register_function("validate", validate);
    register_function("validate_settings", validate_settings);
    register_function("protocol_version", protocol_version);
}

fn validate(payload: &[u8]) -> CallResult {
    std::hint::black_box(payload);
    Ok(br#"{"accepted":true}"#.to_vec())
}

fn validate_settings(_: &[u8]) -> CallResult {
    Ok(br#"{"valid":true}"#.to_vec())
}

fn protocol_version(_: &[u8]) -> CallResult {
    Ok(br#""v1""#.to_vec())
}
