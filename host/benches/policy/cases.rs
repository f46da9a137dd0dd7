//! What is measured: real requests from the fixtures, size limits, and `auto` mode against
//! Node lists the size of real clusters.

use std::sync::Arc;

use modelcar_prefetch_host::fixture;
use serde_json::{Value, json};

use crate::nodes;

#[derive(Clone, Copy, PartialEq)]
pub enum Kind {
    /// Accepted unchanged: compared with the parse floor.
    NoOp,
    /// Mutated: compared with the mutation floor.
    Mutating,
}

/// What counts as fast enough.
pub enum Target {
    /// At most this multiple of the case's floor.
    Ratio(f64),
    /// At most this long, whatever the floor.
    Within(std::time::Duration),
}

/// Issue targets, against floors built for speed: a no-op must cost well under a parse,
/// a mutation no more than the cheapest mutation.
const NO_OP_TARGET: f64 = 0.7;
const MUTATION_TARGET: f64 = 1.0;

pub struct Case {
    pub name: String,
    pub kind: Kind,
    /// A robustness limit: also reported against policy-server's evaluation budget.
    pub limit: bool,
    pub request: Value,
    pub settings: Value,
    /// What `kubernetes/list_resources_all` answers for Nodes (`auto` mode).
    pub nodes: Option<Arc<Vec<u8>>>,
    /// Set for cases whose cost is the host's answer, not the pod: the floors never read it.
    pub within: Option<std::time::Duration>,
}

impl Case {
    fn new(name: &str, kind: Kind, request: Value) -> Case {
        Case {
            name: name.to_owned(),
            kind,
            limit: false,
            request,
            settings: json!({}),
            nodes: None,
            within: None,
        }
    }

    pub fn target(&self) -> Target {
        match (self.within, self.kind) {
            (Some(max), _) => Target::Within(max),
            (None, Kind::NoOp) => Target::Ratio(NO_OP_TARGET),
            (None, Kind::Mutating) => Target::Ratio(MUTATION_TARGET),
        }
    }

    /// The request's bytes plus, in `auto` mode, the Node list the host answers with.
    pub fn payload_len(&self) -> usize {
        self.request_len() + self.nodes.as_ref().map_or(0, |n| n.len())
    }

    pub fn request_len(&self) -> usize {
        self.payload(false).len()
    }

    fn limit(self) -> Case {
        Case {
            limit: true,
            ..self
        }
    }

    /// The case's settings for the policy; none for a floor, which reads no settings.
    pub fn settings(&self, baseline: bool) -> Value {
        if baseline {
            json!({})
        } else {
            self.settings.clone()
        }
    }

    /// The validate payload policy-server sends: compact JSON.
    pub fn payload(&self, baseline: bool) -> Vec<u8> {
        serde_json::to_vec(&json!({"request": self.request, "settings": self.settings(baseline)}))
            .expect("a payload serializes")
    }

    pub fn slug(&self) -> String {
        let mut slug: String = self
            .name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '-'
                }
            })
            .collect();
        while slug.contains("--") {
            slug = slug.replace("--", "-");
        }
        slug.trim_matches('-').to_owned()
    }
}

pub fn all() -> Vec<Case> {
    vec![
        Case::new(
            "kserve v0.13 modelcar (mutated)",
            Kind::Mutating,
            fixture("kserve-predictor-v0.13-modelcar"),
        ),
        Case::new(
            "kserve v0.14 modelcar-init (mutated)",
            Kind::Mutating,
            fixture("kserve-predictor-v0.14-modelcar-init"),
        ),
        Case {
            settings: json!({"startModelcarFirst": false}),
            ..Case::new(
                "kserve v0.14, modelcar first off (no-op)",
                Kind::NoOp,
                fixture("kserve-predictor-v0.14-modelcar-init"),
            )
        },
        Case::new(
            "pod without modelcar (no-op)",
            Kind::NoOp,
            fixture("pod-without-modelcar"),
        ),
        Case::new(
            "deployment CREATE (no-op)",
            Kind::NoOp,
            fixture("deployment-create"),
        ),
        Case::new(
            "pod UPDATE (no-op)",
            Kind::NoOp,
            fixture("kserve-predictor-update"),
        ),
        Case::new(
            "50 containers, ~100 KB (no-op)",
            Kind::NoOp,
            large_pod(50, 40, false),
        ),
        Case::new(
            "1,000 containers (no-op)",
            Kind::NoOp,
            large_pod(1000, 2, false),
        )
        .limit(),
        Case::new(
            "1,000 containers (mutated)",
            Kind::Mutating,
            large_pod(1000, 2, true),
        )
        .limit(),
        Case::new(
            "1 MB of annotations (no-op)",
            Kind::NoOp,
            annotated_pod(1 << 20, false),
        )
        .limit(),
        Case::new(
            "1 MB of annotations (mutated)",
            Kind::Mutating,
            annotated_pod(1 << 20, true),
        )
        .limit(),
        auto(10),
        auto(1_000),
        auto(5_000),
    ]
}

/// Mode `auto` on a pod that carries its own modelcar (LLMInferenceService): the policy
/// lists the Nodes, finds every kubelet new enough and makes the modelcar a native sidecar.
fn auto(count: usize) -> Case {
    let label = match count {
        1_000 => "1,000".to_owned(),
        5_000 => "5,000".to_owned(),
        n => n.to_string(),
    };
    Case {
        settings: json!({"mode": "auto"}),
        nodes: Some(Arc::new(nodes::node_list(count))),
        // The bound for 5,000 full Nodes, kept for every size.
        within: Some(std::time::Duration::from_millis(100)),
        ..Case::new(
            &format!("auto, {label} full Nodes (mutated)"),
            Kind::Mutating,
            fixture("llm-inference-service-modelcar"),
        )
        .limit()
    }
}

/// The plain pod fixture with `containers` application containers of `env` variables
/// each; with `modelcar`, KServe's modelcar container comes last.
fn large_pod(containers: usize, env: usize, modelcar: bool) -> Value {
    let mut request = fixture("pod-without-modelcar");
    let template = request["object"]["spec"]["containers"][0].clone();
    let list: Vec<Value> = (0..containers)
        .map(|i| {
            let mut c = template.clone();
            c["name"] = json!(format!("app-{i}"));
            c["image"] = json!(format!("registry.example.com/team/app-{i}:1.{i}.0"));
            c["env"] = json!(
                (0..env)
                    .map(|j| json!({"name": format!("SETTING_{j}"), "value": format!("value-{i}-{j}-abcdefghij")}))
                    .collect::<Vec<_>>()
            );
            c
        })
        .chain(modelcar.then(|| {
            json!({"name": "modelcar", "image": "quay.io/example/models-iris:v1",
                   "args": ["sh", "-c", "ln -s /proc/$$$$/root/models /mnt/ && sleep infinity"]})
        }))
        .collect();
    request["object"]["spec"]["containers"] = Value::Array(list);
    request
}

/// The plain pod fixture with `bytes` of annotations (1 KB values); with `modelcar`, it
/// also carries KServe's modelcar container.
fn annotated_pod(bytes: usize, modelcar: bool) -> Value {
    let mut request = large_pod(1, 2, modelcar);
    let mut annotations = request["object"]["metadata"]["annotations"]
        .as_object_mut()
        .map(std::mem::take)
        .unwrap_or_default();
    let value = "x".repeat(1000);
    for i in 0..bytes / 1024 {
        annotations.insert(
            format!("bench.example.com/annotation-{i}"),
            json!(value.clone()),
        );
    }
    request["object"]["metadata"]["annotations"] = Value::Object(annotations);
    request
}
