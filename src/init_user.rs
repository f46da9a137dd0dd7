//! An init container that pulls a modelcar's image and would never start.
//!
//! KServe v0.14+ adds `modelcar-init` with the modelcar's image and no
//! securityContext; its `uidModelcar` goes to the modelcar only. In a pod
//! that must run as non-root, the kubelet refuses to start `modelcar-init`
//! when the image runs as root (`CreateContainerConfigError`), and the pod
//! stays in `Init` for good. The modelcar's own user runs that image: the
//! init container gets it, and nothing else of it changes.

use crate::json_text::{self, Fields};
use crate::pod_text::PodText;
use crate::security::PodSecurity;

/// `spec.initContainers[init]` given the `runAsUser` of `spec.containers[modelcar]`,
/// as JSON text, with the change it makes; `None` when it can start as it is
/// or the modelcar has no user to give.
pub fn with_modelcar_user(
    text: &PodText,
    pod: &PodSecurity,
    init: usize,
    modelcar: usize,
) -> Option<(String, String)> {
    let container = text.init_container(init)?;
    let sc = container.raw("securityContext").and_then(Fields::parse);
    let field = |key| {
        sc.as_ref()
            .and_then(|sc| sc.raw(key))
            .filter(|v| !json_text::is_null(v))
    };
    let non_root = field("runAsNonRoot").map_or(pod.run_as_non_root, |v| v == "true");
    if !non_root || field("runAsUser").is_some() || pod.run_as_user {
        return None;
    }
    let source = text.container(modelcar)?;
    let user = source
        .raw("securityContext")
        .and_then(Fields::parse)?
        .raw("runAsUser")
        .filter(|v| json_text::is_number(v))?;
    let sc = sc
        .unwrap_or_default()
        .with(&[("runAsUser", user.to_string())]);
    let name = container.read::<String>("name").unwrap_or_default();
    let from = source.read::<String>("name").unwrap_or_default();
    let change = format!(
        "gave init container {name} the user {user} of modelcar {from}: the pod requires \
         runAsNonRoot, and without a user it could not start"
    );
    Some((container.with(&[("securityContext", sc)]), change))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::view::PodView;
    use rstest::rstest;
    use serde_json::{Value, json};

    /// The init container as `with_modelcar_user` leaves it, or `None`.
    fn fixed(pod_sc: Value, init: Value, modelcar_sc: Value) -> Option<Value> {
        let pod = json!({"spec": {
            "securityContext": pod_sc,
            "initContainers": [init],
            "containers": [{"name": "s"}, {"name": "modelcar", "image": "m", "securityContext": modelcar_sc}]
        }});
        let text = pod.to_string();
        let view = PodView::from_json(&text).unwrap();
        let pod_text = PodText::new(&text, &view.spans).unwrap();
        with_modelcar_user(&pod_text, &view.security, 0, 1)
            .map(|(c, _)| serde_json::from_str(&c).unwrap())
    }

    fn kserve_init() -> Value {
        json!({"name": "modelcar-init", "image": "m", "args": ["sh", "-c", "[ -d /models ]"]})
    }

    fn with_sc(sc: Value) -> Value {
        let mut c = kserve_init();
        c["securityContext"] = sc;
        c
    }

    #[rstest]
    #[case::kserve_v0_14(json!({"runAsNonRoot": true}), kserve_init(), json!({"runAsUser": 1010}), Some(with_sc(json!({"runAsUser": 1010}))))]
    #[case::own_fields_kept(json!({"runAsNonRoot": true}), with_sc(json!({"readOnlyRootFilesystem": true})), json!({"runAsUser": 1010}), Some(with_sc(json!({"readOnlyRootFilesystem": true, "runAsUser": 1010}))))]
    #[case::null_user_replaced(json!({"runAsNonRoot": true}), with_sc(json!({"runAsUser": null})), json!({"runAsUser": 7}), Some(with_sc(json!({"runAsUser": 7}))))]
    #[case::own_non_root(json!({}), with_sc(json!({"runAsNonRoot": true})), json!({"runAsUser": 1010}), Some(with_sc(json!({"runAsNonRoot": true, "runAsUser": 1010}))))]
    #[case::pod_allows_root(json!({}), kserve_init(), json!({"runAsUser": 1010}), None)]
    #[case::pod_user_inherited(json!({"runAsNonRoot": true, "runAsUser": 1000}), kserve_init(), json!({"runAsUser": 1010}), None)]
    #[case::own_user(json!({"runAsNonRoot": true}), with_sc(json!({"runAsUser": 5})), json!({"runAsUser": 1010}), None)]
    #[case::own_root_allowed(json!({"runAsNonRoot": true}), with_sc(json!({"runAsNonRoot": false})), json!({"runAsUser": 1010}), None)]
    #[case::modelcar_without_user(json!({"runAsNonRoot": true}), kserve_init(), json!({}), None)]
    #[case::modelcar_user_not_a_number(json!({"runAsNonRoot": true}), kserve_init(), json!({"runAsUser": "1010"}), None)]
    fn kserve_init_gets_the_modelcar_user_only_where_it_could_not_start(
        #[case] pod_sc: Value,
        #[case] init: Value,
        #[case] modelcar_sc: Value,
        #[case] expected: Option<Value>,
    ) {
        assert_eq!(fixed(pod_sc, init, modelcar_sc), expected);
    }
}
