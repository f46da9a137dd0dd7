//! The securityContext of an added init container.
//!
//! Rules: it never holds more privilege than the modelcar it stands for; it
//! never makes Pod Security Admission `restricted` reject a pod that would be
//! admitted without it (no mutating webhook revisits a container we add); and
//! it never makes a pod that would start unstartable. The last one decides
//! whether the container is added at all: the kubelet refuses to start a
//! container that must run as non-root without a known user when its image
//! would run as root, and an init container refused so holds the pod in
//! `Init` forever. Model images are usually built `FROM busybox` (root).

use crate::json_text::{self, Fields};

/// What the pod says about security, as far as an added container cares.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PodSecurity {
    /// `spec.securityContext.seccompProfile` is set.
    pub seccomp_profile: bool,
    /// `spec.securityContext.runAsNonRoot` is `true`.
    pub run_as_non_root: bool,
    /// `spec.securityContext.runAsUser` is set: containers inherit it.
    pub run_as_user: bool,
}

/// Why an added container could hold the pod in `Init` where the pod would
/// start without it.
#[derive(Debug, PartialEq, Eq)]
pub struct UnknownUser;

/// The securityContext (JSON text) of the init container that pre-pulls an
/// image: the `setting`'s fields when given, else the `modelcar`'s own, with
/// the hardening of `harden`. `modelcar` is the container the image came
/// from, when the policy sees it.
///
/// Its user comes from the setting, else from the modelcar, else from the
/// pod (inherited, nothing written). `Err` when the container would have to
/// run as non-root with no user known and the modelcar would not: a
/// root-default image would then block a pod that starts without the policy.
pub fn for_prefetch(
    setting: Option<&str>,
    modelcar: Option<&Fields>,
    pod: &PodSecurity,
) -> Result<String, UnknownUser> {
    let modelcar_sc = modelcar
        .and_then(|m| m.raw("securityContext"))
        .and_then(Fields::parse);
    let modelcar_may_be_refused =
        modelcar.is_some() && RunAs::of(modelcar_sc.as_ref(), pod).may_be_refused();
    let text = match setting.and_then(Fields::parse) {
        Some(setting) => {
            let user = modelcar_sc.as_ref().and_then(|sc| set(sc, "runAsUser"));
            let user = user.filter(|_| setting.raw("runAsUser").is_none());
            harden(setting, user, Keep::Written, pod)
        }
        None => harden(modelcar_sc.unwrap_or_default(), None, Keep::Safe, pod),
    };
    let ours = RunAs::of(Fields::parse(&text).as_ref(), pod);
    if ours.may_be_refused() && !modelcar_may_be_refused {
        return Err(UnknownUser);
    }
    Ok(text)
}

/// A field that is there and not `null`.
fn set<'a>(sc: &Fields<'a>, key: &str) -> Option<&'a str> {
    sc.raw(key).filter(|v| !json_text::is_null(v))
}

/// How a container runs, with what it inherits from the pod.
struct RunAs {
    non_root: bool,
    user_known: bool,
}

impl RunAs {
    fn of(sc: Option<&Fields>, pod: &PodSecurity) -> RunAs {
        let field = |key| sc.and_then(|sc| set(sc, key));
        RunAs {
            non_root: field("runAsNonRoot").map_or(pod.run_as_non_root, |v| v == "true"),
            user_known: field("runAsUser").is_some() || pod.run_as_user,
        }
    }

    /// The kubelet refuses it when its image runs as root.
    fn may_be_refused(&self) -> bool {
        self.non_root && !self.user_known
    }
}

/// Which of its own fields a securityContext keeps when it is hardened.
#[derive(Clone, Copy, PartialEq)]
enum Keep {
    /// Every field the user wrote in the setting: the user decides.
    Written,
    /// The modelcar's fields that grant no privilege a no-op container could need.
    Safe,
}

/// `own` with no privilege escalation, every capability dropped and, unless
/// the container or the pod sets one, the runtime's default seccomp profile:
/// what Pod Security Admission `restricted` asks of every container. Adds
/// `user` as `runAsUser`, and never a `runAsNonRoot`: whether the container
/// must run as non-root stays what the setting, the modelcar or the pod says.
fn harden(own: Fields, user: Option<&str>, keep: Keep, pod: &PodSecurity) -> String {
    let own = match keep {
        Keep::Written => own,
        Keep::Safe => own
            .without("privileged")
            .without("allowPrivilegeEscalation")
            .without("capabilities"),
    };
    let mut add = Vec::with_capacity(4);
    if let Some(user) = user {
        add.push(("runAsUser", user.to_string()));
    }
    if own.raw("allowPrivilegeEscalation").is_none() {
        add.push(("allowPrivilegeEscalation", "false".to_string()));
    }
    if own.raw("capabilities").is_none() {
        add.push(("capabilities", r#"{"drop":["ALL"]}"#.to_string()));
    }
    if set(&own, "seccompProfile").is_none() && !pod.seccomp_profile {
        add.push(("seccompProfile", r#"{"type":"RuntimeDefault"}"#.to_string()));
    }
    own.with(&add)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::view::PodView;
    use rstest::rstest;
    use serde_json::{Value, json};

    const HARDENING: &str = r#""allowPrivilegeEscalation":false,"capabilities":{"drop":["ALL"]}"#;

    /// `for_prefetch` over values; `modelcar` is the whole container, when visible.
    fn prefetch_sc(
        setting: Option<Value>,
        modelcar: Option<Value>,
        pod: &PodSecurity,
    ) -> Result<Value, UnknownUser> {
        let setting = setting.map(|s| s.to_string());
        let modelcar = modelcar.map(|m| m.to_string());
        let modelcar = modelcar.as_deref().and_then(Fields::parse);
        for_prefetch(setting.as_deref(), modelcar.as_ref(), pod)
            .map(|text| serde_json::from_str(&text).unwrap())
    }

    fn hardening(extra: Value) -> Value {
        let mut sc = json!({"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}});
        sc.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        sc
    }

    fn pod(spec_sc: Value) -> PodSecurity {
        let pod = json!({"spec": {"securityContext": spec_sc}});
        PodView::from_value(&pod).unwrap().security
    }

    fn runtime_default() -> Value {
        json!({"seccompProfile": {"type": "RuntimeDefault"}})
    }

    #[rstest]
    #[case::annotation_only(None, json!({}), hardening(runtime_default()))]
    #[case::keeps_kserve_uid(
        Some(json!({"runAsUser": 1010})),
        json!({}),
        hardening(json!({"runAsUser": 1010, "seccompProfile": {"type": "RuntimeDefault"}}))
    )]
    #[case::drops_privilege(
        Some(json!({"privileged": true, "allowPrivilegeEscalation": true, "capabilities": {"add": ["SYS_ADMIN"], "drop": ["NET_RAW"]}})),
        json!({}),
        hardening(runtime_default())
    )]
    #[case::keeps_container_seccomp(
        Some(json!({"seccompProfile": {"type": "Localhost", "localhostProfile": "p.json"}})),
        json!({}),
        hardening(json!({"seccompProfile": {"type": "Localhost", "localhostProfile": "p.json"}}))
    )]
    #[case::pod_seccomp_applies(None, json!({"seccompProfile": {"type": "RuntimeDefault"}}), hardening(json!({})))]
    #[case::keeps_other_fields(
        Some(json!({"readOnlyRootFilesystem": true, "runAsGroup": 3, "runAsNonRoot": true, "runAsUser": 7, "seLinuxOptions": {"level": "s0:c1"}})),
        json!({"seccompProfile": {"type": "RuntimeDefault"}}),
        hardening(json!({"readOnlyRootFilesystem": true, "runAsGroup": 3, "runAsNonRoot": true, "runAsUser": 7, "seLinuxOptions": {"level": "s0:c1"}}))
    )]
    #[case::null_seccomp_is_replaced(
        Some(json!({"seccompProfile": null, "runAsNonRoot": null})),
        json!({}),
        hardening(json!({"runAsNonRoot": null, "seccompProfile": {"type": "RuntimeDefault"}}))
    )]
    fn hardened_from_the_modelcar(
        #[case] modelcar_sc: Option<Value>,
        #[case] pod_sc: Value,
        #[case] expected: Value,
    ) {
        let modelcar = modelcar_sc.map(|sc| json!({"name": "modelcar", "securityContext": sc}));
        let visible = prefetch_sc(None, modelcar, &pod(pod_sc.clone())).unwrap();
        assert_eq!(visible, expected);
    }

    /// Scenario 1 of README "Pods that must run as non-root": only the
    /// annotation is visible and every container sets runAsNonRoot itself.
    /// KServe's modelcar, appended later, has runAsUser and no runAsNonRoot:
    /// the added container must not require more than that.
    #[test]
    fn annotation_only_never_adds_run_as_non_root() {
        let sc = prefetch_sc(None, None, &PodSecurity::default()).unwrap();
        assert_eq!(sc, hardening(runtime_default()));
        assert!(sc.get("runAsNonRoot").is_none() && sc.get("runAsUser").is_none());
    }

    #[rstest]
    // Scenario 2: the pod requires non-root and no user is known anywhere.
    #[case::pod_non_root_annotation_only(None, None, json!({"runAsNonRoot": true}), false)]
    #[case::pod_non_root_and_user(None, None, json!({"runAsNonRoot": true, "runAsUser": 1000}), true)]
    #[case::user_from_setting(Some(json!({"runAsUser": 1010})), None, json!({"runAsNonRoot": true}), true)]
    #[case::setting_without_user(Some(json!({"runAsNonRoot": true})), None, json!({}), false)]
    #[case::setting_allows_root(Some(json!({"runAsNonRoot": false})), None, json!({"runAsNonRoot": true}), true)]
    // A visible modelcar decides: the added container starts whenever it does.
    #[case::modelcar_user(None, Some(json!({"runAsUser": 1010})), json!({"runAsNonRoot": true}), true)]
    #[case::modelcar_without_user(None, Some(json!({})), json!({"runAsNonRoot": true}), true)]
    #[case::modelcar_without_context(None, Some(Value::Null), json!({"runAsNonRoot": true}), true)]
    #[case::setting_gets_modelcar_user(Some(json!({"runAsNonRoot": true})), Some(json!({"runAsUser": 1010})), json!({}), true)]
    #[case::setting_stricter_than_modelcar(Some(json!({"runAsNonRoot": true})), Some(json!({})), json!({}), false)]
    fn added_only_where_it_can_start(
        #[case] setting: Option<Value>,
        #[case] modelcar_sc: Option<Value>,
        #[case] pod_sc: Value,
        #[case] added: bool,
    ) {
        let modelcar = modelcar_sc.map(|sc| match sc {
            Value::Null => json!({"name": "modelcar"}),
            sc => json!({"name": "modelcar", "securityContext": sc}),
        });
        let got = prefetch_sc(setting, modelcar, &pod(pod_sc));
        assert_eq!(got.is_ok(), added, "{got:?}");
    }

    #[rstest]
    #[case::setting_user_wins(
        json!({"runAsUser": 65532}),
        Some(json!({"runAsUser": 1010})),
        hardening(json!({"runAsUser": 65532, "seccompProfile": {"type": "RuntimeDefault"}}))
    )]
    #[case::modelcar_user_added(
        json!({"runAsNonRoot": true}),
        Some(json!({"runAsUser": 1010})),
        hardening(json!({"runAsNonRoot": true, "runAsUser": 1010, "seccompProfile": {"type": "RuntimeDefault"}}))
    )]
    #[case::no_modelcar(
        json!({"runAsGroup": 5}),
        None,
        hardening(json!({"runAsGroup": 5, "seccompProfile": {"type": "RuntimeDefault"}}))
    )]
    #[case::written_fields_decide(
        json!({"allowPrivilegeEscalation": true, "capabilities": {"add": ["NET_ADMIN"]}, "seccompProfile": {"type": "Unconfined"}}),
        None,
        json!({"allowPrivilegeEscalation": true, "capabilities": {"add": ["NET_ADMIN"]}, "seccompProfile": {"type": "Unconfined"}})
    )]
    fn setting_fields_then_the_modelcar_user_then_hardening(
        #[case] setting: Value,
        #[case] modelcar_sc: Option<Value>,
        #[case] expected: Value,
    ) {
        let modelcar = modelcar_sc.map(|sc| json!({"name": "modelcar", "securityContext": sc}));
        let got = prefetch_sc(Some(setting), modelcar, &PodSecurity::default()).unwrap();
        assert_eq!(got, expected);
    }

    #[rstest]
    #[case::empty(json!({}), PodSecurity::default())]
    #[case::restricted_pod(
        json!({"securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}}}),
        PodSecurity { seccomp_profile: true, run_as_non_root: true, run_as_user: false }
    )]
    #[case::pod_user(
        json!({"securityContext": {"runAsUser": 1000, "runAsNonRoot": false}}),
        PodSecurity { run_as_user: true, ..Default::default() }
    )]
    #[case::nulls(
        json!({"securityContext": {"runAsUser": null, "runAsNonRoot": null, "seccompProfile": null}}),
        PodSecurity::default()
    )]
    fn reads_pod_security(#[case] spec: Value, #[case] expected: PodSecurity) {
        let pod = json!({"spec": spec});
        assert_eq!(PodView::from_value(&pod).unwrap().security, expected);
    }

    /// The modelcar's own fields keep their text and order; the hardening fields follow.
    #[test]
    fn writes_the_modelcar_fields_back_verbatim() {
        let modelcar = r#"{"securityContext":{"runAsUser":1010,"privileged":false,"seLinuxOptions":{"level" : "s0:c1"}}}"#;
        let modelcar = Fields::parse(modelcar).unwrap();
        assert_eq!(
            for_prefetch(None, Some(&modelcar), &PodSecurity::default()).unwrap(),
            format!(
                r#"{{"runAsUser":1010,"seLinuxOptions":{{"level" : "s0:c1"}},{HARDENING},"seccompProfile":{{"type":"RuntimeDefault"}}}}"#
            )
        );
    }
}
