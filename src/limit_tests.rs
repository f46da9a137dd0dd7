//! Pods at the limits of what the API server admits: 1,000 containers, 1 MB
//! of annotations. Only the shape of the result is asserted here; how long
//! they take is measured by the benchmark (policy-server's budget is 2 s).

use serde_json::{Map, Value, json};

use crate::admission::evaluate;
use crate::cluster::tests::FakeCluster;
use crate::mutation::Outcome;
use crate::mutation::testing::{Got, desired};
use crate::settings::{KSERVE_STORAGE_URI_ANNOTATION as KSERVE, Settings};

fn evaluate_pod(pod: &Value, settings: Value) -> Outcome {
    let payload = json!({
        "request": {"uid": "u", "kind": {"group": "", "version": "v1", "kind": "Pod"},
                    "operation": "CREATE", "object": pod},
        "settings": settings
    });
    evaluate(&serde_json::to_vec(&payload).unwrap())
}

/// The mutated pod and the changes it was told with; panics when the pod is not mutated.
fn mutated(pod: &Value, settings: Value) -> (Value, Vec<String>) {
    match evaluate_pod(pod, settings) {
        Outcome {
            pod: Some(object),
            changes,
            ..
        } => (serde_json::from_str(&object).unwrap(), changes),
        other => panic!("expected a mutation, got {other:?}"),
    }
}

fn names(list: &Value) -> Vec<&str> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect()
}

/// 1,000 containers; every 100th is a modelcar with its own image; nine init
/// containers already use names the policy would pick.
fn thousand_containers() -> Value {
    let containers: Vec<Value> = (0..1000)
        .map(|i| match i {
            _ if i % 100 == 99 => json!({"name": format!("modelcar-{i}"), "image": format!("registry.example.com:5000/models/m{i}:v1"),
                     "args": ["sh", "-c", "ln -sf /proc/$$$$/root/models /mnt/models && sleep infinity"]}),
            _ => json!({"name": format!("c-{i}"), "image": format!("quay.io/app/c{i}:1"), "resources": {"limits": {"cpu": "1"}}}),
        })
        .collect();
    let init: Vec<Value> = (1..10)
        .map(|i| json!({"name": format!("modelcar-prefetch-{i}"), "image": "busybox"}))
        .collect();
    json!({"metadata": {"generateName": "big-"}, "spec": {"containers": containers, "initContainers": init}})
}

#[test]
fn a_thousand_containers_get_one_init_container_per_model_image() {
    let pod = thousand_containers();
    let (object, changes) = mutated(&pod, json!({"startModelcarFirst": false}));
    assert_eq!(changes.len(), 10);
    assert_eq!(object["spec"]["containers"], pod["spec"]["containers"]);
    let all_init = object["spec"]["initContainers"].as_array().unwrap();
    assert_eq!(
        all_init[..9],
        pod["spec"]["initContainers"].as_array().unwrap()[..]
    );
    let init = &Value::Array(all_init[9..].to_vec());
    // modelcar-prefetch, then -10, -11, ...: -1 to -9 are taken.
    let expected: Vec<String> = std::iter::once("modelcar-prefetch".to_string())
        .chain((10..19).map(|n| format!("modelcar-prefetch-{n}")))
        .collect();
    assert_eq!(names(init), expected);
    let images: Vec<&str> = init
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["image"].as_str().unwrap())
        .collect();
    let expected_images: Vec<String> = (0..10)
        .map(|k| format!("registry.example.com:5000/models/m{}:v1", k * 100 + 99))
        .collect();
    assert_eq!(images, expected_images);
    let mut again = object;
    let settings = json!({"startModelcarFirst": false});
    assert_eq!(
        evaluate_pod(&again, settings.clone()),
        Outcome::default(),
        "evaluating the result again changed it"
    );
    again["spec"]["initContainers"] = pod["spec"]["initContainers"].clone();
    assert!(evaluate_pod(&again, settings).pod.is_some());
}

#[test]
fn a_thousand_containers_start_their_ten_modelcars_first() {
    let pod = thousand_containers();
    let (object, changes) = mutated(&pod, json!({}));
    let containers = names(&object["spec"]["containers"]);
    let modelcars: Vec<String> = (0..10)
        .map(|k| format!("modelcar-{}", k * 100 + 99))
        .collect();
    assert_eq!(containers[..10], modelcars);
    let others: Vec<&str> = names(&pod["spec"]["containers"])
        .into_iter()
        .filter(|n| n.starts_with("c-"))
        .collect();
    assert_eq!(containers[10..], others);
    let hooks = object["spec"]["containers"].as_array().unwrap()[..10]
        .iter()
        .filter(|c| c["lifecycle"]["postStart"]["exec"].is_object())
        .count();
    assert_eq!(hooks, 10);
    assert_eq!(
        object["metadata"]["annotations"]["kubectl.kubernetes.io/default-container"],
        "c-0"
    );
    // 10 pre-pulls, 10 modelcars first, the annotation.
    assert_eq!(changes.len(), 21);
    assert_eq!(evaluate_pod(&object, json!({})), Outcome::default());
}

#[test]
fn a_thousand_containers_without_a_modelcar_are_accepted() {
    let containers: Vec<Value> = (0..1000)
        .map(|i| json!({"name": format!("c-{i}"), "image": format!("app:{i}")}))
        .collect();
    let pod = json!({"spec": {"containers": containers}});
    assert_eq!(evaluate_pod(&pod, json!({})), Outcome::default());
}

#[test]
fn a_thousand_containers_in_native_sidecar_mode_move_their_modelcars() {
    let pod = thousand_containers();
    let settings = Settings::from_value(&json!({"mode": "auto"}));
    let cluster = FakeCluster::nodes(&["v1.30.1"]);
    let Got::Mutated { pod: out, .. } = desired(&settings, pod, &cluster) else {
        panic!("expected a mutation")
    };
    assert_eq!(out["spec"]["containers"].as_array().unwrap().len(), 990);
    let init = out["spec"]["initContainers"].as_array().unwrap();
    assert_eq!(init.len(), 19);
    assert!(
        init[9..]
            .iter()
            .all(|c| c["restartPolicy"] == "Always" && c["startupProbe"].is_object())
    );
    assert_eq!(desired(&settings, out, &cluster), Got::Unchanged);
}

#[test]
fn a_thousand_modelcars_with_distinct_images_get_a_thousand_unique_names() {
    let containers: Vec<Value> = (0..1000)
        .map(|i| json!({"name": format!("modelcar-{i}"), "image": format!("m{i}")}))
        .collect();
    let pod = json!({"spec": {"containers": containers}});
    let (object, _) = mutated(&pod, json!({}));
    let init = names(&object["spec"]["initContainers"]);
    assert_eq!(init.len(), 1000);
    assert_eq!(init[999], "modelcar-prefetch-999");
    let mut unique = init.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), 1000);
}

/// 1 MB of annotations (the API server's limit is 256 KiB: the policy must
/// not depend on it), the KServe one last.
fn megabyte_of_annotations(kserve: &str) -> Value {
    let mut annotations = Map::new();
    for i in 0..1024 {
        annotations.insert(format!("example.com/note-{i}"), json!("x".repeat(1024)));
    }
    annotations.insert(KSERVE.into(), json!(kserve));
    json!({"metadata": {"annotations": annotations},
           "spec": {"containers": [{"name": "kserve-container", "image": "kserve/sklearnserver:v0.13.0"}]}})
}

#[test]
fn a_megabyte_of_annotations_with_an_oci_storage_uri_is_mutated() {
    let pod = megabyte_of_annotations("oci://quay.io/example/models-iris:v1");
    assert!(pod.to_string().len() > 1_048_576);
    let (object, changes) = mutated(&pod, json!({}));
    assert_eq!(changes.len(), 1);
    assert_eq!(object["metadata"], pod["metadata"]);
    assert_eq!(
        names(&object["spec"]["initContainers"]),
        ["modelcar-prefetch"]
    );
    assert_eq!(
        object["spec"]["initContainers"][0]["image"],
        "quay.io/example/models-iris:v1"
    );
    assert_eq!(evaluate_pod(&object, json!({})), Outcome::default());
}

#[test]
fn a_megabyte_of_annotations_without_an_oci_storage_uri_is_accepted() {
    let pod = megabyte_of_annotations("s3://models/iris");
    assert_eq!(evaluate_pod(&pod, json!({})), Outcome::default());
}

#[test]
fn a_megabyte_storage_uri_is_pre_pulled_verbatim() {
    let image = format!("quay.io/example/{}:v1", "m".repeat(1 << 20));
    let pod = json!({"metadata": {"annotations": {KSERVE: format!("oci://{image}")}},
                     "spec": {"containers": [{"name": "kserve-container", "image": "srv"}]}});
    let (object, _) = mutated(&pod, json!({}));
    assert_eq!(object["spec"]["initContainers"][0]["image"], json!(image));
    assert_eq!(
        object["spec"]["initContainers"][0]["imagePullPolicy"],
        "IfNotPresent"
    );
}
