//! The mutation as a pure function: (settings, pod) -> the desired pod.

use serde_json::{Map, Value};

use crate::model_images::{self, ModelImage, Origin};
use crate::names::NameAllocator;
use crate::prefetch_container;
use crate::security::PodSecurity;
use crate::settings::Settings;
use crate::view::PodView;

#[derive(Debug, PartialEq)]
pub enum Outcome {
    /// Nothing to do: the pod goes through as it came.
    Unchanged,
    /// The desired pod, and one line per change for the log.
    Mutated { pod: Value, changes: Vec<String> },
    /// The pod could not be understood; it goes through unchanged.
    Unreadable(String),
}

/// The pod with an init container appended for every model image that no
/// init container pulls yet. Everything else is left as it is.
pub fn desired_pod(settings: &Settings, mut pod: Value) -> Outcome {
    let (containers, changes) = {
        let view = match PodView::from_value(&pod) {
            Ok(v) => v,
            Err(e) => return Outcome::Unreadable(e),
        };
        let wanted = match model_images::needing_prefetch(settings, &view) {
            Ok(w) if w.is_empty() => return Outcome::Unchanged,
            Ok(w) => w,
            Err(e) => return Outcome::Unreadable(e),
        };
        let Some(spec) = pod.get("spec").and_then(Value::as_object) else {
            return Outcome::Unreadable("the Pod has no spec".into());
        };
        prefetch_containers(settings, &view, spec, &wanted)
    };
    if containers.is_empty() {
        return Outcome::Unchanged;
    }
    let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) else {
        return Outcome::Unreadable("the Pod has no spec".into());
    };
    match spec
        .entry("initContainers")
        .or_insert_with(|| Value::Array(Vec::new()))
    {
        Value::Array(init) => init.extend(containers),
        slot @ Value::Null => *slot = Value::Array(containers),
        _ => return Outcome::Unreadable("the Pod's spec.initContainers is not a list".into()),
    }
    Outcome::Mutated { pod, changes }
}

fn prefetch_containers(
    settings: &Settings,
    view: &PodView,
    spec: &Map<String, Value>,
    wanted: &[ModelImage],
) -> (Vec<Value>, Vec<String>) {
    let security = PodSecurity::of(spec);
    let pod_containers = spec.get("containers").and_then(Value::as_array);
    let mut names = NameAllocator::new(view.container_names());
    let mut containers = Vec::with_capacity(wanted.len());
    let mut changes = Vec::with_capacity(wanted.len());
    for m in wanted {
        let Some(name) = names.next(&settings.init_container_name) else {
            changes.push(format!(
                "no free init container name is left for image {}; it is not pre-pulled",
                m.image
            ));
            break;
        };
        let (modelcar, source) = match m.origin {
            Origin::Container { index } => (
                pod_containers
                    .and_then(|c| c.get(index))
                    .and_then(Value::as_object),
                format!("modelcar container spec.containers[{index}]"),
            ),
            Origin::Annotation { key } => (None, format!("annotation {key}")),
        };
        changes.push(format!(
            "added init container {name} to pre-pull {} (from {source})",
            m.image
        ));
        containers.push(prefetch_container::build(
            settings, name, m.image, modelcar, &security,
        ));
    }
    (containers, changes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;
    use serde_json::json;

    const KSERVE: &str = "internal.serving.kserve.io/storage-initializer-sourceuri";

    fn mutate(settings: Value, pod: Value) -> Outcome {
        desired_pod(&Settings::from_value(&settings), pod)
    }

    fn added_names(outcome: &Outcome) -> Vec<String> {
        let Outcome::Mutated { pod, .. } = outcome else {
            panic!("not mutated: {outcome:?}")
        };
        pod["spec"]["initContainers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap().to_string())
            .collect()
    }

    #[test]
    fn appends_after_existing_init_containers_and_keeps_everything_else() {
        let pod = json!({
            "metadata": {"generateName": "p-", "creationTimestamp": null, "annotations": {KSERVE: "oci://m:1"}},
            "spec": {
                "futureField": {"x": 1},
                "initContainers": [{"name": "istio-init", "image": "proxy"}],
                "containers": [{"name": "kserve-container", "image": "srv", "unknown": true}]
            },
            "status": {}
        });
        let Outcome::Mutated { pod: out, changes } = mutate(json!({}), pod.clone()) else {
            panic!()
        };
        let mut expected = pod;
        expected["spec"]["initContainers"]
            .as_array_mut()
            .unwrap()
            .push(prefetch_container::build(
                &Settings::default(),
                "modelcar-prefetch".into(),
                "m:1",
                None,
                &PodSecurity::default(),
            ));
        assert_eq!(out, expected);
        assert_eq!(
            changes,
            [format!(
                "added init container modelcar-prefetch to pre-pull m:1 (from annotation {KSERVE})"
            )]
        );
    }

    #[rstest]
    #[case::creates_the_list(json!(null))]
    #[case::fills_an_empty_list(json!([]))]
    fn init_container_list_is_created_when_absent(#[case] init: Value) {
        let mut pod = json!({"spec": {"containers": [{"name": "modelcar", "image": "m"}]}});
        if !init.is_null() {
            pod["spec"]["initContainers"] = init;
        }
        assert_eq!(added_names(&mutate(json!({}), pod)), ["modelcar-prefetch"]);
    }

    #[rstest]
    #[case::one_per_image(
        json!({}),
        json!({"spec": {"containers": [{"name": "modelcar", "image": "a"}, {"name": "modelcar-1", "image": "b"}]}}),
        vec!["modelcar-prefetch", "modelcar-prefetch-1"]
    )]
    #[case::name_taken_by_a_container(
        json!({"modelcarContainerNames": ["modelcar"]}),
        json!({"spec": {"containers": [{"name": "modelcar-prefetch", "image": "x"}, {"name": "modelcar", "image": "a"}]}}),
        vec!["modelcar-prefetch-1"]
    )]
    #[case::name_taken_by_an_ephemeral_container(
        json!({}),
        json!({"spec": {"containers": [{"name": "modelcar", "image": "a"}], "ephemeralContainers": [{"name": "modelcar-prefetch"}]}}),
        vec!["modelcar-prefetch-1"]
    )]
    #[case::name_taken_by_an_init_container(
        json!({}),
        json!({"spec": {"containers": [{"name": "modelcar", "image": "a"}], "initContainers": [{"name": "modelcar-prefetch", "image": "other"}]}}),
        vec!["modelcar-prefetch-1"]
    )]
    #[case::custom_name(
        json!({"initContainerName": "pull-model"}),
        json!({"spec": {"containers": [{"name": "modelcar", "image": "a"}, {"name": "modelcar-1", "image": "b"}]}}),
        vec!["pull-model", "pull-model-1"]
    )]
    fn names_are_unique(#[case] settings: Value, #[case] pod: Value, #[case] expected: Vec<&str>) {
        let out = added_names(&mutate(settings, pod.clone()));
        let existing = pod["spec"]["initContainers"].as_array().map_or(0, Vec::len);
        assert_eq!(out[existing..], expected);
    }

    #[rstest]
    #[case::no_modelcar(json!({"spec": {"containers": [{"name": "nginx", "image": "nginx"}]}}))]
    #[case::pre_pulled(json!({"spec": {"containers": [{"name": "modelcar", "image": "m"}], "initContainers": [{"name": "modelcar-init", "image": "m"}]}}))]
    #[case::empty_pod(json!({}))]
    fn unchanged(#[case] pod: Value) {
        assert_eq!(mutate(json!({}), pod), Outcome::Unchanged);
    }

    #[rstest]
    #[case::not_an_object(json!(null), "the object is not a Pod")]
    #[case::containers_not_a_list(json!({"spec": {"containers": "modelcar"}}), "spec.containers is malformed")]
    #[case::modelcar_without_image(json!({"spec": {"containers": [{"name": "modelcar", "image": null}]}}), "has no image")]
    #[case::init_containers_not_a_list(
        json!({"spec": {"containers": [{"name": "modelcar", "image": "m"}], "initContainers": {"a": 1}}}),
        "spec.initContainers is malformed"
    )]
    #[case::annotation_but_no_spec(json!({"metadata": {"annotations": {KSERVE: "oci://m"}}}), "the Pod has no spec")]
    fn unreadable(#[case] pod: Value, #[case] message: &str) {
        match mutate(json!({}), pod) {
            Outcome::Unreadable(m) => assert!(m.contains(message), "{m}"),
            other => panic!("{other:?}"),
        }
    }

    #[rstest]
    #[case::annotation(json!({"metadata": {"annotations": {KSERVE: "oci://m:1"}}, "spec": {"containers": [{"name": "s", "image": "s"}]}}))]
    #[case::two_modelcars(json!({"spec": {"containers": [{"name": "modelcar", "image": "a"}, {"name": "modelcar-7", "image": "b"}]}}))]
    fn evaluating_the_result_again_changes_nothing(#[case] pod: Value) {
        let Outcome::Mutated { pod, .. } = mutate(json!({}), pod) else {
            panic!()
        };
        assert_eq!(mutate(json!({}), pod), Outcome::Unchanged);
    }
}
