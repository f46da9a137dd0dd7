//! The floor of any mutation: parse the request with the SDK, change one label and
//! return the whole object.

use kubewarden_policy_sdk::request::ValidationRequest;
use kubewarden_policy_sdk::settings::Validatable;
use kubewarden_policy_sdk::{mutate_request, protocol_version_guest, validate_settings};
use serde::Deserialize;
use serde_json::Value;
use wapc_guest::{CallResult, register_function};

#[derive(Deserialize, Default)]
struct Settings {}

impl Validatable for Settings {
    fn validate(&self) -> Result<(), String> {
        Ok(())
    }
}

#[unsafe(no_mangle)]
pub extern "C" fn wapc_init() {
    register_function("validate", validate);
    // kwctl and policy-server validate the settings before any evaluation.
    register_function("validate_settings", validate_settings::<Settings>);
    register_function("protocol_version", protocol_version_guest);
}

fn validate(payload: &[u8]) -> CallResult {
    let request = ValidationRequest::<Settings>::new(payload)?;
    let mut object = request.request.object;
    object["metadata"]["labels"]["benchmark.modelcar-prefetch/mutated"] =
        Value::String("true".to_owned());
    mutate_request(object)
}
