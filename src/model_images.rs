//! Which model images a pod needs pulled before its model server starts.

use crate::image;
use crate::names;
use crate::scan;
use crate::settings::{KSERVE_STORAGE_URI_ANNOTATION, Settings};
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

/// What to do with a pod: pre-pull some images, move some modelcars.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan<'a> {
    /// Model images no init container uses yet, each once, in pod order
    /// (modelcar containers, then annotations in settings order).
    pub prefetch: Vec<ModelImage<'a>>,
    /// `spec.containers` indices of modelcars to run as native sidecars.
    pub moves: Vec<usize>,
    /// Why modelcars that could have moved did not, for the log.
    pub kept: Vec<String>,
    /// `spec.containers` indices of modelcars that stay regular containers
    /// and are to start first (`startModelcarFirst`).
    pub stays: Vec<usize>,
    /// (init container, modelcar) index pairs of the same image, in a pod
    /// that must run as non-root with no user of its own: the init container
    /// may need the modelcar's user to start at all (`init_user`).
    pub init_users: Vec<(usize, usize)>,
}

impl Plan<'_> {
    pub fn is_empty(&self) -> bool {
        self.prefetch.is_empty()
            && self.moves.is_empty()
            && self.stays.is_empty()
            && self.init_users.is_empty()
    }
}

/// Decides what the pod needs. With `moves_allowed`, modelcars that the pod
/// carries itself become native sidecars; those KServe's webhook manages stay
/// and are pre-pulled instead. Fails when a modelcar has no image to pull.
pub fn plan<'a>(
    settings: &'a Settings,
    pod: &'a PodView<'a>,
    moves_allowed: bool,
) -> Result<Plan<'a>, String> {
    let mut plan = Plan::default();
    let mut candidates: Vec<ModelImage<'a>> = Vec::new();
    let mut moved_images: Vec<&str> = Vec::new();
    let managed_by_kserve = pod
        .annotation(KSERVE_STORAGE_URI_ANNOTATION)
        .is_some_and(|uri| uri.starts_with("oci:") || uri.starts_with("oci+"));
    let modelcars: Vec<(usize, &str, &str)> = modelcar_containers(settings, pod)?;
    let keep_all = moves_allowed && modelcars.len() == pod.containers().len();
    if pod.security.run_as_non_root && !pod.security.run_as_user {
        for (init, c) in pod.init_containers().iter().enumerate() {
            let source = modelcars.iter().find(|m| c.image.as_deref() == Some(m.2));
            plan.init_users.extend(source.map(|m| (init, m.0)));
        }
    }
    for &(index, name, image) in &modelcars {
        if moves_allowed && !managed_by_kserve && !keep_all {
            plan.moves.push(index);
            moved_images.push(image);
            continue;
        }
        // A pod of modelcars only has nothing for them to hold back.
        if settings.start_modelcar_first && modelcars.len() < pod.containers().len() {
            plan.stays.push(index);
        }
        if moves_allowed {
            plan.kept.push(if keep_all {
                format!("modelcar {name} stays a regular container: moving every container would leave the pod without one")
            } else {
                format!(
                    "modelcar {name} stays a regular container: KServe's webhook manages it \
                     ({KSERVE_STORAGE_URI_ANNOTATION}) and would inject a second one; its image is pre-pulled instead"
                )
            });
        }
        candidates.push(ModelImage {
            image,
            origin: Origin::Container { index },
        });
    }
    for key in &settings.storage_uri_annotations {
        if let Some(image) = pod.annotation(key).and_then(image::from_storage_uri) {
            candidates.push(ModelImage {
                image,
                origin: Origin::Annotation { key },
            });
        }
    }
    for c in candidates {
        let pulled_already = pod
            .init_containers()
            .iter()
            .any(|i| i.image.as_deref() == Some(c.image));
        let planned =
            moved_images.contains(&c.image) || plan.prefetch.iter().any(|m| m.image == c.image);
        if !pulled_already && !planned {
            plan.prefetch.push(c);
        }
    }
    Ok(plan)
}

/// Whether the pod's JSON text can name a model image at all: a container name
/// that a pattern matches, or an `oci` storage URI. A pod the view cannot read
/// is admitted with a warning only when it can: a malformed pod that needs
/// nothing is no concern of this policy. A text search finds every such name
/// and URI because JSON shows them as written: only a `\u` escape can spell
/// their characters otherwise (or `\"`, `\\`, `\/` for a pattern holding
/// those), and then the answer is yes.
pub fn may_need_prefetch(settings: &Settings, pod: &str) -> bool {
    // Not an object: yes, so that the warning says what it is.
    if !pod.starts_with('{') {
        return true;
    }
    // What may follow a string's opening quote.
    let mut needles = Vec::with_capacity(settings.modelcar_container_names.len() + 2);
    for pattern in &settings.modelcar_container_names {
        let (prefix, closing) = match pattern.strip_suffix('*') {
            Some(prefix) => (prefix, ""),
            None => (pattern.as_str(), "\""),
        };
        if prefix
            .bytes()
            .any(|b| matches!(b, b'"' | b'\\' | b'/') || b < 0x20)
        {
            return true;
        }
        needles.push(format!("{prefix}{closing}"));
    }
    if !settings.storage_uri_annotations.is_empty() {
        // image::from_storage_uri: `oci://` and `oci+modelcar://`.
        needles.extend(["oci:".to_owned(), "oci+".to_owned()]);
    }
    // Most strings fail on their first byte: keep those in a table.
    let mut first = [false; 256];
    for n in &needles {
        match n.as_bytes().first() {
            Some(&b) => first[usize::from(b)] = true,
            None => return true,
        }
    }
    let starts_with =
        |rest: &[u8], n: &[u8]| rest.len() >= n.len() && rest.iter().zip(n).all(|(a, b)| a == b);
    let text = pod.as_bytes();
    let mut at = 0;
    loop {
        at = scan::next_quote_or_backslash(text, at);
        match text.get(at) {
            None => return false,
            Some(b'\\') if text.get(at + 1) == Some(&b'u') => return true,
            // The escaped character is not a quote that opens a string.
            Some(b'\\') => at += 2,
            Some(_) => {
                at += 1;
                let Some(&next) = text.get(at) else {
                    return false;
                };
                if first[usize::from(next)]
                    && needles
                        .iter()
                        .any(|n| starts_with(&text[at..], n.as_bytes()))
                {
                    return true;
                }
            }
        }
    }
}

fn modelcar_containers<'a>(
    settings: &Settings,
    pod: &'a PodView<'a>,
) -> Result<Vec<(usize, &'a str, &'a str)>, String> {
    let mut out = Vec::new();
    for (index, c) in pod.containers().iter().enumerate() {
        let Some(name) = c.name.as_deref() else {
            continue;
        };
        if !names::matches_any(&settings.modelcar_container_names, name) {
            continue;
        }
        match c.image.as_deref() {
            Some(image) if !image.is_empty() => out.push((index, name, image)),
            _ => {
                return Err(format!(
                    "modelcar container {name:?} (spec.containers[{index}]) has no image"
                ));
            }
        }
    }
    Ok(out)
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
        let found = plan(&settings, &view, false)?.prefetch;
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

    fn moves(pod: Value) -> (Vec<usize>, Vec<String>, usize) {
        let settings = Settings::default();
        let view = PodView::from_value(&pod).unwrap();
        let plan = plan(&settings, &view, true).unwrap();
        let prefetched = plan.prefetch.iter().map(|m| m.image.to_string()).collect();
        (plan.moves, prefetched, plan.kept.len())
    }

    #[rstest]
    #[case::carried_modelcar_moves(
        pod(json!({}), json!([{"name": "server", "image": "s"}, {"name": "modelcar", "image": "m"}]), json!(null)),
        (vec![1], vec![], 0)
    )]
    #[case::moves_even_when_pre_pulled(
        pod(json!({}), json!([{"name": "server", "image": "s"}, {"name": "modelcar", "image": "m"}]), json!([{"name": "modelcar-init", "image": "m"}])),
        (vec![1], vec![], 0)
    )]
    #[case::every_carried_modelcar_moves(
        pod(json!({}), json!([{"name": "modelcar", "image": "a"}, {"name": "server", "image": "s"}, {"name": "modelcar-1", "image": "b"}]), json!(null)),
        (vec![0, 2], vec![], 0)
    )]
    #[case::kserve_managed_stays_and_is_pre_pulled(
        pod(json!({KSERVE: "oci://m"}), json!([{"name": "server", "image": "s"}, {"name": "modelcar", "image": "m"}]), json!(null)),
        (vec![], vec!["m".to_string()], 1)
    )]
    #[case::kserve_managed_v0_14_stays_no_op(
        pod(json!({KSERVE: "oci+modelcar://m"}), json!([{"name": "server", "image": "s"}, {"name": "modelcar", "image": "m"}]), json!([{"name": "modelcar-init", "image": "m"}])),
        (vec![], vec![], 1)
    )]
    #[case::annotation_only_is_pre_pulled(
        pod(json!({KSERVE: "oci://m"}), json!([{"name": "server", "image": "s"}]), json!(null)),
        (vec![], vec!["m".to_string()], 0)
    )]
    #[case::non_oci_annotation_does_not_pin(
        pod(json!({KSERVE: "s3://bucket/m"}), json!([{"name": "server", "image": "s"}, {"name": "modelcar", "image": "m"}]), json!(null)),
        (vec![1], vec![], 0)
    )]
    #[case::lone_modelcar_stays(
        pod(json!({}), json!([{"name": "modelcar", "image": "m"}]), json!(null)),
        (vec![], vec!["m".to_string()], 1)
    )]
    #[case::moved_sidecar_is_not_moved_again(
        pod(json!({}), json!([{"name": "server", "image": "s"}]), json!([{"name": "modelcar", "image": "m", "restartPolicy": "Always"}])),
        (vec![], vec![], 0)
    )]
    fn native_sidecar_plan(#[case] pod: Value, #[case] expected: (Vec<usize>, Vec<String>, usize)) {
        assert_eq!(moves(pod), expected);
    }

    #[rstest]
    #[case::no_model_image(json!({}), r#"{"spec":{"containers":[{"name":"server","image":"s"}]}}"#, false)]
    #[case::modelcar_name(json!({}), r#"{"spec":{"containers":[{"name":"modelcar","image":"m"}]}}"#, true)]
    #[case::pattern_prefix(json!({}), r#"{"spec":{"containers":[{"name":"modelcar-2","image":"m"}]}}"#, true)]
    #[case::longer_name_than_an_exact_pattern(json!({"modelcarContainerNames": ["modelcar"]}), r#"{"spec":{"containers":[{"name":"modelcars"}]}}"#, false)]
    #[case::oci_uri(json!({}), r#"{"metadata":{"annotations":{"k":"oci://m"}}}"#, true)]
    #[case::oci_uri_without_annotation_settings(json!({"storageUriAnnotations": []}), r#"{"metadata":{"annotations":{"k":"oci://m"}}}"#, false)]
    #[case::oci_plus_uri(json!({}), r#"{"metadata":{"annotations":{"k":"oci+modelcar://m"}}}"#, true)]
    #[case::unicode_escape(json!({}), r#"{"spec":{"containers":[{"name":"\u006dodelcar"}]}}"#, true)]
    #[case::pattern_with_a_slash(json!({"modelcarContainerNames": ["a/b"]}), r#"{"spec":{"containers":[{"name":"a\/b"}]}}"#, true)]
    #[case::not_an_object(json!({}), r#"["server"]"#, true)]
    #[case::pattern_with_a_quote(json!({"modelcarContainerNames": ["a\"b*"]}), r#"{}"#, true)]
    fn the_text_search_finds_every_pod_that_may_need_work(
        #[case] settings: Value,
        #[case] pod: &str,
        #[case] expected: bool,
    ) {
        let settings = Settings::from_value(&settings);
        assert_eq!(may_need_prefetch(&settings, pod), expected);
    }
}
