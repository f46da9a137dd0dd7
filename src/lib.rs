//! modelcar-prefetch: a Kubewarden policy that makes the kubelet pull a KServe
//! modelcar image before the model server starts. See README.md.

use kubewarden_policy_sdk::{protocol_version_guest, validate_settings};
use wapc_guest::{CallResult, register_function};

mod admission;
mod cluster;
mod image;
mod init_user;
mod json_text;
mod kubelet;
mod label_selector;
mod log;
mod model_images;
mod model_link;
mod mutation;
mod names;
mod pod_text;
mod prefetch_container;
mod quantity;
mod response;
mod scan;
mod security;
mod settings;
mod sidecar;
mod start_order;
mod view;

#[cfg(test)]
mod fixture_tests;
#[cfg(test)]
mod limit_tests;
#[cfg(test)]
mod memory_tests;
#[cfg(test)]
mod proptests;
#[cfg(test)]
mod run_as_non_root_tests;

use settings::Settings;

#[unsafe(no_mangle)]
pub extern "C" fn wapc_init() {
    register_function("validate", validate);
    register_function("validate_settings", validate_settings::<Settings>);
    register_function("protocol_version", protocol_version_guest);
}

/// The waPC `validate` function: evaluates the raw payload (`{"request": ..., "settings": ...}`).
/// Never returns `Err` and never panics, whatever the bytes: an `Err` or a trap makes
/// policy-server reject the request. Public for the native fuzz target (fuzz/).
///
/// Only problems are logged. What a mutation did travels in the response's audit
/// annotation: a log call costs the host a JSON parse and a log line per pod.
pub fn validate(payload: &[u8]) -> CallResult {
    let outcome = admission::evaluate(payload);
    for warning in &outcome.warnings {
        log::warning(warning);
    }
    Ok(response::encode(&outcome))
}
