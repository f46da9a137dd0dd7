//! Verdicts as the ValidationResponse bytes Kubewarden's host expects.

use kubewarden_policy_sdk::response::ValidationResponse;
use kubewarden_policy_sdk::{accept_request, mutate_request};
use wapc_guest::CallResult;

use crate::admission::Verdict;

pub fn encode(verdict: Verdict) -> CallResult {
    match verdict {
        Verdict::Accept => accept_request(),
        Verdict::Mutate { object, .. } => mutate_request(object),
        Verdict::AcceptWithWarning(warning) => Ok(serde_json::to_vec(&ValidationResponse {
            accepted: true,
            message: None,
            code: None,
            mutated_object: None,
            audit_annotations: None,
            warnings: Some(vec![warning]),
        })?),
    }
}
