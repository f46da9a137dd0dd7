//! Verdicts as the ValidationResponse bytes Kubewarden's host expects.

use kubewarden_policy_sdk::response::ValidationResponse;
use kubewarden_policy_sdk::{accept_request, mutate_request};
use wapc_guest::CallResult;

use crate::admission::Verdict;

/// What to answer if a response cannot be serialized: an `Err` would make
/// policy-server reject the request, and this policy never blocks a pod.
const PLAIN_ACCEPT: &[u8] = br#"{"accepted":true,"message":null,"code":null,"mutated_object":null,"audit_annotations":null,"warnings":null}"#;

pub fn encode(verdict: Verdict) -> CallResult {
    let encoded = match verdict {
        Verdict::Accept => accept_request(),
        Verdict::Mutate { object, .. } => mutate_request(object),
        Verdict::AcceptWithWarning(warning) => serde_json::to_vec(&ValidationResponse {
            accepted: true,
            message: None,
            code: None,
            mutated_object: None,
            audit_annotations: None,
            warnings: Some(vec![warning]),
        })
        .map_err(Into::into),
    };
    encoded.or_else(|_| Ok(PLAIN_ACCEPT.to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fallback_is_the_sdks_plain_accept() {
        assert_eq!(PLAIN_ACCEPT, accept_request().unwrap().as_slice());
    }

    #[test]
    fn warnings_travel_with_an_accept() {
        let bytes = encode(Verdict::AcceptWithWarning("w".into())).unwrap();
        let response: ValidationResponse = serde_json::from_slice(&bytes).unwrap();
        assert!(response.accepted && response.mutated_object.is_none());
        assert_eq!(response.warnings, Some(vec!["w".to_string()]));
    }
}
