//! Property tests: no input makes the policy block, lose or corrupt a pod.
//!
//! Realistic pods with random variations (container names that collide with
//! the policy's own, images with registry ports, tags and digests, existing
//! init containers, KServe annotations, unknown fields, missing sections) in
//! every mode, and arbitrary JSON as the object, the payload and the
//! settings. Every outcome is checked against the rules of issues 2 and 4:
//! unchanged, or the input plus init containers appended at the end (and, in
//! the native sidecar modes, the pod's own modelcars moved there); evaluating
//! the result again changes nothing; container names stay unique.
//!
//! 256 cases per property by default; `PROPTEST_CASES=10000 cargo test
//! proptests` runs more.

use std::collections::HashSet;

use proptest::prelude::*;
use proptest::sample::select;
use serde_json::{Map, Value, json};

use crate::admission::evaluate;
use crate::cluster::tests::FakeCluster;
use crate::image;
use crate::model_images;
use crate::model_link;
use crate::mutation::Outcome;
use crate::mutation::testing::{Got, desired};
use crate::names;
use crate::settings::{KSERVE_STORAGE_URI_ANNOTATION as KSERVE, Mode, Settings};
use crate::start_order;
use crate::view::PodView;

fn config() -> ProptestConfig {
    // `ProptestConfig::default()` reads PROPTEST_CASES; keep our own default moderate.
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(256);
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------- generators

fn image_ref() -> impl Strategy<Value = String> {
    let registry = select(vec![
        "",
        "quay.io/example/",
        "registry.example.com:5000/",
        "localhost:5000/",
        "ghcr.io/org/team/",
        "[::1]:5000/",
    ]);
    let repo = prop_oneof![
        select(vec!["models-iris", "models/llama-3-8b", "m", "granite"]).prop_map(String::from),
        "[a-z][a-z0-9._-]{0,8}",
    ];
    let tag = select(vec!["", ":v1", ":latest", ":2.0", ":V1_x"]);
    let digest = prop_oneof![
        3 => Just(String::new()),
        1 => "[0-9a-f]{64}".prop_map(|h| format!("@sha256:{h}")),
    ];
    (registry, repo, tag, digest).prop_map(|(r, p, t, d)| format!("{r}{p}{t}{d}"))
}

const NAMES: &[&str] = &[
    "modelcar",
    "modelcar-1",
    "modelcar-2",
    "modelcar-",
    "modelcar-prefetch",
    "modelcar-prefetch-1",
    "modelcar-prefetch-2",
    "modelcar-init",
    "modelcar-init-1",
    "istio-proxy",
    "istio-init",
    "kserve-container",
    "queue-proxy",
    "server",
    "pull-model",
    "pull-model-1",
];

fn container_name() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        10 => select(NAMES).prop_map(|s| Some(s.to_string())),
        3 => "[a-z][a-z0-9-]{0,8}".prop_map(Some),
        1 => Just(None),
    ]
}

/// An image from the pod's pool (so that images repeat across containers,
/// init containers and annotations), another one, or none at all.
fn image_field(pool: Vec<String>) -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        12 => select(pool).prop_map(|i| Some(Value::String(i))),
        4 => image_ref().prop_map(|i| Some(Value::String(i))),
        1 => Just(None),
        1 => Just(Some(Value::Null)),
        1 => Just(Some(json!(""))),
    ]
}

fn kserve_command() -> impl Strategy<Value = (String, Value)> {
    select(vec![
        (
            "args",
            json!([
                "sh",
                "-c",
                "ln -sf /proc/$$$$/root/models /mnt/models && sleep infinity"
            ]),
        ),
        (
            "command",
            json!([
                "/bin/sh",
                "-c",
                "mkdir -p /mnt && ln -s /proc/$$$$/root/models '/mnt/models' && sleep infinity"
            ]),
        ),
        ("args", json!(["serve-model"])),
        (
            "command",
            json!([
                "sh",
                "-c",
                "ln -s /proc/$$$$/root/models \"/mnt/my models\" && sleep infinity"
            ]),
        ),
    ])
    .prop_map(|(k, v)| (k.to_string(), v))
}

fn container_extras() -> impl Strategy<Value = Vec<(String, Value)>> {
    let pull = select(vec!["Always", "IfNotPresent", "Never"])
        .prop_map(|p| ("imagePullPolicy".to_string(), json!(p)));
    let resources = select(vec![
        json!({}),
        json!({"limits": {"cpu": "1", "memory": "2Gi"}, "requests": {"cpu": "10m"}}),
        json!({"limits": {"nvidia.com/gpu": "1"}}),
    ])
    .prop_map(|r| ("resources".to_string(), r));
    let security = select(vec![
        json!({"runAsUser": 1010}),
        json!({"privileged": true, "capabilities": {"add": ["NET_ADMIN"]}}),
        json!({"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}, "runAsNonRoot": true}),
        Value::Null,
    ])
    .prop_map(|s| ("securityContext".to_string(), s));
    let mounts = Just((
        "volumeMounts".to_string(),
        json!([{"name": "kserve-provision-location", "mountPath": "/mnt"}]),
    ));
    let unknown = any::<u8>().prop_map(|x| ("futureField".to_string(), json!({"x": x})));
    let probe = Just((
        "startupProbe".to_string(),
        json!({"tcpSocket": {"port": 8080}}),
    ));
    let env = Just(("env".to_string(), json!([{"name": "A", "value": "b"}])));
    prop::collection::vec(
        prop_oneof![
            pull.boxed(),
            resources.boxed(),
            security.boxed(),
            mounts.boxed(),
            unknown.boxed(),
            probe.boxed(),
            env.boxed(),
            kserve_command().boxed(),
        ],
        0..5,
    )
}

fn container(pool: Vec<String>) -> impl Strategy<Value = Value> {
    (container_name(), image_field(pool), container_extras()).prop_map(|(name, image, extras)| {
        let mut c = Map::new();
        if let Some(name) = name {
            c.insert("name".into(), json!(name));
        }
        if let Some(image) = image {
            c.insert("image".into(), image);
        }
        c.extend(extras);
        Value::Object(c)
    })
}

fn storage_uri(pool: Vec<String>) -> impl Strategy<Value = String> {
    let scheme = select(vec![
        "oci://",
        "oci://",
        "oci+modelcar://",
        "oci+native://",
        "oci+fetch://",
        "s3://",
        "hf://",
        "gs://",
    ]);
    prop_oneof![
        6 => (scheme, select(pool)).prop_map(|(s, i)| format!("{s}{i}")),
        1 => select(vec!["oci://", "", "oci+modelcar://", "s3://bucket/iris"]).prop_map(String::from),
    ]
}

/// `metadata`: absent, null, or with annotations absent, null or a map.
fn metadata(pool: Vec<String>) -> impl Strategy<Value = Option<Value>> {
    let annotations = prop_oneof![
        1 => Just(None),
        1 => Just(Some(Value::Null)),
        6 => (
            prop::option::of(storage_uri(pool)),
            prop::option::of(storage_uri(vec!["quay.io/other:1".into()])),
            any::<bool>(),
        )
            .prop_map(|(kserve, custom, istio)| {
                let mut a = Map::new();
                if istio {
                    a.insert("sidecar.istio.io/status".into(), json!("{\"initContainers\":[\"istio-init\"]}"));
                }
                if let Some(uri) = kserve {
                    a.insert(KSERVE.into(), json!(uri));
                }
                if let Some(uri) = custom {
                    a.insert("example.com/model".into(), json!(uri));
                }
                Some(Value::Object(a))
            }),
    ];
    prop_oneof![
        1 => Just(None),
        1 => Just(Some(Value::Null)),
        8 => (annotations, any::<bool>()).prop_map(|(annotations, extra)| {
            let mut m = Map::new();
            if extra {
                m.insert("generateName".into(), json!("iris-predictor-7d9f8-"));
                m.insert("creationTimestamp".into(), Value::Null);
                m.insert("labels".into(), json!({"app": "iris"}));
            }
            if let Some(a) = annotations {
                m.insert("annotations".into(), a);
            }
            Some(Value::Object(m))
        }),
    ]
}

/// A list field that is absent, null or a list of `item`s.
fn list_field(
    item: impl Strategy<Value = Value>,
    max: usize,
) -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        2 => Just(None),
        1 => Just(Some(Value::Null)),
        6 => prop::collection::vec(item, 0..=max).prop_map(|v| Some(Value::Array(v))),
    ]
}

fn init_container(pool: Vec<String>) -> impl Strategy<Value = Value> {
    (
        container_name(),
        prop_oneof![
            2 => select(pool).prop_map(Value::String),
            1 => Just(json!("docker.io/istio/proxyv2:1.22.3")),
        ],
    )
        .prop_map(|(name, image)| {
            let mut c = json!({"image": image, "command": ["true"]});
            if let Some(name) = name {
                c["name"] = json!(name);
            }
            c
        })
}

/// A realistic pod, with randomly missing sections and colliding names.
/// Container names are unique across the three lists, as the API server
/// would require of the input.
fn pod() -> impl Strategy<Value = Value> {
    prop::collection::vec(image_ref(), 1..4).prop_flat_map(|pool| {
        let ephemeral = container_name().prop_map(|n| json!({"name": n, "image": "busybox"}));
        let spec = (
            list_field(container(pool.clone()), 6),
            list_field(init_container(pool.clone()), 3),
            list_field(ephemeral, 2),
            any::<[bool; 3]>(),
            select(vec![
                json!({"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}}),
                json!({"runAsNonRoot": true, "runAsUser": 1000}),
                json!({"runAsUser": 1000}),
            ]),
        )
            .prop_map(|(containers, init, ephemeral, extras, pod_security)| {
                let mut spec = Map::new();
                for (key, list) in [
                    ("containers", containers),
                    ("initContainers", init),
                    ("ephemeralContainers", ephemeral),
                ] {
                    if let Some(list) = list {
                        spec.insert(key.into(), list);
                    }
                }
                if extras[0] {
                    spec.insert("securityContext".into(), pod_security);
                }
                if extras[1] {
                    spec.insert(
                        "imagePullSecrets".into(),
                        json!([{"name": "private-registry"}]),
                    );
                }
                if extras[2] {
                    spec.insert("workloadClass".into(), json!("batch"));
                }
                dedupe_names(&mut spec);
                spec
            });
        (
            metadata(pool),
            prop_oneof![1 => Just(None), 12 => spec.prop_map(Some)],
            any::<bool>(),
        )
            .prop_map(|(metadata, spec, extra)| {
                let mut pod = Map::new();
                if extra {
                    pod.insert("apiVersion".into(), json!("v1"));
                    pod.insert("kind".into(), json!("Pod"));
                    pod.insert("status".into(), json!({}));
                    pod.insert("futureTopLevel".into(), json!([1, "two"]));
                }
                if let Some(m) = metadata {
                    pod.insert("metadata".into(), m);
                }
                if let Some(s) = spec {
                    pod.insert("spec".into(), Value::Object(s));
                }
                Value::Object(pod)
            })
    })
}

fn dedupe_names(spec: &mut Map<String, Value>) {
    let mut seen = HashSet::new();
    for key in ["containers", "initContainers", "ephemeralContainers"] {
        if let Some(Value::Array(list)) = spec.get_mut(key) {
            list.retain(|c| match c.get("name").and_then(Value::as_str) {
                Some(n) => seen.insert(n.to_string()),
                None => true,
            });
        }
    }
}

fn settings(mode: Option<Mode>) -> impl Strategy<Value = Value> {
    let mode = match mode {
        Some(m) => Just(m).boxed(),
        None => select(vec![Mode::InitContainer, Mode::NativeSidecar, Mode::Auto]).boxed(),
    };
    (
        mode,
        prop::option::of(select(vec![
            "modelcar-prefetch",
            "pull-model",
            "modelcar",
            "istio-proxy",
            "modelcar-prefetch-1",
        ])),
        prop::option::of(select(vec![
            json!(["modelcar", "modelcar-*"]),
            json!(["modelcar"]),
            json!(["server", "modelcar-*"]),
            json!([]),
        ])),
        prop::option::of(Just(json!({"exec": {"command": ["true"]}}))),
        prop::option::of(Just(json!(["/bin/true"]))),
        prop::option::of(select(vec![
            json!({"runAsUser": 1010}),
            json!({"runAsNonRoot": true, "allowPrivilegeEscalation": false}),
            json!({"runAsNonRoot": false}),
        ])),
    )
        .prop_map(|(mode, name, patterns, probe, command, security_context)| {
            let mut s = json!({"mode": mode.to_string()});
            if let Some(n) = name {
                s["initContainerName"] = json!(n);
            }
            if let Some(p) = patterns {
                s["modelcarContainerNames"] = p;
            }
            if let Some(p) = probe {
                s["startupProbe"] = p;
            }
            if let Some(c) = command {
                s["command"] = c;
            }
            if let Some(sc) = security_context {
                s["securityContext"] = sc;
            }
            s
        })
}

#[derive(Debug, Clone, Copy)]
enum Nodes {
    New,
    Old,
    Empty,
    Error,
}

impl Nodes {
    fn cluster(self) -> FakeCluster {
        match self {
            Nodes::New => FakeCluster::nodes(&["v1.30.1+k3s1", "v1.29.3"]),
            Nodes::Old => FakeCluster::nodes(&["v1.31.0-eks-a737599", "v1.28.15-gke.1020000"]),
            Nodes::Empty => FakeCluster::nodes(&[]),
            Nodes::Error => FakeCluster(Err("forbidden".into())),
        }
    }
}

fn nodes() -> impl Strategy<Value = Nodes> {
    select(vec![Nodes::New, Nodes::Old, Nodes::Empty, Nodes::Error])
}

const KEYS: &[&str] = &[
    "request",
    "settings",
    "kind",
    "operation",
    "object",
    "metadata",
    "annotations",
    "spec",
    "containers",
    "initContainers",
    "ephemeralContainers",
    "name",
    "image",
    KSERVE,
    "mode",
    "command",
    "args",
    "resources",
    "requests",
    "limits",
    "cpu",
    "securityContext",
    "startupProbe",
    "initContainerName",
    "modelcarContainerNames",
    "storageUriAnnotations",
];

const STRINGS: &[&str] = &[
    "Pod",
    "CREATE",
    "modelcar",
    "modelcar-1",
    "modelcar-prefetch",
    "oci://m:1",
    "oci+modelcar://r:5000/m@sha256:00",
    "m:1",
    "",
    "nativeSidecar",
    "auto",
    "10m",
    "-1",
    "1e308",
    "ln -s /proc/$$$$/root/models /mnt/models",
    "-c",
];

/// Arbitrary JSON, with keys and strings biased towards what the policy reads.
fn json_value() -> impl Strategy<Value = Value> {
    let string = prop_oneof![
        3 => select(STRINGS).prop_map(String::from),
        1 => ".{0,12}",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        string.prop_map(Value::String),
    ];
    let key = prop_oneof![3 => select(KEYS).prop_map(String::from), 1 => "[a-zA-Z]{0,6}"];
    leaf.prop_recursive(5, 96, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key.clone(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

/// A realistic pod with one of its parts replaced by arbitrary JSON.
fn damaged_pod() -> impl Strategy<Value = Value> {
    const PARTS: &[&str] = &[
        "/metadata",
        "/metadata/annotations",
        "/metadata/annotations/internal.serving.kserve.io~1storage-initializer-sourceuri",
        "/spec",
        "/spec/containers",
        "/spec/containers/0",
        "/spec/containers/0/name",
        "/spec/containers/0/image",
        "/spec/containers/0/args",
        "/spec/containers/0/securityContext",
        "/spec/containers/0/resources",
        "/spec/containers/1/imagePullPolicy",
        "/spec/initContainers",
        "/spec/initContainers/0",
        "/spec/initContainers/0/image",
        "/spec/ephemeralContainers",
        "/spec/securityContext",
    ];
    (pod(), select(PARTS), json_value()).prop_map(|(mut pod, part, value)| {
        if let Some(slot) = pod.pointer_mut(part) {
            *slot = value;
        }
        pod
    })
}

// ------------------------------------------------------------------- oracle

fn request(object: &Value) -> Value {
    json!({
        "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
        "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "resource": {"group": "", "version": "v1", "resource": "pods"},
        "namespace": "models",
        "operation": "CREATE",
        "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller"},
        "object": object,
        "oldObject": null,
        "dryRun": false
    })
}

fn evaluate_pod(pod: &Value, settings: &Value) -> Outcome {
    let payload = json!({"request": request(pod), "settings": settings});
    evaluate(&serde_json::to_vec(&payload).unwrap())
}

fn list(pod: &Value, key: &str) -> Vec<Value> {
    pod.get("spec")
        .and_then(|s| s.get(key))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

fn without(value: &Value, keys: &[&str]) -> Value {
    let mut v = value.clone();
    if let Some(o) = v.as_object_mut() {
        for k in keys {
            o.remove(*k);
        }
    }
    v
}

/// Model images the pod asks for: its modelcars' and its storage URIs'.
fn model_images(settings: &Settings, pod: &Value) -> Vec<String> {
    let mut out: Vec<String> = list(pod, "containers")
        .iter()
        .filter(|c| {
            c.get("name")
                .and_then(Value::as_str)
                .is_some_and(|n| names::matches_any(&settings.modelcar_container_names, n))
        })
        .filter_map(|c| c.get("image").and_then(Value::as_str).map(String::from))
        .collect();
    for key in &settings.storage_uri_annotations {
        let uri = pod
            .pointer("/metadata/annotations")
            .and_then(|a| a.get(key))
            .and_then(Value::as_str);
        out.extend(uri.and_then(image::from_storage_uri).map(String::from));
    }
    out
}

fn init_images(pod: &Value) -> HashSet<String> {
    list(pod, "initContainers")
        .iter()
        .filter_map(|c| c.get("image").and_then(Value::as_str).map(String::from))
        .collect()
}

/// Whether the generator made a pod the policy must understand: a spec
/// object, a string image on every modelcar, lists where lists belong.
fn well_formed(settings: &Settings, pod: &Value) -> bool {
    let spec_ok = match pod.get("spec") {
        Some(Value::Object(_)) => true,
        None | Some(Value::Null) => model_images(settings, pod).is_empty(),
        _ => false,
    };
    let modelcars_ok = list(pod, "containers").iter().all(|c| {
        let modelcar = c
            .get("name")
            .and_then(Value::as_str)
            .is_some_and(|n| names::matches_any(&settings.modelcar_container_names, n));
        !modelcar
            || c.get("image")
                .and_then(Value::as_str)
                .is_some_and(|i| !i.is_empty())
    });
    spec_ok && modelcars_ok
}

/// Model images the policy must not pre-pull because the init container could
/// keep a startable pod in `Init` (README "Pods that must run as non-root"),
/// worked out here from the pod and the settings alone: the container must
/// run as non-root (its own securityContext, else the pod's), no user is known
/// for it (the setting, the visible modelcar, the pod), and the modelcar the
/// image came from, when the policy sees it, would start where it would not.
fn unstartable_images(settings: &Settings, pod: &Value) -> HashSet<String> {
    let set = |sc: Option<&Value>, key: &str| -> Option<Value> {
        sc.and_then(|sc| sc.get(key))
            .filter(|v| !v.is_null())
            .cloned()
    };
    let pod_sc = pod.pointer("/spec/securityContext");
    let pod_non_root = set(pod_sc, "runAsNonRoot") == Some(json!(true));
    let pod_user = set(pod_sc, "runAsUser").is_some();
    let refused = |sc: Option<&Value>, user_elsewhere: bool| {
        let non_root = set(sc, "runAsNonRoot").map_or(pod_non_root, |v| v == json!(true));
        non_root && !(set(sc, "runAsUser").is_some() || user_elsewhere || pod_user)
    };
    let setting: Option<Value> = settings
        .security_context
        .as_ref()
        .map(|sc| serde_json::from_str(sc.text()).unwrap());
    let containers = list(pod, "containers");
    model_images(settings, pod)
        .into_iter()
        .filter(|image| {
            let modelcar = containers.iter().find(|c| {
                c.get("name")
                    .and_then(Value::as_str)
                    .is_some_and(|n| names::matches_any(&settings.modelcar_container_names, n))
                    && c.get("image").and_then(Value::as_str) == Some(image)
            });
            match modelcar {
                None => refused(setting.as_ref(), false),
                Some(m) => {
                    let m_sc = m.get("securityContext").filter(|sc| sc.is_object());
                    let m_refused = refused(m_sc, false);
                    let ours_refused = match &setting {
                        Some(s) => refused(Some(s), set(m_sc, "runAsUser").is_some()),
                        None => m_refused,
                    };
                    ours_refused && !m_refused
                }
            }
        })
        .collect()
}

/// Whether a warning says that `image` was left alone for want of a user.
fn warned_unstartable(warnings: &[String], image: &str) -> bool {
    let said = format!("image {image} is not pre-pulled: the pod requires runAsNonRoot");
    warnings.iter().any(|w| w.starts_with(&said))
}

fn all_names(pod: &Value) -> Vec<String> {
    ["containers", "initContainers", "ephemeralContainers"]
        .iter()
        .flat_map(|k| list(pod, k))
        .filter_map(|c| c.get("name").and_then(Value::as_str).map(String::from))
        .collect()
}

fn assert_unique_names(pod: &Value) -> Result<(), TestCaseError> {
    let names = all_names(pod);
    let unique: HashSet<&String> = names.iter().collect();
    prop_assert_eq!(
        unique.len(),
        names.len(),
        "container names repeat: {:?}",
        names
    );
    Ok(())
}

/// `output` is `input` plus init containers appended at the end and, when
/// `moves` allows it, modelcars moved from `spec.containers` to those;
/// modelcars that stay may start first with a hook that waits for their
/// link, and KServe's `modelcar-init` may get its modelcar's user.
fn assert_only_appended(
    settings: &Settings,
    input: &Value,
    output: &Value,
    moves: bool,
) -> Result<(), TestCaseError> {
    let unstartable = unstartable_images(settings, input);
    let (Some(in_spec), Some(out_spec)) = (input.get("spec"), output.get("spec")) else {
        return Err(TestCaseError::fail("a mutated pod must have had a spec"));
    };
    let lists = ["containers", "initContainers"];
    prop_assert_eq!(without(in_spec, &lists), without(out_spec, &lists));

    // spec.containers: modelcars with a wait hook first, then the input less
    // the moved and the hooked modelcars, order kept.
    let (in_containers, out_containers) = (list(input, "containers"), list(output, "containers"));
    let hooked: Vec<&Value> = out_containers
        .iter()
        .take_while(|c| {
            let name = c.get("name");
            in_containers
                .iter()
                .any(|i| i.get("name") == name && i.pointer("/lifecycle/postStart").is_none())
                && c.pointer("/lifecycle/postStart").is_some()
        })
        .collect();
    prop_assert!(
        settings.start_modelcar_first || hooked.is_empty(),
        "modelcars started first with startModelcarFirst off"
    );
    for c in &hooked {
        let name = c.get("name").and_then(Value::as_str).unwrap_or_default();
        prop_assert!(
            names::matches_any(&settings.modelcar_container_names, name),
            "started {} first, which is not a modelcar",
            name
        );
        let original = in_containers
            .iter()
            .find(|i| i.get("name") == c.get("name"))
            .unwrap();
        prop_assert_eq!(
            without(c, &["lifecycle"]),
            without(original, &["lifecycle"])
        );
        let mut lifecycle = c["lifecycle"].clone();
        let hook = lifecycle
            .as_object_mut()
            .and_then(|l| l.remove("postStart"));
        let text = original.to_string();
        let link = crate::json_text::Fields::parse(&text).and_then(|f| model_link::link(&f));
        let expected = link.map(|l| serde_json::from_str(&model_link::wait_hook(&l)).unwrap());
        prop_assert_eq!(hook, expected, "hook of {}", name);
        let original_lifecycle = original.get("lifecycle").cloned().unwrap_or(json!({}));
        prop_assert_eq!(lifecycle, original_lifecycle);
    }
    let rest = &out_containers[hooked.len()..];
    let mut removed = Vec::new();
    let mut kept = rest.iter().peekable();
    for c in &in_containers {
        if hooked.iter().any(|h| h.get("name") == c.get("name")) {
            continue;
        }
        if kept.peek() == Some(&c) {
            kept.next();
        } else {
            removed.push(c.clone());
        }
    }
    prop_assert!(
        kept.next().is_none(),
        "spec.containers gained or reordered entries"
    );
    if removed.is_empty() && hooked.is_empty() {
        prop_assert_eq!(in_spec.get("containers"), out_spec.get("containers"));
    }
    prop_assert!(
        moves || removed.is_empty(),
        "moved {:?} without moves",
        removed
    );
    prop_assert!(
        !out_containers.is_empty() || in_containers.is_empty(),
        "every container moved out of spec.containers"
    );
    for c in &removed {
        let name = c.get("name").and_then(Value::as_str).unwrap_or_default();
        prop_assert!(
            names::matches_any(&settings.modelcar_container_names, name),
            "moved a container that is not a modelcar: {}",
            name
        );
    }

    // Nothing outside the two container lists changes, but for kubectl's
    // default container, kept on the one that was first.
    let was_first = in_containers
        .iter()
        .find(|c| !removed.contains(c))
        .and_then(|c| c.get("name"));
    let mut metadata = output.get("metadata").cloned();
    let in_annotations = input.pointer("/metadata/annotations");
    let key = start_order::DEFAULT_CONTAINER_ANNOTATION;
    let had_default = in_annotations.and_then(|a| a.get(key)).is_some();
    let added = metadata
        .as_mut()
        .and_then(|m| m.get_mut("annotations"))
        .and_then(Value::as_object_mut)
        .filter(|_| !had_default)
        .and_then(|a| a.remove(key));
    if let Some(added) = &added {
        prop_assert!(!hooked.is_empty(), "default container set without a move");
        prop_assert_eq!(Some(added), was_first);
        // The map the annotation was added to, or made for it.
        let m = metadata.as_mut().and_then(Value::as_object_mut).unwrap();
        let emptied = m["annotations"].as_object().is_some_and(|a| a.is_empty());
        if emptied && !in_annotations.is_some_and(Value::is_object) {
            match in_annotations {
                None => m.remove("annotations"),
                Some(v) => m.insert("annotations".into(), v.clone()),
            };
        }
    } else if !hooked.is_empty() {
        let first = out_containers.first().and_then(|c| c.get("name"));
        prop_assert!(
            had_default || first == was_first,
            "kubectl's default container changed"
        );
    }
    prop_assert_eq!(input.get("metadata").cloned(), metadata);
    prop_assert_eq!(
        without(input, &["spec", "metadata"]),
        without(output, &["spec", "metadata"])
    );

    // spec.initContainers: the input's, then the added ones; KServe's
    // modelcar-init may gain its modelcar's user.
    let (in_init, out_init) = (
        list(input, "initContainers"),
        list(output, "initContainers"),
    );
    prop_assert!(out_init.len() >= in_init.len());
    for (before, after) in in_init.iter().zip(&out_init) {
        if before == after {
            continue;
        }
        let user = after.pointer("/securityContext/runAsUser");
        let modelcar_user = in_containers
            .iter()
            .filter(|m| m.get("image") == before.get("image"))
            .find_map(|m| m.pointer("/securityContext/runAsUser"));
        prop_assert!(
            user.is_some() && user == modelcar_user,
            "{} changed",
            before
        );
        prop_assert_eq!(
            input.pointer("/spec/securityContext/runAsNonRoot"),
            Some(&json!(true))
        );
        let mut restored = after.clone();
        let sc = restored["securityContext"].as_object_mut().unwrap();
        sc.remove("runAsUser");
        if before.get("securityContext").is_none() && sc.is_empty() {
            restored.as_object_mut().unwrap().remove("securityContext");
        }
        prop_assert_eq!(&restored, before);
    }
    let appended = &out_init[in_init.len()..];
    let (sidecars, prefetch): (Vec<&Value>, Vec<&Value>) = appended
        .iter()
        .partition(|c| c.get("restartPolicy").is_some());

    // Moved modelcars: unchanged but for restartPolicy and a startup probe.
    prop_assert_eq!(sidecars.len(), removed.len());
    for (sidecar, original) in sidecars.iter().zip(&removed) {
        let fields = ["restartPolicy", "startupProbe"];
        prop_assert_eq!(without(sidecar, &fields), without(original, &fields));
        prop_assert_eq!(&sidecar["restartPolicy"], &json!("Always"));
        let probe = sidecar.get("startupProbe");
        match (&settings.startup_probe, original.get("startupProbe")) {
            (Some(setting), _) => {
                let setting: Value = serde_json::from_str(setting.text()).unwrap();
                prop_assert_eq!(probe, Some(&setting))
            }
            (None, Some(own)) => prop_assert_eq!(probe, Some(own)),
            (None, None) => {
                let text = original.to_string();
                let derivable = crate::json_text::Fields::parse(&text)
                    .and_then(|f| model_link::link_path(&f))
                    .is_some();
                prop_assert_eq!(probe.is_some(), derivable, "startup probe on {}", sidecar);
            }
        }
    }

    // Added pre-pull containers: one per model image no init container had.
    let wanted = model_images(settings, input);
    let pulled = init_images(input);
    let mut added_images = HashSet::new();
    for c in &prefetch {
        let image = c["image"].as_str().unwrap_or_default().to_string();
        prop_assert!(
            wanted.contains(&image),
            "pre-pulls {} that the pod does not ask for",
            image
        );
        prop_assert!(!pulled.contains(&image), "pre-pulls {} twice", image);
        prop_assert!(
            !unstartable.contains(&image),
            "pre-pulls {} with an init container that could keep the pod in Init",
            image
        );
        // Never stricter than the pod or the modelcar it stands for.
        let non_root = c.pointer("/securityContext/runAsNonRoot") == Some(&json!(true));
        if non_root && settings.security_context.is_none() {
            let pod_requires =
                input.pointer("/spec/securityContext/runAsNonRoot") == Some(&json!(true));
            let modelcar_requires = list(input, "containers").iter().any(|m| {
                m.get("image") == c.get("image")
                    && m.pointer("/securityContext/runAsNonRoot") == Some(&json!(true))
            });
            prop_assert!(
                pod_requires || modelcar_requires,
                "{} requires runAsNonRoot where neither the pod nor its modelcar does",
                c
            );
        }
        prop_assert!(added_images.insert(image.clone()), "adds {} twice", image);
        prop_assert_eq!(&c["command"], &json!(settings.command));
        prop_assert_eq!(
            &c["terminationMessagePolicy"],
            &json!("FallbackToLogsOnError")
        );
        for absent in ["volumeMounts", "env", "ports", "args", "restartPolicy"] {
            prop_assert!(c.get(absent).is_none(), "{} on {}", absent, c);
        }
        prop_assert!(c["name"].is_string());
    }

    assert_unique_names(output)?;
    // Nothing is left to pull, but what must not be.
    let now_pulled = init_images(output);
    for image in &wanted {
        prop_assert!(
            now_pulled.contains(image) || unstartable.contains(image),
            "{} is not pulled by an init container",
            image
        );
    }
    Ok(())
}

/// The whole contract for one pod and one settings document, via `evaluate`
/// (where `auto` finds no cluster and falls back to init containers).
/// `realistic`: the pod came from `pod()`, so `well_formed` tells whether it
/// may be refused as unreadable.
fn check_evaluate(pod: &Value, settings_doc: &Value, realistic: bool) -> Result<(), TestCaseError> {
    let settings = Settings::from_value(settings_doc);
    let valid = settings.problems().is_empty();
    let well_formed = realistic && well_formed(&settings, pod);
    let outcome = evaluate_pod(pod, settings_doc);
    let unreadable = outcome
        .warnings
        .iter()
        .any(|w| w.ends_with("the object was admitted unchanged"));
    prop_assert!(
        !(unreadable && valid && well_formed),
        "a well-formed pod was unreadable: {:?}",
        outcome.warnings
    );
    match outcome.pod {
        None => {
            prop_assert!(outcome.changes.is_empty(), "{:?}", outcome);
            if valid && well_formed && settings.mode == Mode::InitContainer {
                let pulled = init_images(pod);
                let unstartable = unstartable_images(&settings, pod);
                for image in model_images(&settings, pod) {
                    let left = unstartable.contains(&image)
                        && warned_unstartable(&outcome.warnings, &image);
                    prop_assert!(
                        pulled.contains(&image) || left,
                        "accepted without pulling {}",
                        image
                    );
                }
            }
        }
        Some(object) => {
            let object: serde_json::Value = serde_json::from_str(&object).unwrap();
            prop_assert!(valid, "mutated with invalid settings");
            prop_assert!(!outcome.changes.is_empty());
            prop_assert!(!unreadable, "{:?}", outcome.warnings);
            let moves = settings.mode == Mode::NativeSidecar;
            assert_only_appended(&settings, pod, &object, moves)?;
            for image in unstartable_images(&settings, pod) {
                if !init_images(&object).contains(&image) {
                    prop_assert!(
                        warned_unstartable(&outcome.warnings, &image),
                        "no warning for {}",
                        image
                    );
                }
            }
            prop_assert_eq!(evaluate_pod(&object, settings_doc).pod, None);
        }
    }
    Ok(())
}

// --------------------------------------------------------------- properties

proptest! {
    #![proptest_config(config())]

    #[test]
    fn realistic_pods_are_left_alone_or_only_gain_init_containers(
        pod in pod(),
        settings in settings(None),
    ) {
        check_evaluate(&pod, &settings, true)?;
    }

    #[test]
    fn every_mode_and_cluster_keeps_the_contract(
        pod in pod(),
        settings_doc in settings(None),
        nodes in nodes(),
    ) {
        let settings = Settings::from_value(&settings_doc);
        prop_assume!(settings.problems().is_empty());
        let cluster = nodes.cluster();
        let moves = match settings.mode {
            Mode::InitContainer => false,
            Mode::NativeSidecar => true,
            Mode::Auto => matches!(nodes, Nodes::New),
        };
        match desired(&settings, pod.clone(), &cluster) {
            Got::Unchanged => {}
            Got::Warned(w) => {
                let unreadable = w.iter().any(|w| w.ends_with("the object was admitted unchanged"));
                prop_assert!(!unreadable || !well_formed(&settings, &pod), "well-formed pod unreadable: {:?}", w);
            }
            Got::Mutated { pod: out, .. } => {
                assert_only_appended(&settings, &pod, &out, moves)?;
                prop_assert!(matches!(desired(&settings, out, &cluster), Got::Unchanged | Got::Warned(_)));
            }
        }
    }

    #[test]
    fn other_kinds_and_operations_are_accepted_unchanged(
        pod in pod(),
        settings in settings(None),
        kind in select(vec!["Pod", "Deployment", "pod", ""]),
        operation in select(vec!["CREATE", "UPDATE", "DELETE", "CONNECT", "create"]),
    ) {
        prop_assume!(kind != "Pod" || operation != "CREATE");
        let mut request = request(&pod);
        request["kind"]["kind"] = json!(kind);
        request["operation"] = json!(operation);
        let payload = json!({"request": request, "settings": settings});
        prop_assert_eq!(evaluate(&serde_json::to_vec(&payload).unwrap()), Outcome::default());
    }

    #[test]
    fn the_text_search_passes_over_only_pods_that_need_nothing(
        pod in prop_oneof![pod(), damaged_pod()],
        settings in settings(None),
    ) {
        let settings = Settings::from_value(&settings);
        let text = pod.to_string();
        if !model_images::may_need_prefetch(&settings, &text)
            && let Ok(view) = PodView::from_json(&text)
        {
            for moves in [false, true] {
                prop_assert_eq!(model_images::plan(&settings, &view, moves), Ok(model_images::Plan::default()));
            }
        }
    }

    #[test]
    fn damaged_pods_never_break_the_contract(pod in damaged_pod(), settings in settings(None)) {
        check_evaluate(&pod, &settings, false)?;
    }

    #[test]
    fn arbitrary_objects_never_break_the_contract(object in json_value(), settings in settings(None)) {
        if let Some(out) = evaluate_pod(&object, &settings).pod {
            let out: serde_json::Value = serde_json::from_str(&out).unwrap();
            prop_assert!(object.is_object());
            let settings = Settings::from_value(&settings);
            assert_only_appended(&settings, &object, &out, settings.mode == Mode::NativeSidecar)?;
        }
    }

    #[test]
    fn arbitrary_payloads_mutate_only_pod_creations(payload in json_value()) {
        let is_pod_create = payload.pointer("/request/kind/kind") == Some(&json!("Pod"))
            && payload.pointer("/request/operation") == Some(&json!("CREATE"));
        let bytes = serde_json::to_vec(&payload).unwrap();
        if evaluate(&bytes).pod.is_some() {
            prop_assert!(is_pod_create);
        }
        prop_assert!(crate::validate(&bytes).is_ok());
    }

    #[test]
    fn arbitrary_bytes_are_admitted(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        prop_assert!(evaluate(&bytes).pod.is_none());
        prop_assert!(crate::validate(&bytes).is_ok());
    }

    #[test]
    fn validate_always_answers_accepted(pod in damaged_pod(), settings in json_value()) {
        let payload = json!({"request": request(&pod), "settings": settings});
        let response = crate::validate(&serde_json::to_vec(&payload).unwrap());
        prop_assert!(response.is_ok(), "{:?}", response);
        let response: Value = serde_json::from_slice(&response.unwrap()).unwrap();
        prop_assert_eq!(&response["accepted"], &json!(true));
    }
}

// ----------------------------------------------------------------- settings

const SETTING_NAMES: &[&str] = &[
    "mode",
    "modelcarContainerNames",
    "storageUriAnnotations",
    "initContainerName",
    "command",
    "resources",
    "securityContext",
    "startupProbe",
    "nativeSidecarMinKubeletVersion",
];

fn names_a_field(problem: &str) -> bool {
    problem.starts_with("settings") || SETTING_NAMES.iter().any(|n| problem.starts_with(n))
}

/// A settings document: known keys with arbitrary values, sometimes more.
fn settings_document() -> impl Strategy<Value = Value> {
    let value = prop_oneof![
        json_value(),
        prop::collection::vec(
            prop_oneof![select(STRINGS).prop_map(String::from), ".{0,10}"],
            0..4
        )
        .prop_map(|v| json!(v)),
        (
            select(vec!["requests", "limits", "claims"]),
            select(vec!["cpu", "memory"]),
            json_value()
        )
            .prop_map(|(k, r, q)| json!({k: {r: q}})),
    ];
    let key = prop_oneof![
        4 => select(SETTING_NAMES).prop_map(String::from),
        1 => "[a-zA-Z]{1,8}",
    ];
    prop_oneof![
        4 => prop::collection::vec((key, value), 0..4)
            .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        1 => json_value(),
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn settings_problems_never_panic_and_name_a_field(doc in settings_document()) {
        for problem in Settings::from_value(&doc).problems() {
            prop_assert!(names_a_field(&problem), "{:?} names no setting", problem);
        }
    }

    #[test]
    fn validate_settings_answers_every_json_document(doc in settings_document()) {
        let raw = kubewarden_policy_sdk::validate_settings::<Settings>(&serde_json::to_vec(&doc).unwrap());
        prop_assert!(raw.is_ok(), "{:?}", raw.err());
        let response: Value = serde_json::from_slice(&raw.unwrap()).unwrap();
        match response["valid"].as_bool() {
            Some(true) => prop_assert!(Settings::from_value(&doc).problems().is_empty()),
            Some(false) => {
                let message = response["message"].as_str().unwrap_or_default();
                prop_assert!(names_a_field(message), "{:?} names no setting", message);
            }
            None => prop_assert!(false, "no verdict: {}", response),
        }
    }

    #[test]
    fn validate_settings_never_panics_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..128)) {
        let _ = kubewarden_policy_sdk::validate_settings::<Settings>(&bytes);
    }
}

// -------------------------------------------------------------- regressions

/// Found by `arbitrary_objects_never_break_the_contract` when the mutation
/// re-serialized the pod: `-1.830693223359938e+169` came back one ulp off and
/// the host's diff turned it into a `replace`. The pod's text is now written
/// back as sent (`pod_text`); this keeps it so.
#[test]
fn floats_in_the_pod_come_back_bit_for_bit() {
    let pod = json!({
        "metadata": {"annotations": {KSERVE: "oci://m:1"}, "x-future": [-1.830693223359938e+169, 0.1, 1e-300]},
        "spec": {"containers": [{"name": "server", "image": "s", "x-weight": 2.2250738585072014e-308}]}
    });
    let Some(object) = evaluate_pod(&pod, &json!({})).pod else {
        panic!("expected a mutation")
    };
    let object: serde_json::Value = serde_json::from_str(&object).unwrap();
    assert_eq!(object["metadata"], pod["metadata"]);
    assert_eq!(object["spec"]["containers"], pod["spec"]["containers"]);
}

/// Found by the fuzz target (fuzz/README.md): a key `"es%\uddAAersion"` deep in a
/// volume went through every parse, since serde_json skips what the policy does not
/// read without pairing surrogates; the mutated pod then carried it to the host, which
/// could not decode the response and would have rejected the pod. The policy now admits
/// such a pod unchanged, with a warning.
#[test]
fn an_unpaired_surrogate_escape_leaves_the_pod_unchanged() {
    let pod = json!({
        "metadata": {"annotations": {KSERVE: "oci://m:1"}},
        "spec": {
            "containers": [{"name": "server", "image": "s"}],
            "volumes": [{"name": "podinfo", "downwardAPI": {"items": [{"fieldRef": {"LONE": "v1"}}]}}]
        }
    });
    let payload = json!({"request": request(&pod), "settings": {}})
        .to_string()
        .replace("LONE", r"es%\uddAAersion");
    let outcome = evaluate(payload.as_bytes());
    assert_eq!(outcome.pod, None);
    assert!(
        outcome.warnings[0].contains("unpaired UTF-16 surrogate"),
        "{outcome:?}"
    );
    let response = crate::validate(payload.as_bytes()).unwrap();
    let response: serde_json::Value = serde_json::from_slice(&response).unwrap();
    assert_eq!(response["accepted"], json!(true));
    assert!(response["mutated_object"].is_null(), "{response}");

    let paired = payload.replace(r"es%\uddAAersion", r"\ud83d\ude00");
    assert!(evaluate(paired.as_bytes()).pod.is_some());
}
