//! From the raw `validate` payload to a verdict.
//!
//! The request is read in two steps: first the envelope, skipping the object,
//! then only the pod fields the decision needs. The pod is never parsed into
//! a tree: a change is written into its text (`pod_text`).

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::cluster::HostCluster;
use crate::mutation::{self, Outcome};
use crate::settings::Settings;

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    request: Request<'a>,
    #[serde(default)]
    settings: Settings,
}

#[derive(Deserialize)]
struct Request<'a> {
    #[serde(borrow, default)]
    kind: Kind<'a>,
    #[serde(borrow, default)]
    operation: Cow<'a, str>,
    #[serde(borrow, default)]
    object: Option<&'a RawValue>,
}

#[derive(Deserialize, Default)]
struct Kind<'a> {
    #[serde(borrow, default)]
    kind: Cow<'a, str>,
}

pub fn evaluate(payload: &[u8]) -> Outcome {
    let envelope: Envelope = match serde_json::from_slice(payload) {
        Ok(e) => e,
        Err(e) => {
            return Outcome::unreadable(format!("the admission request could not be read: {e}"));
        }
    };
    let request = envelope.request;
    // Pod specs are immutable: only a creation can take an init container.
    if request.kind.kind != "Pod" || request.operation != "CREATE" {
        return Outcome::default();
    }
    let Some(object) = request.object else {
        return Outcome::unreadable("the Pod CREATE request carries no object");
    };
    let outcome = mutation::desired_pod(&envelope.settings, object.get(), &HostCluster);
    if outcome.pod.is_none() {
        return outcome;
    }
    // Settings are checked when the policy is loaded; this only guards a
    // host that skipped that step.
    let problems = envelope.settings.problems();
    if problems.is_empty() {
        outcome
    } else {
        Outcome::unreadable(format!(
            "the policy settings are invalid: {}",
            problems.join("; ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;
    use serde_json::{Value, json};

    fn payload(kind: &str, operation: &str, object: Value, settings: Value) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "request": {"uid": "u", "kind": {"group": "", "version": "v1", "kind": kind}, "operation": operation, "object": object},
            "settings": settings
        }))
        .unwrap()
    }

    fn modelcar_pod() -> Value {
        json!({"metadata": {}, "spec": {"containers": [{"name": "modelcar", "image": "m:1"}]}})
    }

    #[rstest]
    #[case::update(payload("Pod", "UPDATE", modelcar_pod(), json!({})))]
    #[case::delete(payload("Pod", "DELETE", Value::Null, json!({})))]
    #[case::connect(payload("Pod", "CONNECT", modelcar_pod(), json!({})))]
    #[case::deployment(payload("Deployment", "CREATE", modelcar_pod(), json!({})))]
    #[case::no_modelcar(payload("Pod", "CREATE", json!({"spec": {"containers": [{"name": "a", "image": "b"}]}}), json!({})))]
    #[case::no_settings(serde_json::to_vec(&json!({"request": {"kind": {"kind": "Pod"}, "operation": "CREATE", "object": {"spec": {}}}})).unwrap())]
    fn accepted_unchanged(#[case] payload: Vec<u8>) {
        assert_eq!(evaluate(&payload), Outcome::default());
    }

    #[test]
    fn pod_create_with_a_modelcar_is_mutated() {
        let outcome = evaluate(&payload("Pod", "CREATE", modelcar_pod(), json!({})));
        let object: Value = serde_json::from_str(outcome.pod.as_deref().unwrap()).unwrap();
        assert_eq!(object["spec"]["initContainers"][0]["image"], "m:1");
        assert_eq!(outcome.changes.len(), 1);
        assert!(outcome.warnings.is_empty());
    }

    #[rstest]
    #[case::not_json(b"{nope".to_vec(), "the admission request could not be read")]
    #[case::no_request(b"{\"settings\": {}}".to_vec(), "missing field `request`")]
    #[case::create_without_object(payload("Pod", "CREATE", Value::Null, json!({})), "the Pod CREATE request carries no object")]
    #[case::containers_not_array(payload("Pod", "CREATE", json!({"spec": {"containers": 1}}), json!({})), "the Pod's spec.containers is malformed")]
    #[case::image_not_string(payload("Pod", "CREATE", json!({"spec": {"containers": [{"name": "modelcar", "image": ["x"]}]}}), json!({})), "spec.containers[0].image is malformed")]
    #[case::modelcar_without_image(payload("Pod", "CREATE", json!({"spec": {"containers": [{"name": "modelcar"}]}}), json!({})), "modelcar container \"modelcar\" (spec.containers[0]) has no image")]
    #[case::invalid_settings(payload("Pod", "CREATE", modelcar_pod(), json!({"command": []})), "the policy settings are invalid: command is empty")]
    #[case::unreadable_settings(payload("Pod", "CREATE", modelcar_pod(), json!({"bogus": 1})), "unknown field `bogus`")]
    fn admitted_with_a_warning(#[case] payload: Vec<u8>, #[case] message: &str) {
        let outcome = evaluate(&payload);
        assert_eq!(outcome.pod, None);
        assert!(outcome.changes.is_empty());
        let [w] = outcome.warnings.as_slice() else {
            panic!("{outcome:?}")
        };
        assert!(w.contains(message), "{w}");
        assert!(w.ends_with("the object was admitted unchanged"));
    }

    #[test]
    fn invalid_settings_do_not_matter_where_nothing_would_change() {
        let p = payload(
            "Pod",
            "CREATE",
            json!({"spec": {"containers": []}}),
            json!({"command": []}),
        );
        assert_eq!(evaluate(&p), Outcome::default());
    }
}
