//! Outcomes as the ValidationResponse bytes Kubewarden's host expects.
//!
//! Written by hand around the pod's text, so the pod is not parsed and
//! serialized again; the field set is the SDK's `ValidationResponse`.

use crate::json_text;
use crate::mutation::Outcome;

/// The audit annotation that records what the policy changed. The API server
/// writes it into the request's audit event as `<webhook name>/prefetch`.
pub const AUDIT_KEY: &str = "prefetch";

/// Prefixes each warning: kubectl prints warnings without saying whose they are.
const WARNING_PREFIX: &str = "modelcar-prefetch: ";

pub fn encode(outcome: &Outcome) -> Vec<u8> {
    let mut out = String::with_capacity(
        160 + outcome.pod.as_ref().map_or(0, String::len)
            + outcome
                .changes
                .iter()
                .chain(&outcome.warnings)
                .map(String::len)
                .sum::<usize>(),
    );
    out.push_str(r#"{"accepted":true,"message":null,"code":null,"mutated_object":"#);
    out.push_str(outcome.pod.as_deref().unwrap_or("null"));
    out.push_str(r#","audit_annotations":"#);
    if outcome.changes.is_empty() {
        out.push_str("null");
    } else {
        out.push('{');
        out.push_str(&json_text::quoted(AUDIT_KEY));
        out.push(':');
        out.push_str(&json_text::quoted(&outcome.changes.join("; ")));
        out.push('}');
    }
    out.push_str(r#","warnings":"#);
    if outcome.warnings.is_empty() {
        out.push_str("null");
    } else {
        let warnings: Vec<String> = outcome
            .warnings
            .iter()
            .map(|w| json_text::quoted(&format!("{WARNING_PREFIX}{w}")))
            .collect();
        out.push('[');
        out.push_str(&warnings.join(","));
        out.push(']');
    }
    out.push('}');
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use kubewarden_policy_sdk::response::ValidationResponse;
    use serde_json::Value;
    use std::collections::HashMap;

    fn parse(bytes: &[u8]) -> Value {
        serde_json::from_slice(bytes).unwrap()
    }

    #[test]
    fn nothing_to_say_is_the_sdks_plain_accept() {
        let sdk = kubewarden_policy_sdk::accept_request().unwrap();
        assert_eq!(encode(&Outcome::default()), sdk);
    }

    #[test]
    fn a_mutation_is_the_sdks_mutate_response_with_its_audit_annotation() {
        let object = r#"{"spec":{"initContainers":[{"name":"x"}]},"n":1.5e300}"#;
        let ours = encode(&Outcome {
            pod: Some(object.into()),
            changes: vec!["added a".into(), "added \"b\"".into()],
            warnings: vec![],
        });
        let mut sdk = parse(
            &kubewarden_policy_sdk::mutate_request(serde_json::from_str(object).unwrap()).unwrap(),
        );
        sdk["audit_annotations"] = serde_json::json!({"prefetch": "added a; added \"b\""});
        assert_eq!(parse(&ours), sdk);
        let typed: ValidationResponse = serde_json::from_slice(&ours).unwrap();
        assert_eq!(
            typed.audit_annotations,
            Some(HashMap::from([(
                "prefetch".to_string(),
                "added a; added \"b\"".to_string()
            )]))
        );
    }

    #[test]
    fn warnings_travel_with_an_accept_and_say_whose_they_are() {
        let bytes = encode(&Outcome {
            pod: None,
            changes: vec![],
            warnings: vec!["w1".into(), "line\nbreak".into()],
        });
        let response: ValidationResponse = serde_json::from_slice(&bytes).unwrap();
        assert!(response.accepted && response.mutated_object.is_none());
        assert!(response.audit_annotations.is_none());
        assert_eq!(
            response.warnings,
            Some(vec![
                "modelcar-prefetch: w1".to_string(),
                "modelcar-prefetch: line\nbreak".to_string()
            ])
        );
    }
}
