//! The init container that makes the kubelet pull a model image.

use crate::image;
use crate::json_text::{self, Fields};

use crate::settings::Settings;

/// KServe's own modelcar requests and limits: tiny, and present, so that a
/// ResourceQuota that demands requests and limits admits the pod.
const KSERVE_MODELCAR_RESOURCES: &str =
    r#"{"requests":{"cpu":"10m","memory":"15Mi"},"limits":{"cpu":"10m","memory":"15Mi"}}"#;

/// The container as JSON text. `modelcar` is the container the image came
/// from, if it came from one; its resources are copied as written.
/// `security_context` is decided by `security::for_prefetch`.
pub fn build(
    settings: &Settings,
    name: &str,
    image: &str,
    modelcar: Option<&Fields>,
    security_context: &str,
) -> String {
    let pull_policy = modelcar
        .and_then(|m| m.read::<String>("imagePullPolicy"))
        .unwrap_or_else(|| image::default_pull_policy(image).to_string());
    let resources = match &settings.resources {
        Some(r) => r.text().to_string(),
        None => modelcar
            .and_then(|m| m.raw("resources"))
            .filter(|r| Fields::parse(r).is_some_and(|f| !f.is_empty()))
            .unwrap_or(KSERVE_MODELCAR_RESOURCES)
            .to_string(),
    };
    let command: Vec<String> = settings
        .command
        .iter()
        .map(|c| json_text::quoted(c))
        .collect();
    Fields::default().with(&[
        ("name", json_text::quoted(name)),
        ("image", json_text::quoted(image)),
        ("command", format!("[{}]", command.join(","))),
        ("imagePullPolicy", json_text::quoted(&pull_policy)),
        ("resources", resources),
        ("securityContext", security_context.to_string()),
        (
            "terminationMessagePolicy",
            r#""FallbackToLogsOnError""#.into(),
        ),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::security::{self, PodSecurity};
    use rstest::rstest;
    use serde_json::{Value, json};

    /// The container for a pod without a securityContext of its own.
    fn container(settings: Value, image: &str, modelcar: Option<Value>) -> Value {
        let settings = Settings::from_value(&settings);
        let modelcar_text = modelcar.map(|m| m.to_string());
        let modelcar = modelcar_text.as_deref().and_then(Fields::parse);
        let security_context = security::for_prefetch(
            settings.security_context.as_ref().map(|sc| sc.text()),
            modelcar.as_ref(),
            &PodSecurity::default(),
        )
        .unwrap();
        let text = build(
            &settings,
            "modelcar-prefetch",
            image,
            modelcar.as_ref(),
            &security_context,
        );
        serde_json::from_str(&text).unwrap()
    }

    #[test]
    fn from_an_annotation_with_defaults() {
        assert_eq!(
            container(json!({}), "quay.io/m:v1", None),
            json!({
                "name": "modelcar-prefetch",
                "image": "quay.io/m:v1",
                "command": ["sh", "-c", "true"],
                "imagePullPolicy": "IfNotPresent",
                "resources": {"requests": {"cpu": "10m", "memory": "15Mi"}, "limits": {"cpu": "10m", "memory": "15Mi"}},
                "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}},
                "terminationMessagePolicy": "FallbackToLogsOnError"
            })
        );
    }

    #[test]
    fn is_a_valid_kubernetes_container() {
        let c = container(
            json!({}),
            "quay.io/m:v1",
            Some(json!({"securityContext": {"runAsUser": 1000}})),
        );
        let typed: k8s_openapi::api::core::v1::Container =
            serde_json::from_value(c.clone()).unwrap();
        assert_eq!(
            serde_json::to_value(&typed).unwrap(),
            c,
            "a field name is misspelt"
        );
        assert!(
            typed.args.is_none()
                && typed.volume_mounts.is_none()
                && typed.env.is_none()
                && typed.ports.is_none()
        );
    }

    #[rstest]
    #[case::annotation_latest("quay.io/m:latest", None, "Always")]
    #[case::annotation_untagged("registry:5000/m", None, "Always")]
    #[case::annotation_digest("quay.io/m@sha256:00", None, "IfNotPresent")]
    #[case::annotation_latest_digest("quay.io/m:latest@sha256:00", None, "Always")]
    #[case::copied_from_modelcar("quay.io/m:latest", Some(json!({"imagePullPolicy": "IfNotPresent"})), "IfNotPresent")]
    #[case::copied_never("quay.io/m:v1", Some(json!({"imagePullPolicy": "Never"})), "Never")]
    #[case::modelcar_without_policy("quay.io/m", Some(json!({})), "Always")]
    fn pull_policy(#[case] image: &str, #[case] modelcar: Option<Value>, #[case] expected: &str) {
        assert_eq!(
            container(json!({}), image, modelcar)["imagePullPolicy"],
            expected
        );
    }

    #[rstest]
    #[case::kserve_defaults(json!({}), None, json!({"requests": {"cpu": "10m", "memory": "15Mi"}, "limits": {"cpu": "10m", "memory": "15Mi"}}))]
    #[case::from_modelcar(json!({}), Some(json!({"resources": {"limits": {"memory": "1Gi"}}})), json!({"limits": {"memory": "1Gi"}}))]
    #[case::empty_modelcar_resources(json!({}), Some(json!({"resources": {}})), json!({"requests": {"cpu": "10m", "memory": "15Mi"}, "limits": {"cpu": "10m", "memory": "15Mi"}}))]
    #[case::setting_wins(
        json!({"resources": {"requests": {"cpu": "1m"}}}),
        Some(json!({"resources": {"limits": {"memory": "1Gi"}}})),
        json!({"requests": {"cpu": "1m"}})
    )]
    fn resources(
        #[case] settings: Value,
        #[case] modelcar: Option<Value>,
        #[case] expected: Value,
    ) {
        assert_eq!(container(settings, "m:1", modelcar)["resources"], expected);
    }

    #[rstest]
    #[case::hardened_modelcar(
        json!({}),
        Some(json!({"securityContext": {"runAsUser": 1010, "privileged": true}})),
        json!({"runAsUser": 1010, "allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}})
    )]
    #[case::setting_hardened(
        json!({"securityContext": {"runAsUser": 65532}}),
        Some(json!({"securityContext": {"runAsUser": 1010}})),
        json!({"runAsUser": 65532, "allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}})
    )]
    fn security_context(
        #[case] settings: Value,
        #[case] modelcar: Option<Value>,
        #[case] expected: Value,
    ) {
        assert_eq!(
            container(settings, "m:1", modelcar)["securityContext"],
            expected
        );
    }

    #[test]
    fn command_from_settings_not_args() {
        let c = container(
            json!({"command": ["/bin/true"]}),
            "m:1",
            Some(json!({"args": ["sh", "-c", "sleep infinity"]})),
        );
        assert_eq!(c["command"], json!(["/bin/true"]));
        assert!(c.get("args").is_none());
    }
}
