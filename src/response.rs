//! Verdicts as the ValidationResponse bytes Kubewarden's host expects.

use kubewarden_policy_sdk::accept_request;
use kubewarden_policy_sdk::response::ValidationResponse;
use wapc_guest::CallResult;

use crate::admission::Verdict;

/// What to answer if a response cannot be serialized: an `Err` would make
/// policy-server reject the request, and this policy never blocks a pod.
const PLAIN_ACCEPT: &[u8] = br#"{"accepted":true,"message":null,"code":null,"mutated_object":null,"audit_annotations":null,"warnings":null}"#;

/// The SDK's `mutate_request` response, written around the pod's text so the
/// pod is not parsed and serialized again: `object` is JSON already.
fn mutated(object: &str) -> Vec<u8> {
    const HEAD: &str = r#"{"accepted":true,"message":null,"code":null,"mutated_object":"#;
    const TAIL: &str = r#","audit_annotations":null,"warnings":null}"#;
    let mut out = Vec::with_capacity(HEAD.len() + object.len() + TAIL.len());
    out.extend_from_slice(HEAD.as_bytes());
    out.extend_from_slice(object.as_bytes());
    out.extend_from_slice(TAIL.as_bytes());
    out
}

pub fn encode(verdict: Verdict) -> CallResult {
    let encoded = match verdict {
        Verdict::Accept => accept_request(),
        Verdict::Mutate { object, .. } => Ok(mutated(&object)),
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
    fn a_mutation_is_the_sdks_mutate_response() {
        let object = r#"{"spec":{"initContainers":[{"name":"x"}]},"n":1.5e300}"#;
        let sdk =
            kubewarden_policy_sdk::mutate_request(serde_json::from_str(object).unwrap()).unwrap();
        let ours = encode(Verdict::Mutate {
            object: object.into(),
            changes: vec![],
        })
        .unwrap();
        let parse = |b: &[u8]| serde_json::from_slice::<serde_json::Value>(b).unwrap();
        assert_eq!(parse(&ours), parse(&sdk));
    }

    #[test]
    fn warnings_travel_with_an_accept() {
        let bytes = encode(Verdict::AcceptWithWarning("w".into())).unwrap();
        let response: ValidationResponse = serde_json::from_slice(&bytes).unwrap();
        assert!(response.accepted && response.mutated_object.is_none());
        assert_eq!(response.warnings, Some(vec!["w".to_string()]));
    }
}
