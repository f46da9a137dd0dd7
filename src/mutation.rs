//! The mutation as a pure function: (settings, pod) -> the desired pod.

use std::borrow::Cow;

use crate::cluster::{self, Cluster, Unsupported};
use crate::init_user;
use crate::json_text;
use crate::kubelet::MinorVersion;
use crate::model_images::{self, ModelImage, Origin, Plan};
use crate::names::NameAllocator;
use crate::pod_text::{Edits, PodText};
use crate::prefetch_container;
use crate::security;
use crate::settings::{Mode, Settings};
use crate::sidecar;
use crate::start_order::{self, DEFAULT_CONTAINER_ANNOTATION};
use crate::view::PodView;

/// What the policy answers: the pod to admit, and what to say about it.
#[derive(Debug, Default, PartialEq)]
pub struct Outcome {
    /// The desired pod as JSON text; `None` admits the pod as it came.
    pub pod: Option<String>,
    /// What was changed and why, one line each: the `prefetch` audit annotation.
    pub changes: Vec<String>,
    /// What was left undone, and why: AdmissionResponse warnings and log lines.
    pub warnings: Vec<String>,
}

impl Outcome {
    /// The pod goes through as it came, because `problem` stopped the policy.
    pub fn unreadable(problem: impl std::fmt::Display) -> Outcome {
        Outcome {
            warnings: vec![format!("{problem}; the object was admitted unchanged")],
            ..Outcome::default()
        }
    }
}

/// The pod with the modelcar race closed: an init container appended for
/// every model image that no init container pulls yet and, in the native
/// sidecar modes, the pod's own modelcars moved into the init containers.
/// Everything else is left as it is, byte for byte: the changes are written
/// into the pod's JSON text (`pod_text`). `cluster` is asked only in mode
/// `auto`, and only when a modelcar could move.
///
/// `pod` is the pod's JSON text and `view` what `PodView::read` made of it as
/// the request envelope was walked (a pod is read once); the text is checked
/// for UTF-8 only when it is changed or a problem must be explained.
pub fn desired_pod(
    settings: &Settings,
    pod: &[u8],
    view: Result<PodView, String>,
    cluster: &dyn Cluster,
) -> Outcome {
    let view = match view {
        Ok(v) => v,
        Err(e) => {
            return match std::str::from_utf8(pod) {
                // A pod that cannot name a model image needs nothing, malformed or not.
                Ok(text) if !model_images::may_need_prefetch(settings, text) => Outcome::default(),
                Ok(_) => Outcome::unreadable(e),
                Err(_) => Outcome::unreadable("the Pod's JSON is not valid UTF-8"),
            };
        }
    };
    let mut out = Outcome::default();
    let mut plan = match plan_for_mode(settings, &view, cluster, &mut out) {
        Ok(plan) if plan.is_empty() => return Outcome::default(),
        Ok(plan) => plan,
        Err(e) => return Outcome::unreadable(e),
    };
    let Ok(pod) = std::str::from_utf8(pod) else {
        return Outcome::unreadable("the Pod's JSON is not valid UTF-8");
    };
    let text = match PodText::new(pod, &view.spans) {
        Ok(t) => t,
        Err(e) => return Outcome::unreadable(e),
    };
    out.changes.append(&mut plan.kept);
    let mut edits = Edits {
        appended: prefetch_containers(settings, &view, &text, &plan.prefetch, &mut out),
        ..Edits::default()
    };
    for &index in &plan.moves {
        let Some(modelcar) = text.container(index) else {
            return Outcome::unreadable(format!(
                "the Pod's spec.containers[{index}] cannot be read"
            ));
        };
        let name = modelcar.read::<String>("name").unwrap_or_default();
        let image = modelcar.read::<String>("image").unwrap_or_default();
        let (sidecar, no_probe) = sidecar::from_modelcar(settings, &modelcar);
        out.changes.push(format!(
            "moved modelcar {name} ({image}) into the init containers as a native sidecar"
        ));
        out.warnings.extend(no_probe);
        edits.appended.push(sidecar);
    }
    let reordered = start_order::containers(
        &view,
        &text,
        &plan.stays,
        &plan.moves,
        &mut out.changes,
        &mut out.warnings,
    );
    match reordered {
        Some((items, annotation)) => {
            if let Some(first) = annotation {
                out.changes.push(format!(
                    "set annotation {DEFAULT_CONTAINER_ANNOTATION}: {first}, the container \
                     kubectl logs and exec chose before the modelcar moved to the front"
                ));
                edits.annotation = Some((DEFAULT_CONTAINER_ANNOTATION, first));
            }
            edits.containers = Some(items);
        }
        None if !plan.moves.is_empty() => {
            let kept = (0..view.containers().len()).filter(|i| !plan.moves.contains(i));
            edits.containers = Some(
                kept.filter_map(|i| text.container_text(i).map(Cow::Borrowed))
                    .collect(),
            );
        }
        None => {}
    }
    for &(init, modelcar) in &plan.init_users {
        if let Some((container, change)) =
            init_user::with_modelcar_user(&text, &view.security, init, modelcar)
        {
            out.changes.push(change);
            edits.init_containers.push((init, container));
        }
    }
    if edits.is_empty() {
        out.changes.clear();
        return out;
    }
    let pod = text.edited(&edits);
    if json_text::has_lone_surrogate(&pod) {
        return Outcome::unreadable(
            "the Pod's JSON has an unpaired UTF-16 surrogate escape (\\uD800 to \\uDFFF), \
             which the host could not read back in a changed Pod",
        );
    }
    out.pod = Some(pod);
    out
}

/// The plan for the configured mode; why `auto` fell back goes to `out`.
fn plan_for_mode<'a>(
    settings: &'a Settings,
    view: &'a PodView<'a>,
    cluster: &dyn Cluster,
    out: &mut Outcome,
) -> Result<Plan<'a>, String> {
    let plan = model_images::plan(settings, view, settings.mode != Mode::InitContainer)?;
    if settings.mode != Mode::Auto || plan.moves.is_empty() {
        return Ok(plan);
    }
    let support = match MinorVersion::parse(&settings.native_sidecar_min_kubelet_version) {
        Some(min) => {
            let selector = Some(settings.node_label_selector.as_str()).filter(|s| !s.is_empty());
            cluster::native_sidecars_supported(min, selector, cluster)
        }
        None => Err(Unsupported::Unknown(
            "nativeSidecarMinKubeletVersion cannot be read".into(),
        )),
    };
    match support {
        Ok(()) => return Ok(plan),
        // A decision, not a problem: recorded with the changes.
        Err(Unsupported::OldKubelet(reason)) => out.changes.push(fallback(&reason)),
        // The policy could not tell: the cluster admin should hear of it.
        Err(Unsupported::Unknown(reason)) => out.warnings.push(fallback(&reason)),
    }
    model_images::plan(settings, view, false)
}

fn fallback(reason: &str) -> String {
    format!("mode auto uses init containers, not native sidecars: {reason}")
}

/// One init container per image that can take one, as JSON text.
fn prefetch_containers(
    settings: &Settings,
    view: &PodView,
    text: &PodText,
    wanted: &[ModelImage],
    out: &mut Outcome,
) -> Vec<String> {
    let pod_security = &view.security;
    let setting = settings.security_context.as_ref().map(|sc| sc.text());
    let mut names = NameAllocator::new(&settings.init_container_name, view.container_names());
    let mut containers = Vec::with_capacity(wanted.len());
    for m in wanted {
        let (modelcar, source) = match m.origin {
            Origin::Container { index } => (
                text.container(index),
                format!("modelcar container spec.containers[{index}]"),
            ),
            Origin::Annotation { key } => (None, format!("annotation {key}")),
        };
        let Ok(security_context) = security::for_prefetch(setting, modelcar.as_ref(), pod_security)
        else {
            out.warnings.push(format!(
                "image {} is not pre-pulled: the pod requires runAsNonRoot and no runAsUser is \
                 known for an init container, so a model image that runs as root would hold the \
                 pod in Init; set the policy setting securityContext: {{runAsUser: 1010}} \
                 (KServe's default uidModelcar; use your cluster's) to pre-pull it",
                m.image
            ));
            continue;
        };
        let Some(name) = names.next() else {
            out.warnings.push(format!(
                "no free init container name is left for image {}; it is not pre-pulled",
                m.image
            ));
            break;
        };
        out.changes.push(format!(
            "added init container {name} to pre-pull {} (from {source})",
            m.image
        ));
        containers.push(prefetch_container::build(
            settings,
            &name,
            m.image,
            modelcar.as_ref(),
            &security_context,
        ));
    }
    containers
}

/// `desired_pod` over `serde_json::Value`s, for tests that build pods as values.
#[cfg(test)]
pub mod testing {
    use super::*;
    use serde_json::Value;

    #[derive(Debug, PartialEq)]
    pub enum Got {
        Unchanged,
        /// Admitted unchanged, with warnings (unreadable, or nothing could be added).
        Warned(Vec<String>),
        Mutated {
            pod: Value,
            changes: Vec<String>,
            warnings: Vec<String>,
        },
    }

    pub fn desired(settings: &Settings, pod: Value, cluster: &dyn Cluster) -> Got {
        let text = pod.to_string();
        let out = desired_pod(
            settings,
            text.as_bytes(),
            PodView::from_json(&text),
            cluster,
        );
        match out.pod {
            Some(pod) => Got::Mutated {
                pod: serde_json::from_str(&pod).expect("the mutated pod is JSON"),
                changes: out.changes,
                warnings: out.warnings,
            },
            None if out.warnings.is_empty() => Got::Unchanged,
            None => Got::Warned(out.warnings),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{Got, desired};
    use super::*;
    use crate::cluster::tests::FakeCluster;
    use crate::security::PodSecurity;
    use rstest::rstest;
    use serde_json::Value;
    use serde_json::json;

    const KSERVE: &str = "internal.serving.kserve.io/storage-initializer-sourceuri";

    fn mutate(settings: Value, pod: Value) -> Got {
        desired(
            &Settings::from_value(&settings),
            pod,
            &FakeCluster(Err("no cluster in this test".into())),
        )
    }

    fn added_names(outcome: &Got) -> Vec<String> {
        let Got::Mutated { pod, .. } = outcome else {
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
        let Got::Mutated {
            pod: out, changes, ..
        } = mutate(json!({}), pod.clone())
        else {
            panic!()
        };
        let mut expected = pod;
        expected["spec"]["initContainers"]
            .as_array_mut()
            .unwrap()
            .push(
                serde_json::from_str(&prefetch_container::build(
                    &Settings::default(),
                    "modelcar-prefetch",
                    "m:1",
                    None,
                    &security::for_prefetch(None, None, &PodSecurity::default()).unwrap(),
                ))
                .unwrap(),
            );
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
    #[case::malformed_without_a_model_image(json!({"spec": {"containers": 1}}))]
    #[case::modelcar_only_in_a_label(json!({"metadata": {"labels": {"app": "modelcar-demo"}}, "spec": {"containers": [{"name": "server", "image": "s"}]}}))]
    fn unchanged(#[case] pod: Value) {
        assert_eq!(mutate(json!({}), pod), Got::Unchanged);
    }

    #[rstest]
    #[case::not_an_object(json!(null), "the object is not a Pod")]
    #[case::a_list(json!(["modelcar"]), "the object is not a Pod")]
    #[case::containers_not_a_list(json!({"spec": {"containers": "modelcar"}}), "spec.containers is malformed")]
    #[case::modelcar_without_image(json!({"spec": {"containers": [{"name": "modelcar", "image": null}]}}), "has no image")]
    #[case::init_containers_not_a_list(
        json!({"spec": {"containers": [{"name": "modelcar", "image": "m"}], "initContainers": {"a": 1}}}),
        "spec.initContainers is malformed"
    )]
    #[case::annotation_but_no_spec(json!({"metadata": {"annotations": {KSERVE: "oci://m"}}}), "the Pod has no spec")]
    fn unreadable(#[case] pod: Value, #[case] message: &str) {
        match mutate(json!({}), pod) {
            Got::Warned(w) => {
                assert!(w.len() == 1 && w[0].contains(message), "{w:?}");
                assert!(w[0].ends_with("the object was admitted unchanged"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[rstest]
    #[case::annotation(json!({"metadata": {"annotations": {KSERVE: "oci://m:1"}}, "spec": {"containers": [{"name": "s", "image": "s"}]}}))]
    #[case::two_modelcars(json!({"spec": {"containers": [{"name": "modelcar", "image": "a"}, {"name": "modelcar-7", "image": "b"}]}}))]
    fn evaluating_the_result_again_changes_nothing(#[case] pod: Value) {
        let Got::Mutated { pod, .. } = mutate(json!({}), pod) else {
            panic!()
        };
        assert_eq!(mutate(json!({}), pod), Got::Unchanged);
    }

    fn carried_modelcar_pod() -> Value {
        json!({
            "metadata": {"generateName": "llm-", "labels": {"app.kubernetes.io/part-of": "llminferenceservice"}},
            "spec": {
                "initContainers": [{"name": "modelcar-init", "image": "quay.io/m:1", "args": ["sh", "-c", "[ -d /models ]"]}],
                "containers": [
                    {"name": "main", "image": "vllm/vllm-openai:v0.9.0", "volumeMounts": [{"name": "kserve-provision-location", "mountPath": "/mnt"}]},
                    {
                        "name": "modelcar",
                        "image": "quay.io/m:1",
                        "args": ["sh", "-c", "ln -sf /proc/$$$$/root/models /mnt/models && sleep infinity"],
                        "resources": {"limits": {"cpu": "10m", "memory": "15Mi"}, "requests": {"cpu": "10m", "memory": "15Mi"}},
                        "securityContext": {"runAsUser": 1010},
                        "volumeMounts": [{"name": "kserve-provision-location", "mountPath": "/mnt"}]
                    }
                ],
                "shareProcessNamespace": true,
                "volumes": [{"name": "kserve-provision-location", "emptyDir": {}}]
            }
        })
    }

    fn sidecar_of(modelcar: &Value) -> Value {
        let mut sidecar = modelcar.clone();
        sidecar["restartPolicy"] = json!("Always");
        sidecar["startupProbe"] =
            serde_json::from_str(&crate::model_link::startup_probe("/mnt/models")).unwrap();
        sidecar
    }

    fn with_mode(mode: &str, pod: Value, cluster: &dyn Cluster) -> Got {
        desired(&Settings::from_value(&json!({"mode": mode})), pod, cluster)
    }

    #[rstest]
    #[case::native_sidecar("nativeSidecar", FakeCluster(Err("must not be asked".into())))]
    #[case::auto_with_new_nodes("auto", FakeCluster::nodes(&["v1.30.4", "v1.29.0+k3s1"]))]
    fn carried_modelcar_becomes_a_native_sidecar(#[case] mode: &str, #[case] cluster: FakeCluster) {
        let pod = carried_modelcar_pod();
        let Got::Mutated {
            pod: out, changes, ..
        } = with_mode(mode, pod.clone(), &cluster)
        else {
            panic!()
        };
        let mut expected = pod.clone();
        let modelcar = expected["spec"]["containers"]
            .as_array_mut()
            .unwrap()
            .remove(1);
        expected["spec"]["initContainers"]
            .as_array_mut()
            .unwrap()
            .push(sidecar_of(&modelcar));
        assert_eq!(out, expected);
        assert_eq!(
            changes,
            ["moved modelcar modelcar (quay.io/m:1) into the init containers as a native sidecar"]
        );
        assert_eq!(with_mode(mode, out, &cluster), Got::Unchanged);
    }

    /// An old kubelet is a decision (recorded with the changes); a cluster the
    /// policy cannot read is a problem (a warning for the admin).
    #[rstest]
    #[case::one_old_node(FakeCluster::nodes(&["v1.30.4", "v1.28.15-gke.1020000"]), "node node-1 runs kubelet v1.28.15-gke.1020000, older than 1.29", false)]
    #[case::unparsable(FakeCluster::nodes(&["v1.30.4", "unknown"]), "which cannot be read", true)]
    #[case::empty(FakeCluster::nodes(&[]), "the node list is empty", true)]
    #[case::error(FakeCluster(Err("forbidden".into())), "the node list could not be read (forbidden)", true)]
    fn auto_falls_back_to_init_containers(
        #[case] cluster: FakeCluster,
        #[case] reason: &str,
        #[case] warned: bool,
    ) {
        let mut pod = carried_modelcar_pod();
        pod["spec"]["initContainers"] = json!([]);
        let Got::Mutated {
            pod: out,
            changes,
            warnings,
        } = with_mode("auto", pod.clone(), &cluster)
        else {
            panic!()
        };
        assert_eq!(
            container_names(&out),
            ["modelcar", "main"],
            "the modelcar stays, and starts first"
        );
        assert!(out["spec"]["containers"][0]["lifecycle"]["postStart"].is_object());
        assert_eq!(
            out["spec"]["initContainers"][0]["name"],
            "modelcar-prefetch"
        );
        let fallback = "mode auto uses init containers, not native sidecars: ";
        let (noted, other) = if warned {
            (&warnings, &changes)
        } else {
            (&changes, &warnings)
        };
        assert!(noted[0].starts_with(fallback), "{noted:?}");
        assert!(noted[0].contains(reason), "{noted:?}");
        assert!(!other.iter().any(|l| l.starts_with(fallback)), "{other:?}");
        assert!(
            changes.contains(
                &"added init container modelcar-prefetch to pre-pull quay.io/m:1 \
                  (from modelcar container spec.containers[1])"
                    .to_string()
            ),
            "{changes:?}"
        );
    }

    fn container_names(pod: &Value) -> Vec<&str> {
        let containers = pod["spec"]["containers"].as_array().unwrap();
        containers
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect()
    }

    /// The modelcar-init of the pod already pulls the image: the fallback
    /// only starts the modelcar first.
    #[test]
    fn auto_falls_back_to_starting_the_modelcar_first_when_already_pre_pulled() {
        let cluster = FakeCluster::nodes(&["v1.27.1"]);
        let pod = carried_modelcar_pod();
        let Got::Mutated { pod: out, .. } = with_mode("auto", pod.clone(), &cluster) else {
            panic!()
        };
        assert_eq!(out["spec"]["initContainers"], pod["spec"]["initContainers"]);
        assert_eq!(container_names(&out), ["modelcar", "main"]);
        let settings = json!({"mode": "auto", "startModelcarFirst": false});
        let got = desired(&Settings::from_value(&settings), pod, &cluster);
        assert_eq!(got, Got::Unchanged);
    }

    /// Counts calls, so a test can prove the cluster was not asked, and
    /// keeps the label selector of the last one.
    #[derive(Default)]
    struct CountingCluster(std::cell::Cell<usize>, std::cell::RefCell<Option<String>>);
    impl Cluster for CountingCluster {
        fn kubelet_versions(
            &self,
            selector: Option<&str>,
        ) -> Result<Vec<(String, String)>, String> {
            self.0.set(self.0.get() + 1);
            *self.1.borrow_mut() = selector.map(str::to_string);
            Ok(vec![("n".into(), "v1.30.0".into())])
        }
    }

    #[rstest]
    #[case::every_node(json!({"mode": "auto"}), None)]
    #[case::gpu_nodes(json!({"mode": "auto", "nodeLabelSelector": "nvidia.com/gpu.present=true"}), Some("nvidia.com/gpu.present=true".to_string()))]
    fn auto_lists_the_nodes_the_selector_selects(
        #[case] settings: Value,
        #[case] asked: Option<String>,
    ) {
        let cluster = CountingCluster::default();
        let got = desired(
            &Settings::from_value(&settings),
            carried_modelcar_pod(),
            &cluster,
        );
        assert!(matches!(got, Got::Mutated { .. }), "{got:?}");
        assert_eq!((cluster.0.get(), cluster.1.borrow().clone()), (1, asked));
    }

    #[rstest]
    #[case::no_modelcar(json!({"spec": {"containers": [{"name": "nginx", "image": "nginx"}]}}))]
    #[case::kserve_managed(json!({
        "metadata": {"annotations": {KSERVE: "oci://m:1"}},
        "spec": {"containers": [{"name": "kserve-container", "image": "s"}, {"name": "modelcar", "image": "m:1"}]}
    }))]
    #[case::annotation_only(json!({"metadata": {"annotations": {KSERVE: "oci://m:1"}}, "spec": {"containers": [{"name": "kserve-container", "image": "s"}]}}))]
    fn auto_asks_the_cluster_only_for_a_movable_modelcar(#[case] pod: Value) {
        let cluster = CountingCluster::default();
        let _ = with_mode("auto", pod, &cluster);
        assert_eq!(cluster.0.get(), 0);
        let _ = with_mode("auto", carried_modelcar_pod(), &cluster);
        assert_eq!(cluster.0.get(), 1);
    }

    #[test]
    fn kserve_managed_modelcar_is_pre_pulled_not_moved() {
        let pod = json!({
            "metadata": {"annotations": {KSERVE: "oci://m:1"}},
            "spec": {"containers": [{"name": "kserve-container", "image": "s"}, {"name": "modelcar", "image": "m:1"}]}
        });
        let Got::Mutated {
            pod: out, changes, ..
        } = with_mode(
            "nativeSidecar",
            pod.clone(),
            &FakeCluster(Err("unused".into())),
        )
        else {
            panic!()
        };
        assert_eq!(out["spec"]["containers"], pod["spec"]["containers"]);
        assert_eq!(
            out["spec"]["initContainers"][0]["name"],
            "modelcar-prefetch"
        );
        assert!(
            changes[0].contains("KServe's webhook manages it"),
            "{changes:?}"
        );
    }

    #[test]
    fn native_sidecar_result_is_a_valid_pod() {
        let Got::Mutated { pod, .. } = with_mode(
            "nativeSidecar",
            carried_modelcar_pod(),
            &FakeCluster(Err("unused".into())),
        ) else {
            panic!()
        };
        let typed: k8s_openapi::api::core::v1::Pod = serde_json::from_value(pod).unwrap();
        let spec = typed.spec.unwrap();
        let names: Vec<&str> = spec
            .containers
            .iter()
            .chain(spec.init_containers.iter().flatten())
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(names, ["main", "modelcar-init", "modelcar"]);
        let sidecar = &spec.init_containers.as_ref().unwrap()[1];
        assert_eq!(sidecar.restart_policy.as_deref(), Some("Always"));
        assert_eq!(
            sidecar.volume_mounts.as_ref().unwrap()[0].mount_path,
            "/mnt"
        );
        assert_eq!(
            sidecar.security_context.as_ref().unwrap().run_as_user,
            Some(1010)
        );
        assert!(sidecar.resources.as_ref().unwrap().limits.is_some());
        assert!(sidecar.startup_probe.as_ref().unwrap().exec.is_some());
    }

    #[test]
    fn moved_and_pre_pulled_images_together() {
        // A carried modelcar moves; an annotation naming another image is pre-pulled.
        let mut pod = carried_modelcar_pod();
        pod["metadata"]["annotations"] = json!({"example.com/model": "oci://quay.io/other:2"});
        let settings = Settings::from_value(&json!({
            "mode": "nativeSidecar",
            "storageUriAnnotations": ["example.com/model"]
        }));
        let Got::Mutated { pod: out, .. } =
            desired(&settings, pod, &FakeCluster(Err("unused".into())))
        else {
            panic!()
        };
        let names: Vec<&str> = out["spec"]["initContainers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["modelcar-init", "modelcar-prefetch", "modelcar"]);
    }
}
