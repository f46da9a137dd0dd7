//! The policy's decision on every request fixture under `e2e-tests/fixtures`
//! (realistic AdmissionRequests, shared with the waPC-host and bats suites):
//! accepted unchanged, or the original pod plus exactly the expected init
//! containers, compared as whole objects.

use jsonpath_lib as jsonpath;
use rstest::rstest;
use serde_json::{Value, json};

use crate::admission::evaluate;
use crate::mutation::Outcome;

fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/e2e-tests/fixtures/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap()
}

fn evaluate_fixture(name: &str, settings: Value) -> Outcome {
    let payload = json!({"request": fixture(name), "settings": settings});
    evaluate(&serde_json::to_vec(&payload).unwrap())
}

fn mutated(name: &str, settings: Value) -> Value {
    match evaluate_fixture(name, settings) {
        Outcome {
            pod: Some(object), ..
        } => serde_json::from_str(&object).unwrap(),
        other => panic!("{name}: expected a mutation, got {other:?}"),
    }
}

/// The original pod with `added` appended to its init containers and the
/// modelcars named in `first` started first (`modelcars_first`).
fn original_plus(name: &str, added: Vec<Value>, first: &[(&str, &str)]) -> Value {
    let mut pod = modelcars_first(fixture(name)["object"].clone(), first);
    let spec = pod["spec"].as_object_mut().unwrap();
    let init = spec.entry("initContainers").or_insert_with(|| json!([]));
    init.as_array_mut().unwrap().extend(added);
    pod
}

const DEFAULT_CONTAINER: &str = "kubectl.kubernetes.io/default-container";
const KSERVE_LINK: &[(&str, &str)] = &[("modelcar", "/mnt/models")];

/// `pod` with the modelcars named in `first` moved, in that order, to the
/// front of its containers, each with the postStart hook that waits for its
/// link (name, link path); kubectl's default container stays the one that was first.
fn modelcars_first(mut pod: Value, first: &[(&str, &str)]) -> Value {
    if first.is_empty() {
        return pod;
    }
    let containers = pod["spec"]["containers"].as_array_mut().unwrap();
    let was_first = containers[0]["name"].clone();
    let mut front = Vec::new();
    for (name, link) in first {
        let at = containers.iter().position(|c| c["name"] == *name).unwrap();
        let mut modelcar = containers.remove(at);
        let link = crate::model_link::Link {
            shell: "sh".into(),
            path: link.to_string(),
        };
        let hook: Value = serde_json::from_str(&crate::model_link::wait_hook(&link)).unwrap();
        modelcar["lifecycle"] = json!({"postStart": hook});
        front.push(modelcar);
    }
    front.append(containers);
    *containers = front;
    let now_first = pod["spec"]["containers"][0]["name"].clone();
    if pod["metadata"]["annotations"]
        .get(DEFAULT_CONTAINER)
        .is_none()
        && was_first != now_first
    {
        pod["metadata"]["annotations"][DEFAULT_CONTAINER] = was_first;
    }
    pod
}

const KSERVE_RESOURCES: fn() -> Value = || json!({"limits": {"cpu": "10m", "memory": "15Mi"}, "requests": {"cpu": "10m", "memory": "15Mi"}});

fn hardened_with_seccomp() -> Value {
    json!({"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}})
}

fn prefetch(name: &str, image: &str, pull: &str, security_context: Value) -> Value {
    json!({
        "name": name,
        "image": image,
        "command": ["sh", "-c", "true"],
        "imagePullPolicy": pull,
        "resources": KSERVE_RESOURCES(),
        "securityContext": security_context,
        "terminationMessagePolicy": "FallbackToLogsOnError"
    })
}

#[rstest]
#[case::before_kserve_webhook(
    "kserve-predictor-before-kserve-webhook",
    vec![prefetch("modelcar-prefetch", "quay.io/example/models-iris:v1", "IfNotPresent", hardened_with_seccomp())],
    &[]
)]
#[case::kserve_v0_13_modelcar(
    "kserve-predictor-v0.13-modelcar",
    vec![prefetch("modelcar-prefetch", "quay.io/example/models-iris:v1", "IfNotPresent", hardened_with_seccomp())],
    KSERVE_LINK
)]
#[case::kserve_v0_14_modelcar_init("kserve-predictor-v0.14-modelcar-init", vec![], KSERVE_LINK)]
#[case::containers_run_as_non_root(
    "kserve-predictor-containers-run-as-non-root",
    vec![prefetch("modelcar-prefetch", "ghcr.io/example/models/granite:2.0", "IfNotPresent",
        json!({"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}))],
    &[]
)]
#[case::v0_13_uid_modelcar_restricted(
    "kserve-predictor-v0.13-uid-modelcar-restricted",
    vec![prefetch("modelcar-prefetch", "quay.io/example/models-iris:v1", "IfNotPresent",
        json!({"runAsUser": 1010, "allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}))],
    KSERVE_LINK
)]
#[case::istio_private_digest(
    "kserve-predictor-istio-private-digest",
    vec![prefetch(
        "modelcar-prefetch",
        "registry.example.com:5000/models/llama-3-8b@sha256:35890bf62521ee65990d0f49f3a988e36bf59f9cb587a2bd50e5d63ad6ef8df5",
        "IfNotPresent",
        hardened_with_seccomp()
    )],
    KSERVE_LINK
)]
#[case::two_modelcars(
    "pod-two-modelcars",
    vec![
        prefetch("modelcar-prefetch", "quay.io/example/models-a:v2", "IfNotPresent", hardened_with_seccomp()),
        prefetch("modelcar-prefetch-1", "quay.io/example/models-b:latest", "Always", hardened_with_seccomp()),
    ],
    &[("modelcar", "/mnt/models-a"), ("modelcar-1", "/mnt/models-b")]
)]
#[case::unknown_field_kept(
    "pod-unknown-field",
    vec![prefetch("modelcar-prefetch", "quay.io/example/models-iris:v1", "IfNotPresent", hardened_with_seccomp())],
    KSERVE_LINK
)]
#[case::llm_inference_service("llm-inference-service-modelcar", vec![], &[("modelcar", "/mnt/models/qwen")])]
fn mutated_pod_is_the_original_plus_the_init_containers(
    #[case] name: &str,
    #[case] added: Vec<Value>,
    #[case] first: &[(&str, &str)],
) {
    assert_eq!(mutated(name, json!({})), original_plus(name, added, first));
}

#[rstest]
#[case::without_modelcar("pod-without-modelcar")]
#[case::update("kserve-predictor-update")]
#[case::delete("kserve-predictor-delete")]
#[case::deployment("deployment-create")]
fn accepted_unchanged(#[case] name: &str) {
    assert_eq!(evaluate_fixture(name, json!({})), Outcome::default());
}

#[rstest]
#[case::kserve_v0_14_modelcar_init("kserve-predictor-v0.14-modelcar-init")]
#[case::llm_inference_service("llm-inference-service-modelcar")]
fn modelcars_keep_their_place_with_start_modelcar_first_off(#[case] name: &str) {
    let settings = json!({"startModelcarFirst": false});
    assert_eq!(evaluate_fixture(name, settings), Outcome::default());
}

/// KServe v0.14's modelcar-init in a pod that requires non-root never
/// starts on a root-default model image; it gets the modelcar's user
/// (uidModelcar), and nothing else of it changes.
#[test]
fn kserve_modelcar_init_gets_the_modelcar_user_where_the_pod_requires_non_root() {
    let name = "kserve-predictor-v0.14-uid-modelcar-restricted";
    let mut expected = original_plus(name, vec![], KSERVE_LINK);
    expected["spec"]["initContainers"][0]["securityContext"] = json!({"runAsUser": 1010});
    assert_eq!(mutated(name, json!({})), expected);

    let outcome = evaluate_fixture(name, json!({"startModelcarFirst": false}));
    let mut expected = fixture(name)["object"].clone();
    expected["spec"]["initContainers"][0]["securityContext"] = json!({"runAsUser": 1010});
    let pod: Value = serde_json::from_str(outcome.pod.as_deref().unwrap()).unwrap();
    assert_eq!(pod, expected);
    assert_eq!(
        outcome.changes,
        [
            "gave init container modelcar-init the user 1010 of modelcar modelcar: the pod \
          requires runAsNonRoot, and without a user it could not start"
        ]
    );
}

#[rstest]
#[case::before_kserve_webhook("kserve-predictor-before-kserve-webhook")]
#[case::kserve_v0_13_modelcar("kserve-predictor-v0.13-modelcar")]
#[case::kserve_v0_14_modelcar_init("kserve-predictor-v0.14-modelcar-init")]
#[case::v0_14_uid_modelcar_restricted("kserve-predictor-v0.14-uid-modelcar-restricted")]
#[case::containers_run_as_non_root("kserve-predictor-containers-run-as-non-root")]
#[case::v0_13_uid_modelcar_restricted("kserve-predictor-v0.13-uid-modelcar-restricted")]
#[case::istio_private_digest("kserve-predictor-istio-private-digest")]
#[case::two_modelcars("pod-two-modelcars")]
#[case::unknown_field_kept("pod-unknown-field")]
#[case::llm_inference_service("llm-inference-service-modelcar")]
fn evaluating_the_mutated_pod_again_changes_nothing(#[case] name: &str) {
    let mut request = fixture(name);
    request["object"] = mutated(name, json!({}));
    let payload = json!({"request": request, "settings": {}});
    assert_eq!(
        evaluate(&serde_json::to_vec(&payload).unwrap()),
        Outcome::default()
    );
}

#[test]
fn unknown_fields_and_null_timestamp_survive() {
    let pod = mutated("pod-unknown-field", json!({}));
    assert_eq!(
        jsonpath::select(&pod, "$.spec.workloadClass").unwrap(),
        [&json!("batch")]
    );
    assert_eq!(
        jsonpath::select(&pod, "$.metadata.creationTimestamp").unwrap(),
        [&Value::Null]
    );
    assert_eq!(
        jsonpath::select(
            &pod,
            "$.spec.containers[?(@.name == 'kserve-container')].sharedMemoryPolicy"
        )
        .unwrap()
        .len(),
        1
    );
}

#[test]
fn istio_init_keeps_running_first() {
    let pod = mutated("kserve-predictor-istio-private-digest", json!({}));
    let names = jsonpath::select(&pod, "$.spec.initContainers[*].name").unwrap();
    assert_eq!(names, [&json!("istio-init"), &json!("modelcar-prefetch")]);
    // Pod-level pull secrets cover init containers: nothing is added for them.
    assert_eq!(
        jsonpath::select(&pod, "$.spec.imagePullSecrets[*].name").unwrap(),
        [&json!("private-registry")]
    );
}

/// Scenario 2 of README "Pods that must run as non-root": a ClusterAdmissionPolicy sees
/// a pod that requires non-root and no user anywhere. KServe's modelcar will get
/// `runAsUser` (uidModelcar); an init container without one could hold the pod in Init.
#[test]
fn pod_that_requires_non_root_without_a_user_is_not_pre_pulled_by_default() {
    let outcome = evaluate_fixture("kserve-predictor-psa-restricted", json!({}));
    assert_eq!(outcome.pod, None);
    let [warning] = outcome.warnings.as_slice() else {
        panic!("{outcome:?}")
    };
    for said in [
        "image ghcr.io/example/models/granite:2.0 is not pre-pulled",
        "securityContext: {runAsUser: 1010}",
    ] {
        assert!(warning.contains(said), "{warning}");
    }
}

#[test]
fn pod_that_requires_non_root_is_pre_pulled_with_the_configured_user() {
    let settings = json!({"securityContext": {"runAsUser": 1010}});
    let pod = mutated("kserve-predictor-psa-restricted", settings);
    let added = &jsonpath::select(
        &pod,
        "$.spec.initContainers[?(@.name == 'modelcar-prefetch')]",
    )
    .unwrap()[0];
    // Pod Security `restricted`: no escalation, drop ALL, no added capability;
    // runAsNonRoot and seccomp come from the pod level here.
    assert_eq!(
        added["securityContext"],
        json!({"runAsUser": 1010, "allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}})
    );
    assert_eq!(pod["spec"]["securityContext"]["runAsNonRoot"], json!(true));
}

/// Scenario 1: KServe's modelcar, appended after a ClusterAdmissionPolicy, runs with
/// `runAsUser` and no `runAsNonRoot`; the added container must not demand more.
#[test]
fn containers_that_run_as_non_root_do_not_make_the_added_one_require_it() {
    let pod = mutated("kserve-predictor-containers-run-as-non-root", json!({}));
    let sc = jsonpath::select(
        &pod,
        "$.spec.initContainers[?(@.name == 'modelcar-prefetch')].securityContext",
    )
    .unwrap();
    assert!(sc[0].get("runAsNonRoot").is_none() && sc[0].get("runAsUser").is_none());
}

#[test]
fn mutated_pods_are_valid_kubernetes_pods() {
    for name in ["kserve-predictor-v0.13-modelcar", "pod-two-modelcars"] {
        let pod = mutated(name, json!({}));
        let typed: k8s_openapi::api::core::v1::Pod = serde_json::from_value(pod).unwrap();
        let spec = typed.spec.unwrap();
        let mut names: Vec<String> = spec
            .containers
            .iter()
            .chain(spec.init_containers.iter().flatten())
            .map(|c| c.name.clone())
            .collect();
        let count = names.len();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), count, "{name}: container names repeat");
    }
}

/// The original pod with the modelcars at `moved` (spec.containers indices)
/// moved to the end of the init containers as native sidecars.
fn original_with_sidecars(name: &str, moved: &[usize], link: &str) -> Value {
    let mut pod = fixture(name)["object"].clone();
    let containers = pod["spec"]["containers"].as_array_mut().unwrap();
    let mut sidecars: Vec<Value> = moved.iter().rev().map(|i| containers.remove(*i)).collect();
    sidecars.reverse();
    for s in &mut sidecars {
        s["restartPolicy"] = json!("Always");
        s["startupProbe"] = serde_json::from_str(&crate::model_link::startup_probe(link)).unwrap();
    }
    let spec = pod["spec"].as_object_mut().unwrap();
    let init = spec.entry("initContainers").or_insert_with(|| json!([]));
    init.as_array_mut().unwrap().extend(sidecars);
    pod
}

#[test]
fn llm_inference_service_modelcar_becomes_a_native_sidecar() {
    let name = "llm-inference-service-modelcar";
    assert_eq!(
        mutated(name, json!({"mode": "nativeSidecar"})),
        original_with_sidecars(name, &[1], "/mnt/models/qwen")
    );
}

#[test]
fn carried_modelcars_all_become_native_sidecars() {
    let pod = mutated("pod-two-modelcars", json!({"mode": "nativeSidecar"}));
    let names = jsonpath::select(&pod, "$.spec.initContainers[*].name").unwrap();
    assert_eq!(names, [&json!("modelcar"), &json!("modelcar-1")]);
    assert_eq!(
        jsonpath::select(&pod, "$.spec.containers[*].name").unwrap(),
        [&json!("server")]
    );
    let probes = jsonpath::select(
        &pod,
        "$.spec.initContainers[*].startupProbe.exec.command[2]",
    )
    .unwrap();
    assert_eq!(
        probes,
        [
            &json!("test -e '/mnt/models-a'"),
            &json!("test -e '/mnt/models-b'")
        ]
    );
}

#[rstest]
#[case::v0_13("kserve-predictor-v0.13-modelcar")]
#[case::istio("kserve-predictor-istio-private-digest")]
fn kserve_managed_modelcars_stay_and_are_pre_pulled_in_native_sidecar_mode(#[case] name: &str) {
    assert_eq!(
        mutated(name, json!({"mode": "nativeSidecar"})),
        mutated(name, json!({})),
        "KServe would inject a second modelcar if this one moved"
    );
}

#[test]
fn auto_mode_off_a_policy_host_falls_back_to_init_containers() {
    // Natively there is no host to list nodes: the fallback is the init container.
    assert_eq!(
        mutated("pod-two-modelcars", json!({"mode": "auto"})),
        mutated("pod-two-modelcars", json!({}))
    );
}
