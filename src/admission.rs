//! From the raw `validate` payload to a verdict.
//!
//! The envelope is walked with the scanner, which stops as soon as the request
//! is known not to be a Pod creation: a Deployment is answered without its
//! object being read. A pod is read once, as the walk passes over it: the
//! fields the decision needs and where the lists a change edits sit (`view`).
//! The pod is never parsed into a tree: a change is written into its text
//! (`pod_text`).

use crate::cluster::HostCluster;
use crate::mutation::{self, Outcome};
use crate::scan::{Flow, Scan, Scanner};
use crate::settings::Settings;
use crate::view::PodView;

/// What a Pod creation's payload holds, as text.
#[derive(Default)]
struct PodCreation<'a> {
    /// The object's text and what the decision needs of it, read as it was passed over.
    pod: Option<ReadPod<'a>>,
    settings: Option<&'a [u8]>,
}

type ReadPod<'a> = (&'a [u8], Result<PodView<'a>, String>);

pub fn evaluate(payload: &[u8]) -> Outcome {
    let creation = match pod_creation(payload) {
        Ok(Some(c)) => c,
        Ok(None) => return Outcome::default(),
        Err(e) => return Outcome::unreadable(e),
    };
    let Some((object, view)) = creation.pod else {
        return Outcome::unreadable("the Pod CREATE request carries no object");
    };
    let settings = match creation.settings.map(serde_json::from_slice::<Settings>) {
        None => Settings::default(),
        Some(Ok(s)) => s,
        Some(Err(e)) => {
            return Outcome::unreadable(format!("the policy settings could not be read: {e}"));
        }
    };
    let outcome = mutation::desired_pod(&settings, object, view, &HostCluster);
    if outcome.pod.is_none() {
        return outcome;
    }
    // Settings are checked when the policy is loaded; this only guards a
    // host that skipped that step.
    let problems = settings.problems();
    if problems.is_empty() {
        outcome
    } else {
        Outcome::unreadable(format!(
            "the policy settings are invalid: {}",
            problems.join("; ")
        ))
    }
}

fn unreadable(e: impl std::fmt::Display) -> String {
    format!("the admission request could not be read: {e}")
}

/// The Pod creation in `payload` (`{"request": ..., "settings": ...}`), or
/// `None` as soon as `request.kind.kind`, `request.operation` or a non-null
/// `request.oldObject` says otherwise: pod specs are immutable, so only a
/// creation can take an init container.
fn pod_creation(payload: &[u8]) -> Result<Option<PodCreation<'_>>, String> {
    let mut found = PodCreation::default();
    let (mut request, mut kind, mut operation) = (false, false, false);
    let mut scanner = Scanner::new(payload);
    let flow = scanner
        .object(|s, key| {
            if key.is("settings") {
                found.settings = Some(s.value()?).filter(|v| *v != b"null");
                return Ok(Flow::Continue);
            }
            if !key.is("request") {
                s.value()?;
                return Ok(Flow::Continue);
            }
            request = true;
            s.object(|s, key| {
                if key.is("kind") {
                    kind = is_pod_kind(s)?;
                    return Ok(if kind { Flow::Continue } else { Flow::Stop });
                }
                if key.is("operation") {
                    operation = s.string_is("CREATE")?;
                    return Ok(if operation {
                        Flow::Continue
                    } else {
                        Flow::Stop
                    });
                }
                // Only UPDATE and DELETE carry the old object: a creation has none.
                if key.is("oldObject") && s.peek() != Some(b'n') {
                    return Ok(Flow::Stop);
                }
                if key.is("object") {
                    found.pod = object(s)?;
                } else {
                    s.value()?;
                }
                Ok(Flow::Continue)
            })
        })
        .and_then(|flow| match flow {
            Flow::Continue => scanner.end().map(|()| flow),
            Flow::Stop => Ok(flow),
        })
        .map_err(unreadable)?;
    if flow == Flow::Continue && !request {
        return Err(unreadable("missing field `request`"));
    }
    Ok((flow == Flow::Continue && kind && operation).then_some(found))
}

/// `request.object`, read for the decision as it is passed over: a pod is
/// read once whatever the request turns out to be. Where the view cannot be
/// read, the value is scanned again so that the walk goes on; why it could not
/// matters only if the request is a Pod creation that may need a change.
fn object<'a>(s: &mut Scanner<'a>) -> Scan<Option<ReadPod<'a>>> {
    s.peek();
    let start = s.position();
    let view = PodView::read(s);
    if view.is_err() {
        s.rewind(start);
        s.value()?;
    }
    let text = &s.source()[start..s.position()];
    Ok((text != b"null").then_some((text, view)))
}

/// `request.kind`: `{"group": ..., "version": ..., "kind": "Pod"}`.
fn is_pod_kind(s: &mut Scanner) -> Scan<bool> {
    if s.peek() != Some(b'{') {
        s.value()?;
        return Ok(false);
    }
    let mut pod = false;
    s.object(|s, key| {
        if key.is("kind") {
            pod = s.string_is("Pod")?;
        } else {
            s.value()?;
        }
        Ok(Flow::Continue)
    })?;
    Ok(pod)
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
    #[case::old_object_before_operation(br#"{"request": {"kind": {"kind": "Pod"}, "object": {"spec": {"containers": [{"name": "modelcar", "image": "m"}]}}, "oldObject": {}, "operation": "CREATE"}}"#.to_vec())]
    #[case::malformed_without_modelcar(payload("Pod", "CREATE", json!({"spec": {"containers": {"name": "a"}}}), json!({})))]
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
    #[case::request_not_an_object(b"{\"request\": 1}".to_vec(), "expected `{` at byte 12")]
    #[case::object_not_an_object(payload("Pod", "CREATE", json!("pod"), json!({})), "the object is not a Pod")]
    #[case::create_without_object(payload("Pod", "CREATE", Value::Null, json!({})), "the Pod CREATE request carries no object")]
    #[case::containers_not_array(payload("Pod", "CREATE", json!({"spec": {"containers": {"name": "modelcar"}}}), json!({})), "the Pod's spec.containers is malformed")]
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
