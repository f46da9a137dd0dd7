//! The securityContext of an added init container.
//!
//! Rule: it never holds more privilege than the modelcar it stands for, and it
//! never makes Pod Security Admission `restricted` reject a pod that would be
//! admitted without it. No mutating webhook revisits a container we add, so
//! it must be compliant as written.

use crate::json_text::{self, Fields};
use crate::view::{PodView, SecurityView};

/// What the pod says about security, as far as an added container cares.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PodSecurity {
    /// `spec.securityContext.seccompProfile` is set.
    pub pod_seccomp_profile: bool,
    /// `spec.securityContext.runAsNonRoot` is `true`.
    pub pod_run_as_non_root: bool,
    /// Every existing container and init container sets `runAsNonRoot: true`
    /// itself (how a `restricted` pod without the pod-level field passes).
    pub every_container_run_as_non_root: bool,
}

impl PodSecurity {
    pub fn of(pod: &PodView) -> PodSecurity {
        let pod_sc = pod.spec.as_ref().and_then(|s| s.security_context.as_ref());
        let non_root =
            |sc: Option<&SecurityView>| sc.and_then(|sc| sc.run_as_non_root) == Some(true);
        let mut containers = pod
            .containers()
            .iter()
            .chain(pod.init_containers())
            .peekable();
        let any = containers.peek().is_some();
        PodSecurity {
            pod_seccomp_profile: pod_sc.is_some_and(|sc| sc.seccomp_profile.is_some()),
            pod_run_as_non_root: non_root(pod_sc),
            every_container_run_as_non_root: any
                && containers.all(|c| non_root(c.security_context.as_ref())),
        }
    }
}

/// The modelcar's securityContext (JSON text, when the image came from one),
/// with every privilege a no-op init container cannot need taken away; as
/// JSON text, the modelcar's own fields written back as they were.
pub fn hardened(modelcar: Option<&str>, pod: &PodSecurity) -> String {
    let own = modelcar
        .and_then(Fields::parse)
        .unwrap_or_default()
        .without("privileged");
    let mut set = vec![
        ("allowPrivilegeEscalation", "false".to_string()),
        ("capabilities", r#"{"drop":["ALL"]}"#.to_string()),
    ];
    let has_seccomp = own
        .raw("seccompProfile")
        .is_some_and(|p| !json_text::is_null(p));
    if !has_seccomp && !pod.pod_seccomp_profile {
        set.push(("seccompProfile", r#"{"type":"RuntimeDefault"}"#.to_string()));
    }
    if own.raw("runAsNonRoot").is_none()
        && !pod.pod_run_as_non_root
        && pod.every_container_run_as_non_root
    {
        set.push(("runAsNonRoot", "true".to_string()));
    }
    own.with(&set)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;
    use serde_json::{Value, json};

    /// `hardened` over values.
    fn harden(modelcar: Option<Value>, pod: &PodSecurity) -> Value {
        let text = modelcar.map(|m| m.to_string());
        serde_json::from_str(&hardened(text.as_deref(), pod)).unwrap()
    }

    fn security(spec: Value) -> PodSecurity {
        let pod = json!({"spec": spec});
        PodSecurity::of(&PodView::from_value(&pod).unwrap())
    }

    #[rstest]
    #[case::no_modelcar_context(
        None,
        PodSecurity::default(),
        json!({"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}})
    )]
    #[case::keeps_kserve_uid(
        Some(json!({"runAsUser": 1010})),
        PodSecurity::default(),
        json!({"runAsUser": 1010, "allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}})
    )]
    #[case::drops_privilege(
        Some(json!({"privileged": true, "allowPrivilegeEscalation": true, "capabilities": {"add": ["SYS_ADMIN"], "drop": ["NET_RAW"]}})),
        PodSecurity::default(),
        json!({"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}})
    )]
    #[case::keeps_container_seccomp(
        Some(json!({"seccompProfile": {"type": "Localhost", "localhostProfile": "p.json"}})),
        PodSecurity::default(),
        json!({"seccompProfile": {"type": "Localhost", "localhostProfile": "p.json"}, "allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}})
    )]
    #[case::pod_seccomp_applies(
        None,
        PodSecurity { pod_seccomp_profile: true, ..Default::default() },
        json!({"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}})
    )]
    #[case::keeps_other_fields(
        Some(json!({"readOnlyRootFilesystem": true, "runAsGroup": 3, "runAsNonRoot": true, "seLinuxOptions": {"level": "s0:c1"}})),
        PodSecurity { pod_seccomp_profile: true, ..Default::default() },
        json!({"readOnlyRootFilesystem": true, "runAsGroup": 3, "runAsNonRoot": true, "seLinuxOptions": {"level": "s0:c1"}, "allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}})
    )]
    #[case::non_root_when_every_container_says_so(
        None,
        PodSecurity { pod_seccomp_profile: true, every_container_run_as_non_root: true, ..Default::default() },
        json!({"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}, "runAsNonRoot": true})
    )]
    #[case::null_seccomp_is_replaced(
        Some(json!({"seccompProfile": null, "runAsNonRoot": null})),
        PodSecurity { every_container_run_as_non_root: true, ..Default::default() },
        json!({"runAsNonRoot": null, "allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}})
    )]
    #[case::no_non_root_when_pod_says_so(
        None,
        PodSecurity { pod_seccomp_profile: true, pod_run_as_non_root: true, every_container_run_as_non_root: true },
        json!({"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}})
    )]
    fn hardening(
        #[case] modelcar: Option<Value>,
        #[case] pod: PodSecurity,
        #[case] expected: Value,
    ) {
        assert_eq!(harden(modelcar, &pod), expected);
    }

    #[test]
    fn never_invents_a_user() {
        let sc = harden(
            None,
            &PodSecurity {
                every_container_run_as_non_root: true,
                ..Default::default()
            },
        );
        assert!(sc.get("runAsUser").is_none() && sc.get("runAsGroup").is_none());
    }

    #[rstest]
    #[case::empty(json!({}), PodSecurity::default())]
    #[case::restricted_pod(
        json!({"securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}}, "containers": [{"name": "a"}]}),
        PodSecurity { pod_seccomp_profile: true, pod_run_as_non_root: true, every_container_run_as_non_root: false }
    )]
    #[case::per_container_non_root(
        json!({"containers": [{"securityContext": {"runAsNonRoot": true}}], "initContainers": [{"securityContext": {"runAsNonRoot": true}}]}),
        PodSecurity { every_container_run_as_non_root: true, ..Default::default() }
    )]
    #[case::one_container_without(
        json!({"containers": [{"securityContext": {"runAsNonRoot": true}}, {"name": "b"}]}),
        PodSecurity::default()
    )]
    fn reads_pod_security(#[case] spec: Value, #[case] expected: PodSecurity) {
        assert_eq!(security(spec), expected);
    }

    /// The modelcar's own fields keep their text and order; the hardening fields follow.
    #[test]
    fn writes_the_modelcar_fields_back_verbatim() {
        let own = r#"{"runAsUser":1010,"privileged":false,"seLinuxOptions":{"level" : "s0:c1"}}"#;
        assert_eq!(
            hardened(Some(own), &PodSecurity::default()),
            r#"{"runAsUser":1010,"seLinuxOptions":{"level" : "s0:c1"},"allowPrivilegeEscalation":false,"capabilities":{"drop":["ALL"]},"seccompProfile":{"type":"RuntimeDefault"}}"#
        );
    }
}
