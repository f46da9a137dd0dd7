//! Modelcars that stay regular containers start first, and hold back the
//! containers after them until their model is linked.
//!
//! The kubelet starts a pod's regular containers one after another in spec
//! order, and runs each one's postStart hook before it starts the next
//! (kuberuntime's SyncPod). KServe appends its modelcar after the model
//! server, so the server starts first, finds no model and is restarted. A
//! modelcar moved to the front with a hook that waits for its link makes the
//! server start with its model there: what a native sidecar's startup probe
//! does, on every Kubernetes version, and for modelcars that must stay in
//! `spec.containers` (KServe's webhook finds its own there by name).

use std::borrow::Cow;

use crate::json_text::{self, Fields};
use crate::model_link;
use crate::pod_text::PodText;
use crate::view::PodView;

/// The annotation kubectl reads for `logs` and `exec` without `-c`: kept on
/// the container that was first, so that moving a modelcar changes nothing there.
pub const DEFAULT_CONTAINER_ANNOTATION: &str = "kubectl.kubernetes.io/default-container";

/// The new `spec.containers` (modelcars first, with their hooks; `moved`
/// left out) and the annotation to add, or `None` when no modelcar moves.
/// A modelcar with a postStart hook of its own (this policy's, on a pod
/// evaluated twice) keeps its place; one whose command does not show its
/// link keeps it too, with a warning.
pub fn containers<'a>(
    view: &PodView,
    text: &PodText<'a>,
    stays: &[usize],
    moved: &[usize],
    changes: &mut Vec<String>,
    warnings: &mut Vec<String>,
) -> Option<(Vec<Cow<'a, str>>, Option<String>)> {
    let mut first: Vec<(usize, Cow<'a, str>)> = Vec::with_capacity(stays.len());
    let mut notes = Vec::with_capacity(stays.len());
    for &index in stays {
        let Some(modelcar) = text.container(index) else {
            continue;
        };
        let name = modelcar.read::<String>("name").unwrap_or_default();
        let lifecycle = modelcar.raw("lifecycle").and_then(Fields::parse);
        if lifecycle.as_ref().is_some_and(has_post_start) {
            continue;
        }
        let Some(link) = model_link::link(&modelcar) else {
            warnings.push(format!(
                "modelcar {name} keeps its place in spec.containers: its command does not show \
                 where it links the model, so nothing can hold the model server until it does"
            ));
            continue;
        };
        let hook = model_link::wait_hook(&link);
        let lifecycle = lifecycle.unwrap_or_default().with(&[("postStart", hook)]);
        notes.push(format!(
            "modelcar {name} starts first: its postStart hook holds the containers after it \
             until {} exists",
            link.path
        ));
        first.push((
            index,
            Cow::Owned(modelcar.with(&[("lifecycle", lifecycle)])),
        ));
    }
    if first.is_empty() {
        return None;
    }
    let count = view.containers().len();
    let rest: Vec<Cow<'a, str>> = (0..count)
        .filter(|i| !moved.contains(i) && !first.iter().any(|(f, _)| f == i))
        .filter_map(|i| text.container_text(i).map(Cow::Borrowed))
        .collect();
    let was_first = (0..count).find(|i| !moved.contains(i));
    let annotation = match was_first {
        Some(i) if first[0].0 != i && view.annotation(DEFAULT_CONTAINER_ANNOTATION).is_none() => {
            // Without a name to keep, or a place to keep it, kubectl would change its mind.
            let name = view.containers()[i].name.as_deref();
            Some(name.filter(|_| view.spans.metadata.is_some())?.to_string())
        }
        _ => None,
    };
    changes.append(&mut notes);
    let items = first
        .into_iter()
        .map(|(_, text)| text)
        .chain(rest)
        .collect();
    Some((items, annotation))
}

fn has_post_start(lifecycle: &Fields) -> bool {
    lifecycle
        .raw("postStart")
        .is_some_and(|hook| !json_text::is_null(hook))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model_link::{self, Link};
    use rstest::rstest;
    use serde_json::{Value, json};

    const KSERVE_ARGS: fn() -> Value = || {
        json!([
            "sh",
            "-c",
            "ln -s /proc/$$$$/root/models /mnt/models && sleep infinity"
        ])
    };

    fn modelcar(name: &str) -> Value {
        json!({"name": name, "image": "m:1", "args": KSERVE_ARGS()})
    }

    fn server(name: &str) -> Value {
        json!({"name": name, "image": "s:1"})
    }

    /// (container names in the new order and the annotation, how many changes, warnings)
    type Outcome = (Option<(Vec<String>, Option<String>)>, usize, Vec<String>);

    fn order(pod: Value, stays: &[usize], moved: &[usize]) -> Outcome {
        let text = pod.to_string();
        let view = PodView::from_json(&text).unwrap();
        let pod_text = PodText::new(&text, &view.spans).unwrap();
        let (mut changes, mut warnings) = (Vec::new(), Vec::new());
        let got = containers(&view, &pod_text, stays, moved, &mut changes, &mut warnings);
        let got = got.map(|(items, annotation)| {
            let names = items
                .iter()
                .map(|c| serde_json::from_str::<Value>(c).unwrap()["name"].to_string())
                .map(|n| n.trim_matches('"').to_string())
                .collect();
            (names, annotation)
        });
        (got, changes.len(), warnings)
    }

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn pod(containers: Vec<Value>) -> Value {
        json!({"metadata": {"name": "p"}, "spec": {"containers": containers}})
    }

    #[rstest]
    #[case::kserve_appended_last(
        pod(vec![server("kserve-container"), modelcar("modelcar")]), &[1], &[],
        (Some((names(&["modelcar", "kserve-container"]), Some("kserve-container".into()))), 1, vec![])
    )]
    #[case::already_first_gets_its_hook(
        pod(vec![modelcar("modelcar"), server("s")]), &[0], &[],
        (Some((names(&["modelcar", "s"]), None)), 1, vec![])
    )]
    #[case::before_istio_proxy(
        pod(vec![server("istio-proxy"), server("kserve-container"), modelcar("modelcar")]), &[2], &[],
        (Some((names(&["modelcar", "istio-proxy", "kserve-container"]), Some("istio-proxy".into()))), 1, vec![])
    )]
    #[case::two_modelcars_in_their_order(
        pod(vec![server("s"), modelcar("modelcar-1"), modelcar("modelcar")]), &[1, 2], &[],
        (Some((names(&["modelcar-1", "modelcar", "s"]), Some("s".into()))), 2, vec![])
    )]
    #[case::default_container_already_chosen(
        json!({"metadata": {"annotations": {DEFAULT_CONTAINER_ANNOTATION: "s"}}, "spec": {"containers": [server("s"), modelcar("modelcar")]}}), &[1], &[],
        (Some((names(&["modelcar", "s"]), None)), 1, vec![])
    )]
    #[case::moved_sidecar_left_out(
        pod(vec![modelcar("modelcar-1"), server("s"), modelcar("modelcar")]), &[2], &[0],
        (Some((names(&["modelcar", "s"]), Some("s".into()))), 1, vec![])
    )]
    #[case::own_post_start_keeps_its_place(
        pod(vec![server("s"), json!({"name": "modelcar", "image": "m", "args": KSERVE_ARGS(), "lifecycle": {"postStart": {"exec": {"command": ["true"]}}}})]), &[1], &[],
        (None, 0, vec![])
    )]
    #[case::unknown_command_keeps_its_place(
        pod(vec![server("s"), json!({"name": "modelcar", "image": "m", "args": ["serve"]})]), &[1], &[],
        (None, 0, vec!["modelcar modelcar keeps its place in spec.containers: its command does not show where it links the model, so nothing can hold the model server until it does".to_string()])
    )]
    #[case::no_metadata_to_keep_kubectl_default(
        json!({"spec": {"containers": [server("s"), modelcar("modelcar")]}}), &[1], &[],
        (None, 0, vec![])
    )]
    #[case::unnamed_first_container(
        pod(vec![json!({"image": "s"}), modelcar("modelcar")]), &[1], &[],
        (None, 0, vec![])
    )]
    fn modelcars_start_first(
        #[case] pod: Value,
        #[case] stays: &[usize],
        #[case] moved: &[usize],
        #[case] expected: Outcome,
    ) {
        assert_eq!(order(pod, stays, moved), expected);
    }

    #[test]
    fn the_hook_joins_the_modelcars_own_lifecycle() {
        let mut m = modelcar("modelcar");
        m["lifecycle"] = json!({"preStop": {"exec": {"command": ["sh", "-c", "sleep 5"]}}});
        let text = pod(vec![server("s"), m.clone()]).to_string();
        let view = PodView::from_json(&text).unwrap();
        let pod_text = PodText::new(&text, &view.spans).unwrap();
        let (items, _) = containers(&view, &pod_text, &[1], &[], &mut vec![], &mut vec![]).unwrap();
        let first: Value = serde_json::from_str(&items[0]).unwrap();
        let link = Link {
            shell: "sh".into(),
            path: "/mnt/models".into(),
        };
        let hook: Value = serde_json::from_str(&model_link::wait_hook(&link)).unwrap();
        m["lifecycle"]["postStart"] = hook;
        assert_eq!(first, m);
    }
}
