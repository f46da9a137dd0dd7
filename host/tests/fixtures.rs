//! Every request fixture through the built module, as policy-server runs it:
//! the decision and the exact JSON Patch the API server would receive.
//!
//! Expected patches live in `e2e-tests/expected/<fixture>[.<variant>].json`
//! (shared with the bats suite). `UPDATE_EXPECTED=1 cargo test -p
//! modelcar-prefetch-host --test fixtures` rewrites them from the module's
//! answers; review the diff before committing it.

mod common;

use modelcar_prefetch_host::{Evaluation, HostTable, Policy, fixture, workspace_root};
use rstest::rstest;
use serde_json::{Value, json};

fn expected_path(name: &str, variant: &str) -> std::path::PathBuf {
    let file = match variant {
        "" => format!("{name}.json"),
        v => format!("{name}.{v}.json"),
    };
    workspace_root().join("e2e-tests/expected").join(file)
}

/// Compares the patch with the expected one as policy-server's diff may order
/// it: the same operations, in any order, that give the same pod. (The ops'
/// order follows the object's key order, which depends on serde_json's
/// `preserve_order` feature in the host.)
fn assert_expected_patch(name: &str, variant: &str, evaluation: &Evaluation) {
    let got = evaluation.patch_json();
    let path = expected_path(name, variant);
    if std::env::var_os("UPDATE_EXPECTED").is_some() {
        let text = serde_json::to_string_pretty(&got).unwrap() + "\n";
        std::fs::write(&path, text).unwrap();
        return;
    }
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let expected: Value = serde_json::from_str(&text).unwrap();
    let context = format!("{name} {variant}: patch differs from {}", path.display());
    assert_eq!(sorted_ops(&got), sorted_ops(&expected), "{context}");
    let original = &fixture(name)["object"];
    let apply = |patch: &Value| {
        let mut pod = original.clone();
        let patch: json_patch::Patch = serde_json::from_value(patch.clone()).unwrap();
        json_patch::patch(&mut pod, &patch.0).unwrap();
        pod
    };
    assert_eq!(apply(&got), apply(&expected), "{context}");
}

fn sorted_ops(patch: &Value) -> Vec<String> {
    let mut ops: Vec<String> = patch.as_array().unwrap().iter().map(canonical).collect();
    ops.sort();
    ops
}

/// JSON text with object keys sorted, whatever the map's own order.
fn canonical(value: &Value) -> String {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            let fields: Vec<String> = entries
                .into_iter()
                .map(|(k, v)| format!("{}:{}", Value::from(k.as_str()), canonical(v)))
                .collect();
            format!("{{{}}}", fields.join(","))
        }
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(canonical).collect::<Vec<_>>().join(",")
        ),
        other => other.to_string(),
    }
}

/// Evaluates a fixture that needs no warning: accepted, and a patch exactly when
/// the `prefetch` audit annotation says what it changed.
fn evaluate(policy: &Policy, name: &str, settings: Value) -> Evaluation {
    let evaluation = policy.validate(&fixture(name), &settings).unwrap();
    assert!(
        evaluation.allowed,
        "{name}: rejected: {:?}",
        evaluation.message
    );
    assert!(
        evaluation.warnings.is_empty(),
        "{name}: {:?}",
        evaluation.warnings
    );
    assert_audited(name, &evaluation);
    evaluation
}

/// Every init container the patch adds is named in the audit annotation.
fn assert_audited(name: &str, evaluation: &Evaluation) {
    let audit = evaluation.audit_annotations.get("prefetch");
    assert_eq!(
        audit.is_some(),
        evaluation.patch.is_some(),
        "{name}: {:?}",
        evaluation.audit_annotations
    );
    let patched = evaluation.patched(&fixture(name)["object"]);
    let before = fixture(name)["object"]["spec"]["initContainers"]
        .as_array()
        .map_or(0, Vec::len);
    for added in patched["spec"]["initContainers"]
        .as_array()
        .map(|list| &list[before..])
        .unwrap_or_default()
    {
        let (container, image) = (
            added["name"].as_str().unwrap(),
            added["image"].as_str().unwrap(),
        );
        let audit = audit.map(String::as_str).unwrap_or_default();
        assert!(
            audit.contains(container) && audit.contains(image),
            "{name}: {container} ({image}) is not in the audit annotation {audit:?}"
        );
    }
}

/// The ops of a patch as (op, path) pairs.
fn ops(evaluation: &Evaluation) -> Vec<(String, String)> {
    evaluation
        .patch_json()
        .as_array()
        .unwrap()
        .iter()
        .map(|op| {
            (
                op["op"].as_str().unwrap().into(),
                op["path"].as_str().unwrap().into(),
            )
        })
        .collect()
}

/// What a patch touches: the first two segments of each op's path, once each.
fn touched(evaluation: &Evaluation) -> Vec<String> {
    let mut parts: Vec<String> = ops(evaluation)
        .into_iter()
        .map(|(_, path)| path.split('/').take(3).collect::<Vec<_>>().join("/"))
        .collect();
    parts.dedup();
    parts.sort();
    parts.dedup();
    parts
}

const INIT: &str = "/spec/initContainers";
const CONTAINERS: &str = "/spec/containers";
const ANNOTATIONS: &str = "/metadata/annotations";

// A reorder of spec.containers reaches the API server as policy-server's diff
// of the two lists, field by field; the exact patches are in e2e-tests/expected.
#[rstest]
#[case::before_kserve_webhook("kserve-predictor-before-kserve-webhook", &[INIT])]
#[case::kserve_v0_13_modelcar("kserve-predictor-v0.13-modelcar", &[ANNOTATIONS, CONTAINERS, INIT])]
#[case::containers_run_as_non_root("kserve-predictor-containers-run-as-non-root", &[INIT])]
#[case::v0_13_uid_modelcar_restricted("kserve-predictor-v0.13-uid-modelcar-restricted", &[ANNOTATIONS, CONTAINERS, INIT])]
#[case::v0_14_uid_modelcar_restricted("kserve-predictor-v0.14-uid-modelcar-restricted", &[ANNOTATIONS, CONTAINERS, INIT])]
// Istio sets kubectl's default container itself.
#[case::istio_private_digest("kserve-predictor-istio-private-digest", &[CONTAINERS, INIT])]
#[case::two_modelcars("pod-two-modelcars", &[ANNOTATIONS, CONTAINERS, INIT])]
#[case::unknown_field("pod-unknown-field", &[ANNOTATIONS, CONTAINERS, INIT])]
#[case::kserve_v0_14_modelcar_init("kserve-predictor-v0.14-modelcar-init", &[ANNOTATIONS, CONTAINERS])]
#[case::llm_inference_service("llm-inference-service-modelcar", &[ANNOTATIONS, CONTAINERS])]
#[case::without_modelcar("pod-without-modelcar", &[])]
#[case::update("kserve-predictor-update", &[])]
#[case::delete("kserve-predictor-delete", &[])]
#[case::deployment("deployment-create", &[])]
fn default_settings(#[case] name: &str, #[case] expected: &[&str]) {
    let policy = common::policy();
    let evaluation = evaluate(&policy, name, json!({}));
    assert_eq!(touched(&evaluation), expected, "{name}");
    assert_expected_patch(name, "", &evaluation);
    assert!(
        policy.host_calls().is_empty(),
        "{name}: the default mode never asks the cluster"
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
#[case::unknown_field("pod-unknown-field")]
#[case::llm_inference_service("llm-inference-service-modelcar")]
fn patched_pod_evaluated_again_gets_no_patch(#[case] name: &str) {
    let policy = common::policy();
    let mut request = fixture(name);
    let evaluation = evaluate(&policy, name, json!({}));
    request["object"] = evaluation.patched(&request["object"]);
    let again = policy.validate(&request, &json!({})).unwrap();
    assert!(
        again.allowed && again.patch.is_none(),
        "{name}: {:?}",
        again.patch_json()
    );
}

#[test]
fn unknown_fields_are_not_removed() {
    let evaluation = evaluate(&common::policy(), "pod-unknown-field", json!({}));
    let patched = evaluation.patched(&fixture("pod-unknown-field")["object"]);
    assert_eq!(patched["spec"]["workloadClass"], json!("batch"));
    assert_eq!(patched["metadata"]["creationTimestamp"], Value::Null);
    let kserve_container = &patched["spec"]["containers"][1];
    assert_eq!(kserve_container["name"], json!("kserve-container"));
    assert_eq!(
        kserve_container["sharedMemoryPolicy"]["mode"],
        json!("Shared")
    );
}

/// A log call costs policy-server a JSON parse and a log line per pod: what a
/// mutation did travels in the audit annotation instead.
#[test]
fn mutation_is_audited_not_logged() {
    let policy = common::policy();
    let evaluation = evaluate(&policy, "kserve-predictor-before-kserve-webhook", json!({}));
    assert_eq!(
        evaluation.audit_annotations["prefetch"],
        "added init container modelcar-prefetch to pre-pull quay.io/example/models-iris:v1 \
         (from annotation internal.serving.kserve.io/storage-initializer-sourceuri)"
    );
    assert_eq!(policy.logs(), Vec::<Value>::new());
}

/// README "Pods that must run as non-root", scenario 2, as policy-server runs it.
#[test]
fn pod_requiring_non_root_without_a_user_is_warned_about_not_patched() {
    let name = "kserve-predictor-psa-restricted";
    let policy = common::policy();
    let evaluation = policy.validate(&fixture(name), &json!({})).unwrap();
    assert!(evaluation.allowed && evaluation.patch.is_none());
    assert!(evaluation.audit_annotations.is_empty());
    let [warning] = evaluation.warnings.as_slice() else {
        panic!("{:?}", evaluation.warnings)
    };
    assert!(
        warning.starts_with(
            "modelcar-prefetch: image ghcr.io/example/models/granite:2.0 is not pre-pulled"
        ) && warning.contains("securityContext: {runAsUser: 1010}"),
        "{warning}"
    );
    assert_expected_patch(name, "", &evaluation);
    let logs = serde_json::to_string(&policy.logs()).unwrap();
    assert!(logs.contains("is not pre-pulled"), "{logs}");

    let with_user = evaluate(
        &policy,
        name,
        json!({"securityContext": {"runAsUser": 1010}}),
    );
    assert_expected_patch(name, "uid-setting", &with_user);
}

#[rstest]
#[case::empty_command(json!({"command": []}), "command is empty")]
#[case::kserve_name(json!({"initContainerName": "modelcar-init"}), "initContainerName: \"modelcar-init\" is the name KServe gives its own init container")]
#[case::typo(json!({"modelcarContainerName": ["x"]}), "unknown field `modelcarContainerName`")]
#[case::bad_quantity(json!({"resources": {"limits": {"memory": "lots"}}}), "resources.limits.memory")]
#[case::no_source(json!({"modelcarContainerNames": [], "storageUriAnnotations": []}), "both empty")]
#[case::bad_mode(json!({"mode": "sidecar"}), "unknown variant `sidecar`")]
fn invalid_settings_are_refused_by_the_module(#[case] settings: Value, #[case] message: &str) {
    let verdict = common::policy().validate_settings(&settings).unwrap();
    assert!(!verdict.valid);
    let got = verdict.message.unwrap_or_default();
    assert!(got.contains(message), "{got}");
}

#[test]
fn unreadable_pod_is_admitted_with_a_warning() {
    let mut request = fixture("kserve-predictor-v0.13-modelcar");
    request["object"]["spec"]["containers"] = json!({"name": "modelcar"});
    let evaluation = common::policy().validate(&request, &json!({})).unwrap();
    assert!(evaluation.allowed && evaluation.patch.is_none());
    assert_eq!(evaluation.warnings.len(), 1);
    assert!(
        evaluation.warnings[0].contains("spec.containers is malformed"),
        "{:?}",
        evaluation.warnings
    );
}

fn node_list(versions: &[&str]) -> Value {
    let items: Vec<Value> = versions
        .iter()
        .enumerate()
        .map(|(i, v)| json!({"metadata": {"name": format!("node-{i}")}, "status": {"nodeInfo": {"kubeletVersion": v}}}))
        .collect();
    json!({"apiVersion": "v1", "kind": "NodeList", "metadata": {}, "items": items})
}

fn cluster(answer: Result<Value, String>) -> HostTable {
    HostTable::new().answer("kubernetes", "list_resources_all", move |_| answer.clone())
}

fn policy_with(host: HostTable) -> Policy {
    Policy::with_host(host).unwrap_or_else(|e| panic!("{e}"))
}

#[rstest]
#[case::native_sidecar("llm-inference-service-modelcar", json!({"mode": "nativeSidecar"}), "native-sidecar")]
#[case::two_modelcars_native_sidecar("pod-two-modelcars", json!({"mode": "nativeSidecar"}), "native-sidecar")]
#[case::auto_with_new_nodes("llm-inference-service-modelcar", json!({"mode": "auto"}), "native-sidecar")]
fn modelcar_moves_to_a_native_sidecar(
    #[case] name: &str,
    #[case] settings: Value,
    #[case] variant: &str,
) {
    let policy = policy_with(cluster(Ok(node_list(&[
        "v1.31.0-eks-a737599",
        "v1.30.1+k3s1",
    ]))));
    let evaluation = evaluate(&policy, name, settings.clone());
    assert_expected_patch(name, variant, &evaluation);
    let mut request = fixture(name);
    request["object"] = evaluation.patched(&request["object"]);
    let again = policy.validate(&request, &settings).unwrap();
    assert!(again.patch.is_none(), "{:?}", again.patch_json());
}

#[test]
fn auto_asks_for_nodes_with_field_masks() {
    let policy = policy_with(cluster(Ok(node_list(&["v1.30.0"]))));
    evaluate(
        &policy,
        "llm-inference-service-modelcar",
        json!({"mode": "auto"}),
    );
    let calls = policy.host_calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(
        (calls[0].namespace.as_str(), calls[0].operation.as_str()),
        ("kubernetes", "list_resources_all")
    );
    assert_eq!(
        calls[0].payload,
        json!({"api_version": "v1", "kind": "Node", "label_selector": null, "field_selector": null,
               "field_masks": ["metadata.name", "status.nodeInfo.kubeletVersion"]})
    );
}

#[rstest]
#[case::one_old_node(cluster(Ok(node_list(&["v1.31.0", "v1.28.15-gke.1020000"]))), false)]
#[case::unparsable(cluster(Ok(node_list(&["v1.31.0", "one-point-thirty"]))), true)]
#[case::empty(cluster(Ok(node_list(&[]))), true)]
#[case::call_fails(cluster(Err("nodes is forbidden".into())), true)]
#[case::capability_not_granted(HostTable::new(), true)]
fn auto_falls_back_to_init_containers(#[case] host: HostTable, #[case] warned: bool) {
    let policy = policy_with(host);
    let name = "pod-two-modelcars";
    let evaluation = policy
        .validate(&fixture(name), &json!({"mode": "auto"}))
        .unwrap();
    assert_expected_patch(name, "", &evaluation);
    assert_eq!(policy.host_calls().len(), 1);
    let fallback = "mode auto uses init containers, not native sidecars";
    let logs = serde_json::to_string(&policy.logs()).unwrap();
    let warnings = evaluation.warnings.join("\n");
    let audit = &evaluation.audit_annotations["prefetch"];
    if warned {
        // The policy could not tell: a problem for the cluster admin.
        assert!(
            logs.contains(fallback) && warnings.contains(fallback),
            "{logs} {warnings}"
        );
        assert!(!audit.contains(fallback), "{audit}");
    } else {
        // An old kubelet is a decision: recorded with what was done.
        assert!(audit.contains(fallback), "{audit}");
        assert!(evaluation.warnings.is_empty() && policy.logs().is_empty());
    }
}

#[rstest]
#[case::kserve_managed("kserve-predictor-v0.13-modelcar")]
#[case::annotation_only("kserve-predictor-before-kserve-webhook")]
#[case::without_modelcar("pod-without-modelcar")]
#[case::update("kserve-predictor-update")]
#[case::deployment("deployment-create")]
fn auto_makes_no_host_call_without_a_movable_modelcar(#[case] name: &str) {
    let policy = policy_with(cluster(Err("must not be called".into())));
    evaluate(&policy, name, json!({"mode": "auto"}));
    assert!(
        policy.host_calls().is_empty(),
        "{name}: {:?}",
        policy.host_calls()
    );
}

/// The bats suite's kwctl session files answer exactly the call the module makes.
#[rstest]
#[case::all_nodes_ready("nodes-all-native-sidecar-ready.yml", "native-sidecar")]
#[case::one_kubelet_too_old("nodes-one-kubelet-too-old.yml", "")]
fn kwctl_session_files_drive_auto_mode(#[case] session: &str, #[case] variant: &str) {
    let path = workspace_root().join("e2e-tests/sessions").join(session);
    let host = modelcar_prefetch_host::session::load_host_table(&path).unwrap();
    let policy = policy_with(host);
    let evaluation = evaluate(&policy, "pod-two-modelcars", json!({"mode": "auto"}));
    assert_expected_patch("pod-two-modelcars", variant, &evaluation);
    assert_eq!(policy.host_calls().len(), 1);
}
