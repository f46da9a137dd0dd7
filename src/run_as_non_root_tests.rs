//! The two scenarios of README "Pods that must run as non-root", on pods
//! shaped as KServe writes them: a ClusterAdmissionPolicy sees the pod before
//! KServe's webhook (annotation only), a namespaced AdmissionPolicy after it.
//! KServe's `uidModelcar` (1010 by default) sets `runAsUser` on `modelcar` and
//! on `kserve-container`: v0.12 to v0.17 replace the container's whole
//! securityContext with it, v0.18+ set only `runAsUser`. v0.14+ also add
//! `modelcar-init` (never with a user).

use rstest::rstest;
use serde_json::{Value, json};

use crate::cluster::tests::FakeCluster;
use crate::mutation::testing::{Got, desired};
use crate::settings::{KSERVE_STORAGE_URI_ANNOTATION as KSERVE, Settings};

const IMAGE: &str = "quay.io/example/models-iris:v1";

/// What a container of a `restricted` namespace's pod template sets itself.
fn restricted() -> Value {
    json!({"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}, "runAsNonRoot": true})
}

fn v0_18_with_uid() -> Value {
    let mut sc = restricted();
    sc["runAsUser"] = json!(1010);
    sc
}

/// A predictor pod: the pod's securityContext, kserve-container's, and, after
/// KServe's webhook, its modelcar's (`Value::Null`: none) and modelcar-init.
fn predictor(
    pod_sc: Value,
    server_sc: Value,
    modelcar: Option<Value>,
    modelcar_init: bool,
) -> Value {
    let mut containers = vec![
        json!({"name": "kserve-container", "image": "kserve/sklearnserver:v0.13.0", "securityContext": server_sc}),
    ];
    if let Some(sc) = modelcar {
        let mut m = json!({"name": "modelcar", "image": IMAGE, "args": ["sh", "-c", "ln -s /proc/$$$$/root/models /mnt/models && sleep infinity"]});
        if !sc.is_null() {
            m["securityContext"] = sc;
        }
        containers.push(m);
    }
    let init: Vec<Value> = if modelcar_init {
        vec![
            json!({"name": "modelcar-init", "image": IMAGE, "args": ["sh", "-c", "[ -d /models ]"]}),
        ]
    } else {
        vec![]
    };
    json!({
        "metadata": {"generateName": "iris-predictor-", "annotations": {KSERVE: format!("oci://{IMAGE}")}},
        "spec": {"containers": containers, "initContainers": init, "securityContext": pod_sc}
    })
}

#[derive(Debug)]
enum Expect {
    /// Pre-pulled by a container with exactly these two fields (absent: `None`).
    Added {
        run_as_user: Option<i64>,
        run_as_non_root: Option<bool>,
    },
    /// Left alone, with the warning that names the fix.
    NotPrePulled,
    /// KServe's modelcar-init pulls the image; where the pod requires
    /// non-root it gets the modelcar's user (absent: `None`), or it would never start.
    KServeInit { run_as_user: Option<i64> },
}

fn added(run_as_user: Option<i64>, run_as_non_root: Option<bool>) -> Expect {
    Expect::Added {
        run_as_user,
        run_as_non_root,
    }
}

#[rstest]
// Scenario 1: every container runs as non-root, the pod does not say so.
#[case::s1_cluster_wide(predictor(json!({}), restricted(), None, false), json!({}), added(None, None))]
#[case::s1_namespaced_v0_13_uid(predictor(json!({}), json!({"runAsUser": 1010}), Some(json!({"runAsUser": 1010})), false), json!({}), added(Some(1010), None))]
#[case::s1_namespaced_v0_13_no_uid(predictor(json!({}), restricted(), Some(Value::Null), false), json!({}), added(None, None))]
#[case::s1_namespaced_v0_18_uid(predictor(json!({}), v0_18_with_uid(), Some(json!({"runAsUser": 1010})), true), json!({}), Expect::KServeInit { run_as_user: None })]
// Scenario 2: the pod requires non-root; whether a user is known decides.
#[case::s2_cluster_wide(predictor(json!({"runAsNonRoot": true}), restricted(), None, false), json!({}), Expect::NotPrePulled)]
#[case::s2_cluster_wide_uid_setting(predictor(json!({"runAsNonRoot": true}), restricted(), None, false), json!({"securityContext": {"runAsUser": 1010}}), added(Some(1010), None))]
#[case::s2_cluster_wide_pod_user(predictor(json!({"runAsNonRoot": true, "runAsUser": 1000}), restricted(), None, false), json!({}), added(None, None))]
#[case::s2_namespaced_v0_13_uid(predictor(json!({"runAsNonRoot": true}), json!({"runAsUser": 1010}), Some(json!({"runAsUser": 1010})), false), json!({}), added(Some(1010), None))]
#[case::s2_namespaced_v0_13_no_uid(predictor(json!({"runAsNonRoot": true}), restricted(), Some(Value::Null), false), json!({}), added(None, None))]
#[case::s2_namespaced_v0_13_setting_without_user(predictor(json!({"runAsNonRoot": true}), json!({"runAsUser": 1010}), Some(json!({"runAsUser": 1010})), false), json!({"securityContext": {"readOnlyRootFilesystem": true}}), added(Some(1010), None))]
#[case::s2_namespaced_v0_18_uid(predictor(json!({"runAsNonRoot": true}), v0_18_with_uid(), Some(json!({"runAsUser": 1010})), true), json!({}), Expect::KServeInit { run_as_user: Some(1010) })]
#[case::s2_namespaced_v0_18_no_uid(predictor(json!({"runAsNonRoot": true}), restricted(), Some(Value::Null), true), json!({}), Expect::KServeInit { run_as_user: None })]
fn added_container_starts_wherever_the_pod_would(
    #[case] pod: Value,
    #[case] settings: Value,
    #[case] expect: Expect,
) {
    let settings = Settings::from_value(&settings);
    let got = desired(&settings, pod, &FakeCluster(Err("unused".into())));
    match (expect, got) {
        (
            Expect::Added {
                run_as_user,
                run_as_non_root,
            },
            Got::Mutated { pod, warnings, .. },
        ) => {
            assert!(warnings.is_empty(), "{warnings:?}");
            let init = pod["spec"]["initContainers"].as_array().unwrap();
            let [added] = init.as_slice() else {
                panic!("{init:?}")
            };
            assert_eq!(added["image"], IMAGE);
            let sc = &added["securityContext"];
            assert_eq!(
                sc.get("runAsUser").and_then(Value::as_i64),
                run_as_user,
                "{sc}"
            );
            assert_eq!(
                sc.get("runAsNonRoot").and_then(Value::as_bool),
                run_as_non_root,
                "{sc}"
            );
        }
        (Expect::NotPrePulled, Got::Warned(warnings)) => {
            let [w] = warnings.as_slice() else {
                panic!("{warnings:?}")
            };
            assert!(
                w.starts_with(&format!("image {IMAGE} is not pre-pulled")),
                "{w}"
            );
            assert!(w.contains("securityContext: {runAsUser: 1010}"), "{w}");
        }
        (Expect::KServeInit { run_as_user }, Got::Mutated { pod, warnings, .. }) => {
            assert!(warnings.is_empty(), "{warnings:?}");
            let init = pod["spec"]["initContainers"].as_array().unwrap();
            let [modelcar_init] = init.as_slice() else {
                panic!("{init:?}")
            };
            assert_eq!(modelcar_init["name"], "modelcar-init");
            let user = modelcar_init.pointer("/securityContext/runAsUser");
            assert_eq!(user.and_then(Value::as_i64), run_as_user, "{modelcar_init}");
        }
        (expect, got) => panic!("expected {expect:?}, got {got:?}"),
    }
}
