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
    evaluation
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

fn op(kind: &str, path: &str) -> (String, String) {
    (kind.into(), path.into())
}

#[rstest]
#[case::before_kserve_webhook("kserve-predictor-before-kserve-webhook", vec![op("add", "/spec/initContainers")])]
#[case::kserve_v0_13_modelcar("kserve-predictor-v0.13-modelcar", vec![op("add", "/spec/initContainers")])]
#[case::psa_restricted("kserve-predictor-psa-restricted", vec![op("add", "/spec/initContainers")])]
#[case::istio_private_digest("kserve-predictor-istio-private-digest", vec![op("add", "/spec/initContainers/1")])]
#[case::two_modelcars("pod-two-modelcars", vec![op("add", "/spec/initContainers")])]
#[case::unknown_field("pod-unknown-field", vec![op("add", "/spec/initContainers")])]
#[case::kserve_v0_14_modelcar_init("kserve-predictor-v0.14-modelcar-init", vec![])]
#[case::llm_inference_service("llm-inference-service-modelcar", vec![])]
#[case::without_modelcar("pod-without-modelcar", vec![])]
#[case::update("kserve-predictor-update", vec![])]
#[case::delete("kserve-predictor-delete", vec![])]
#[case::deployment("deployment-create", vec![])]
fn default_settings(#[case] name: &str, #[case] expected_ops: Vec<(String, String)>) {
    let policy = common::policy();
    let evaluation = evaluate(&policy, name, json!({}));
    assert_eq!(ops(&evaluation), expected_ops, "{name}");
    assert_expected_patch(name, "", &evaluation);
    assert!(
        policy.host_calls().is_empty(),
        "{name}: the default mode never asks the cluster"
    );
}

#[rstest]
#[case::before_kserve_webhook("kserve-predictor-before-kserve-webhook")]
#[case::kserve_v0_13_modelcar("kserve-predictor-v0.13-modelcar")]
#[case::psa_restricted("kserve-predictor-psa-restricted")]
#[case::istio_private_digest("kserve-predictor-istio-private-digest")]
#[case::two_modelcars("pod-two-modelcars")]
#[case::unknown_field("pod-unknown-field")]
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
    assert!(ops(&evaluation).iter().all(|(op, _)| op == "add"));
}

#[test]
fn mutation_is_logged() {
    let policy = common::policy();
    evaluate(&policy, "kserve-predictor-before-kserve-webhook", json!({}));
    let logs = serde_json::to_string(&policy.logs()).unwrap();
    assert!(
        logs.contains(
            "added init container modelcar-prefetch to pre-pull quay.io/example/models-iris:v1"
        ),
        "{logs}"
    );
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
#[case::one_old_node(cluster(Ok(node_list(&["v1.31.0", "v1.28.15-gke.1020000"]))))]
#[case::unparsable(cluster(Ok(node_list(&["v1.31.0", "one-point-thirty"]))))]
#[case::empty(cluster(Ok(node_list(&[]))))]
#[case::call_fails(cluster(Err("nodes is forbidden".into())))]
#[case::capability_not_granted(HostTable::new())]
fn auto_falls_back_to_init_containers(#[case] host: HostTable) {
    let policy = policy_with(host);
    let name = "pod-two-modelcars";
    let evaluation = evaluate(&policy, name, json!({"mode": "auto"}));
    assert_expected_patch(name, "", &evaluation);
    assert_eq!(policy.host_calls().len(), 1);
    let logs = serde_json::to_string(&policy.logs()).unwrap();
    assert!(
        logs.contains("mode auto uses init containers, not native sidecars"),
        "{logs}"
    );
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
