//! Which model images a pod needs pulled before its model server starts.

use crate::image;
use crate::names;
use crate::settings::Settings;
use crate::view::PodView;

/// A model image that no init container pulls yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelImage<'a> {
    pub image: &'a str,
    pub origin: Origin<'a>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin<'a> {
    /// `spec.containers[index]`, a modelcar.
    Container { index: usize },
    /// A storage-URI annotation (what a policy running before KServe sees).
    Annotation { key: &'a str },
}

/// Model images in pod order (modelcar containers, then annotations in
/// settings order), each once, leaving out those an init container already
/// uses. Fails when a modelcar container has no image to pull.
pub fn needing_prefetch<'a>(
    settings: &'a Settings,
    pod: &'a PodView<'a>,
) -> Result<Vec<ModelImage<'a>>, String> {
    let mut found: Vec<ModelImage<'a>> = Vec::new();
    let mut add = |image: &'a str, origin| {
        let pulled_already = pod
            .init_containers()
            .iter()
            .any(|c| c.image.as_deref() == Some(image));
        if !pulled_already && !found.iter().any(|m| m.image == image) {
            found.push(ModelImage { image, origin });
        }
    };
    for (index, c) in pod.containers().iter().enumerate() {
        let Some(name) = c.name.as_deref() else {
            continue;
        };
        if !names::matches_any(&settings.modelcar_container_names, name) {
            continue;
        }
        match c.image.as_deref() {
            Some(image) if !image.is_empty() => add(image, Origin::Container { index }),
            _ => {
                return Err(format!(
                    "modelcar container {name:?} (spec.containers[{index}]) has no image"
                ));
            }
        }
    }
    for key in &settings.storage_uri_annotations {
        if let Some(image) = pod.annotation(key).and_then(image::from_storage_uri) {
            add(image, Origin::Annotation { key });
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;
    use serde_json::{Value, json};

    const KSERVE: &str = "internal.serving.kserve.io/storage-initializer-sourceuri";

    fn images(settings: Value, pod: Value) -> Result<Vec<(String, String)>, String> {
        let settings = Settings::from_value(&settings);
        let view = PodView::from_value(&pod)?;
        let found = needing_prefetch(&settings, &view)?;
        Ok(found
            .into_iter()
            .map(|m| {
                let origin = match m.origin {
                    Origin::Container { index } => format!("containers[{index}]"),
                    Origin::Annotation { key } => key.to_string(),
                };
                (m.image.to_string(), origin)
            })
            .collect())
    }

    fn pod(annotations: Value, containers: Value, init: Value) -> Value {
        json!({"metadata": {"annotations": annotations}, "spec": {"containers": containers, "initContainers": init}})
    }

    fn found(list: &[(&str, &str)]) -> Result<Vec<(String, String)>, String> {
        Ok(list
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect())
    }

    #[rstest]
    #[case::modelcar_container(
        json!({}),
        pod(json!({}), json!([{"name": "kserve-container", "image": "srv"}, {"name": "modelcar", "image": "m:1"}]), json!([])),
        found(&[("m:1", "containers[1]")])
    )]
    #[case::numbered_modelcars(
        json!({}),
        pod(json!({}), json!([{"name": "modelcar", "image": "a"}, {"name": "modelcar-1", "image": "b"}]), json!(null)),
        found(&[("a", "containers[0]"), ("b", "containers[1]")])
    )]
    #[case::annotation_oci(
        json!({}),
        pod(json!({KSERVE: "oci://quay.io/m:1"}), json!([{"name": "kserve-container", "image": "srv"}]), json!(null)),
        found(&[("quay.io/m:1", KSERVE)])
    )]
    #[case::annotation_oci_modelcar(
        json!({}),
        pod(json!({KSERVE: "oci+modelcar://quay.io/m:1"}), json!([]), json!(null)),
        found(&[("quay.io/m:1", KSERVE)])
    )]
    #[case::annotation_other_scheme(
        json!({}),
        pod(json!({KSERVE: "s3://bucket/model"}), json!([]), json!(null)),
        found(&[])
    )]
    #[case::annotation_native_image_volume(
        json!({}),
        pod(json!({KSERVE: "oci+native://quay.io/m:1"}), json!([]), json!(null)),
        found(&[])
    )]
    #[case::same_image_container_and_annotation_once(
        json!({}),
        pod(json!({KSERVE: "oci://quay.io/m:1"}), json!([{"name": "modelcar", "image": "quay.io/m:1"}]), json!(null)),
        found(&[("quay.io/m:1", "containers[0]")])
    )]
    #[case::same_image_twice_once(
        json!({}),
        pod(json!({}), json!([{"name": "modelcar", "image": "m"}, {"name": "modelcar-1", "image": "m"}]), json!(null)),
        found(&[("m", "containers[0]")])
    )]
    #[case::images_compared_exactly(
        json!({}),
        pod(json!({}), json!([{"name": "modelcar", "image": "m"}, {"name": "modelcar-1", "image": "docker.io/library/m"}]), json!(null)),
        found(&[("m", "containers[0]"), ("docker.io/library/m", "containers[1]")])
    )]
    #[case::already_pre_pulled_by_kserve(
        json!({}),
        pod(json!({KSERVE: "oci://m:1"}), json!([{"name": "modelcar", "image": "m:1"}]), json!([{"name": "modelcar-init", "image": "m:1"}])),
        found(&[])
    )]
    #[case::pre_pulled_under_any_name(
        json!({}),
        pod(json!({}), json!([{"name": "modelcar", "image": "m:1"}, {"name": "modelcar-1", "image": "n:1"}]), json!([{"name": "whatever", "image": "n:1"}])),
        found(&[("m:1", "containers[0]")])
    )]
    #[case::container_source_off(
        json!({"modelcarContainerNames": []}),
        pod(json!({KSERVE: "oci://a"}), json!([{"name": "modelcar", "image": "m"}]), json!(null)),
        found(&[("a", KSERVE)])
    )]
    #[case::annotation_source_off(
        json!({"storageUriAnnotations": []}),
        pod(json!({KSERVE: "oci://a"}), json!([{"name": "modelcar", "image": "m"}]), json!(null)),
        found(&[("m", "containers[0]")])
    )]
    #[case::custom_pattern_and_annotation(
        json!({"modelcarContainerNames": ["model-*"], "storageUriAnnotations": ["example.com/model"]}),
        pod(json!({"example.com/model": "oci://x", KSERVE: "oci://y"}), json!([{"name": "modelcar", "image": "m"}, {"name": "model-a", "image": "n"}]), json!(null)),
        found(&[("n", "containers[1]"), ("x", "example.com/model")])
    )]
    #[case::init_containers_are_not_modelcars(
        json!({}),
        pod(json!({}), json!([{"name": "srv", "image": "s"}]), json!([{"name": "modelcar-init", "image": "m"}])),
        found(&[])
    )]
    #[case::no_modelcar(
        json!({}),
        pod(json!({"app": "web"}), json!([{"name": "nginx", "image": "nginx:1.27"}]), json!(null)),
        found(&[])
    )]
    #[case::unnamed_container_is_skipped(
        json!({}),
        pod(json!({}), json!([{"image": "x"}]), json!(null)),
        found(&[])
    )]
    #[case::modelcar_without_image(
        json!({}),
        pod(json!({}), json!([{"name": "modelcar"}]), json!(null)),
        Err("modelcar container \"modelcar\" (spec.containers[0]) has no image".to_string())
    )]
    #[case::modelcar_with_empty_image(
        json!({}),
        pod(json!({}), json!([{"name": "modelcar-2", "image": ""}]), json!(null)),
        Err("modelcar container \"modelcar-2\" (spec.containers[0]) has no image".to_string())
    )]
    fn finds_model_images(
        #[case] settings: Value,
        #[case] pod: Value,
        #[case] expected: Result<Vec<(String, String)>, String>,
    ) {
        assert_eq!(images(settings, pod), expected);
    }
}
