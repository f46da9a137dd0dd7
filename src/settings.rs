//! Policy settings: what users write in the policy's `spec.settings`.
//!
//! Deserializing never fails: a malformed document is kept as an error that
//! `validate` reports. That way the SDK's `validate_settings` answers
//! "invalid, because ..." with our message instead of a serde dump of the
//! whole payload, and a `validate` call can never be refused over settings.

use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

use crate::json_text::{self, Fields};
use crate::label_selector;
use crate::names;
use crate::quantity;

/// How the model image is made available before the model server starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Mode {
    /// A no-op init container that uses the model image (any Kubernetes).
    #[default]
    InitContainer,
    /// Move the modelcar into the init containers as a native sidecar (Kubernetes >= 1.29).
    NativeSidecar,
    /// `nativeSidecar` when every node's kubelet supports it, else `initContainer`.
    Auto,
}

pub const DEFAULT_INIT_CONTAINER_NAME: &str = "modelcar-prefetch";
pub const KSERVE_STORAGE_URI_ANNOTATION: &str =
    "internal.serving.kserve.io/storage-initializer-sourceuri";
/// Room kept for the `-N` suffixes of further init containers.
pub const MAX_INIT_CONTAINER_NAME_LEN: usize = names::MAX_NAME_LEN - 6;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
struct Document {
    mode: Mode,
    modelcar_container_names: Vec<String>,
    storage_uri_annotations: Vec<String>,
    init_container_name: String,
    command: Vec<String>,
    resources: Option<Json>,
    security_context: Option<Json>,
    startup_probe: Option<Json>,
    native_sidecar_min_kubelet_version: String,
    node_label_selector: String,
    start_modelcar_first: bool,
}

/// A setting that is a Kubernetes object (resources, securityContext, a
/// probe), kept as the JSON text the user wrote: the policy checks its fields
/// and copies it into containers, it never needs it as a tree.
#[derive(Debug, Clone, Deserialize)]
#[serde(transparent)]
pub struct Json(Box<RawValue>);

impl Json {
    pub fn text(&self) -> &str {
        self.0.get()
    }
}

impl PartialEq for Json {
    fn eq(&self, other: &Json) -> bool {
        self.text() == other.text()
    }
}

impl Default for Document {
    fn default() -> Self {
        Document {
            mode: Mode::default(),
            modelcar_container_names: vec!["modelcar".into(), "modelcar-*".into()],
            storage_uri_annotations: vec![KSERVE_STORAGE_URI_ANNOTATION.into()],
            init_container_name: DEFAULT_INIT_CONTAINER_NAME.into(),
            command: vec!["sh".into(), "-c".into(), "true".into()],
            resources: None,
            security_context: None,
            startup_probe: None,
            native_sidecar_min_kubelet_version: "1.29".into(),
            node_label_selector: String::new(),
            start_modelcar_first: true,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub mode: Mode,
    pub modelcar_container_names: Vec<String>,
    pub storage_uri_annotations: Vec<String>,
    pub init_container_name: String,
    pub command: Vec<String>,
    pub resources: Option<Json>,
    pub security_context: Option<Json>,
    pub startup_probe: Option<Json>,
    pub native_sidecar_min_kubelet_version: String,
    /// `auto`: the nodes whose kubelets decide, as a label selector; empty: every node.
    pub node_label_selector: String,
    /// Modelcars that stay regular containers start first and hold the others (`start_order`).
    pub start_modelcar_first: bool,
    /// Why the settings document could not be read, if it could not.
    unreadable: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings::from(Document::default())
    }
}

impl From<Document> for Settings {
    fn from(d: Document) -> Self {
        Settings {
            mode: d.mode,
            modelcar_container_names: d.modelcar_container_names,
            storage_uri_annotations: d.storage_uri_annotations,
            init_container_name: d.init_container_name,
            command: d.command,
            resources: d.resources,
            security_context: d.security_context,
            startup_probe: d.startup_probe,
            native_sidecar_min_kubelet_version: d.native_sidecar_min_kubelet_version,
            node_label_selector: d.node_label_selector,
            start_modelcar_first: d.start_modelcar_first,
            unreadable: None,
        }
    }
}

impl Settings {
    /// Reads a settings document (JSON text); `null` means "all defaults".
    pub fn from_json(text: &str) -> Settings {
        if json_text::is_null(text) {
            return Settings::default();
        }
        // Checked first: serde would also read a struct from a list of its fields.
        let unreadable = if !text.starts_with('{') {
            format!("settings must be a map of setting names to values, not {text}")
        } else {
            match json_text::parse::<Document>(text) {
                Ok(doc) => return Settings::from(doc),
                Err(e) => name_the_setting(text, e),
            }
        };
        Settings {
            unreadable: Some(unreadable),
            ..Settings::default()
        }
    }

    #[cfg(test)]
    pub fn from_value(value: &serde_json::Value) -> Settings {
        Settings::from_json(&value.to_string())
    }

    /// Every problem in the settings, as one line per problem.
    pub fn problems(&self) -> Vec<String> {
        if let Some(e) = &self.unreadable {
            return vec![e.clone()];
        }
        let mut out = Vec::new();
        self.check_sources(&mut out);
        self.check_init_container_name(&mut out);
        self.check_command(&mut out);
        if let Some(r) = &self.resources {
            check_resources(r, &mut out);
        }
        if let Some(sc) = &self.security_context {
            check_object_keys("securityContext", sc, SECURITY_CONTEXT_FIELDS, &mut out);
        }
        if let Some(p) = &self.startup_probe {
            check_object_keys("startupProbe", p, PROBE_FIELDS, &mut out);
        }
        if !label_selector::is_label_selector(&self.node_label_selector) {
            out.push(format!(
                "nodeLabelSelector: {:?} is not a label selector; write it as `kubectl get nodes -l` \
                 takes it, for example \"nvidia.com/gpu.present=true\", or leave it empty for every node",
                self.node_label_selector
            ));
        }
        if crate::kubelet::MinorVersion::parse(&self.native_sidecar_min_kubelet_version).is_none() {
            out.push(format!(
                "nativeSidecarMinKubeletVersion: {:?} is not a Kubernetes version; write it as \"1.29\"",
                self.native_sidecar_min_kubelet_version
            ));
        }
        out
    }

    fn check_sources(&self, out: &mut Vec<String>) {
        if self.modelcar_container_names.is_empty() && self.storage_uri_annotations.is_empty() {
            out.push(
                "modelcarContainerNames and storageUriAnnotations are both empty: \
                 the policy would find no model image; keep at least one of them"
                    .into(),
            );
        }
        for (i, p) in self.modelcar_container_names.iter().enumerate() {
            if p.is_empty() || p == "*" {
                out.push(format!(
                    "modelcarContainerNames[{i}]: {p:?} would match every container; \
                     name the modelcar, for example \"modelcar\" or \"modelcar-*\""
                ));
            } else if p.trim_end_matches('*').contains('*') {
                out.push(format!(
                    "modelcarContainerNames[{i}]: {p:?}: `*` may only end a pattern"
                ));
            }
        }
        for (i, a) in self.storage_uri_annotations.iter().enumerate() {
            if a.trim().is_empty() {
                out.push(format!(
                    "storageUriAnnotations[{i}] is empty; write an annotation key such as \
                     \"{KSERVE_STORAGE_URI_ANNOTATION}\""
                ));
            }
        }
    }

    fn check_init_container_name(&self, out: &mut Vec<String>) {
        let name = &self.init_container_name;
        if !names::is_dns1123_label(name) {
            out.push(format!(
                "initContainerName: {name:?} is not a valid container name; use lower-case \
                 letters, digits and '-', starting and ending with a letter or digit"
            ));
        } else if name.len() > MAX_INIT_CONTAINER_NAME_LEN {
            out.push(format!(
                "initContainerName: {name:?} has {} characters; use at most \
                 {MAX_INIT_CONTAINER_NAME_LEN} so that `-N` suffixes fit in 63",
                name.len()
            ));
        } else if names::is_kserve_init_name(name) {
            out.push(format!(
                "initContainerName: {name:?} is the name KServe gives its own init container, \
                 and a duplicate name makes the API server reject the pod; \
                 use another name, for example \"{DEFAULT_INIT_CONTAINER_NAME}\""
            ));
        }
    }

    fn check_command(&self, out: &mut Vec<String>) {
        match self.command.first() {
            None => out.push(
                "command is empty; give the program to run, for example [\"sh\", \"-c\", \"true\"]"
                    .into(),
            ),
            Some(c) if c.is_empty() => out.push(
                "command[0] is empty; it must name the program to run, for example \"sh\"".into(),
            ),
            Some(_) => {}
        }
    }
}

/// serde names the type that did not fit, not the setting: find the setting
/// by reading each one alone.
fn name_the_setting(text: &str, error: serde_json::Error) -> String {
    let fields = Fields::parse(text).unwrap_or_default();
    let culprit = fields.iter().find_map(|(key, value)| {
        let alone = Fields::default().with(&[(key, value.to_string())]);
        json_text::parse::<Document>(&alone)
            .err()
            .map(|e| (key, without_position(&e)))
    });
    match culprit {
        Some((key, e)) if !e.starts_with("unknown field") => format!("{key}: {e}"),
        _ => format!("settings: {}", without_position(&error)),
    }
}

/// serde_json's message without " at line L column C", which points into the
/// JSON text the policy-server built, not into anything the user wrote.
fn without_position(error: &serde_json::Error) -> String {
    let message = error.to_string();
    match message.rfind(" at line ") {
        Some(i) if error.line() > 0 => message[..i].to_string(),
        _ => message,
    }
}

impl<'de> Deserialize<'de> for Settings {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = Box::<RawValue>::deserialize(deserializer)?;
        Ok(Settings::from_json(text.get()))
    }
}

impl kubewarden_policy_sdk::settings::Validatable for Settings {
    fn validate(&self) -> Result<(), String> {
        let problems = self.problems();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    }
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Mode::InitContainer => "initContainer",
            Mode::NativeSidecar => "nativeSidecar",
            Mode::Auto => "auto",
        })
    }
}

const SECURITY_CONTEXT_FIELDS: &[&str] = &[
    "allowPrivilegeEscalation",
    "appArmorProfile",
    "capabilities",
    "privileged",
    "procMount",
    "readOnlyRootFilesystem",
    "runAsGroup",
    "runAsNonRoot",
    "runAsUser",
    "seLinuxOptions",
    "seccompProfile",
    "windowsOptions",
];

const PROBE_FIELDS: &[&str] = &[
    "exec",
    "failureThreshold",
    "grpc",
    "httpGet",
    "initialDelaySeconds",
    "periodSeconds",
    "successThreshold",
    "tcpSocket",
    "terminationGracePeriodSeconds",
    "timeoutSeconds",
];

fn check_object_keys(field: &str, value: &Json, known: &[&str], out: &mut Vec<String>) {
    let Some(fields) = Fields::parse(value.text()) else {
        out.push(format!("{field} must be an object"));
        return;
    };
    for (key, _) in fields.iter() {
        if !known.contains(&key) {
            out.push(format!(
                "{field}.{key} is not a field of a container {field}; known fields: {}",
                known.join(", ")
            ));
        }
    }
}

fn check_resources(value: &Json, out: &mut Vec<String>) {
    let Some(fields) = Fields::parse(value.text()) else {
        out.push(
            "resources must be an object such as {\"requests\": {\"cpu\": \"10m\"}, \"limits\": {...}}"
                .into(),
        );
        return;
    };
    for (key, entries) in fields.iter() {
        if key != "requests" && key != "limits" {
            out.push(format!(
                "resources.{key} is not supported; use resources.requests and resources.limits"
            ));
            continue;
        }
        let Some(entries) = Fields::parse(entries) else {
            out.push(format!(
                "resources.{key} must map resource names to quantities, for example {{\"cpu\": \"10m\"}}"
            ));
            continue;
        };
        for (resource, q) in entries.iter() {
            if quantity_of(q).is_none() {
                out.push(format!(
                    "resources.{key}.{resource}: {q} is not a Kubernetes quantity; \
                     write it like \"10m\", \"15Mi\" or \"1\""
                ));
            }
        }
    }
    check_requests_within_limits(&fields, out);
}

fn check_requests_within_limits(resources: &Fields, out: &mut Vec<String>) {
    let (Some(requests), Some(limits)) = (
        resources.raw("requests").and_then(Fields::parse),
        resources.raw("limits").and_then(Fields::parse),
    ) else {
        return;
    };
    for (resource, request) in requests.iter() {
        let (Some(r), Some(l)) = (
            quantity_of(request),
            limits.raw(resource).and_then(quantity_of),
        ) else {
            continue;
        };
        if r > l {
            out.push(format!(
                "resources.requests.{resource} ({request}) is above resources.limits.{resource}; \
                 the API server rejects such a container"
            ));
        }
    }
}

/// A quantity written as a string ("15Mi") or a number (0.5). A JSON number's
/// text is also a quantity's, which saves a float parser.
fn quantity_of(q: &str) -> Option<f64> {
    if json_text::is_number(q) {
        quantity::parse(q)
    } else {
        quantity::parse(&json_text::parse::<String>(q).ok()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kubewarden_policy_sdk::settings::Validatable;
    use rstest::rstest;
    use serde_json::{Value, json};

    fn problems(v: Value) -> String {
        Settings::from_value(&v).validate().unwrap_err()
    }

    #[test]
    fn empty_settings_are_the_defaults() {
        let s = Settings::from_value(&json!({}));
        assert_eq!(s, Settings::default());
        assert_eq!(s.mode, Mode::InitContainer);
        assert_eq!(s.modelcar_container_names, ["modelcar", "modelcar-*"]);
        assert_eq!(
            s.storage_uri_annotations,
            ["internal.serving.kserve.io/storage-initializer-sourceuri"]
        );
        assert_eq!(s.init_container_name, "modelcar-prefetch");
        assert_eq!(s.command, ["sh", "-c", "true"]);
        assert_eq!(s.native_sidecar_min_kubelet_version, "1.29");
        assert!(s.validate().is_ok());
        assert_eq!(Settings::from_value(&Value::Null), s);
    }

    #[rstest]
    #[case::every_field(json!({
        "mode": "auto",
        "modelcarContainerNames": ["modelcar"],
        "storageUriAnnotations": [],
        "initContainerName": "pull-model",
        "command": ["/bin/true"],
        "resources": {"requests": {"cpu": "1m", "memory": "8Mi"}, "limits": {"cpu": 0.5, "memory": "1e8"}},
        "securityContext": {"runAsNonRoot": true, "capabilities": {"drop": ["ALL"]}},
        "startupProbe": {"exec": {"command": ["test", "-e", "/mnt/models"]}, "periodSeconds": 1},
        "nativeSidecarMinKubeletVersion": "v1.30",
        "nodeLabelSelector": "nvidia.com/gpu.present=true,!node-role.kubernetes.io/control-plane",
        "startModelcarFirst": false
    }))]
    #[case::native_sidecar_mode(json!({"mode": "nativeSidecar"}))]
    #[case::only_annotations(json!({"modelcarContainerNames": []}))]
    #[case::only_containers(json!({"storageUriAnnotations": []}))]
    #[case::longest_name(json!({"initContainerName": "a".repeat(MAX_INIT_CONTAINER_NAME_LEN)}))]
    #[case::name_close_to_kserve(json!({"initContainerName": "modelcar-init-x"}))]
    #[case::integer_quantity(json!({"resources": {"limits": {"cpu": 1}}}))]
    fn accepted_settings(#[case] settings: Value) {
        assert_eq!(Settings::from_value(&settings).validate(), Ok(()));
    }

    #[rstest]
    #[case::unknown_field(json!({"initContainerNames": "x"}), "unknown field `initContainerNames`")]
    #[case::unknown_mode(json!({"mode": "sidecar"}), "unknown variant `sidecar`")]
    #[case::wrong_type(json!({"command": "true"}), "command: invalid type: string \"true\", expected a sequence")]
    #[case::wrong_nested_type(json!({"modelcarContainerNames": ["modelcar", 3]}), "modelcarContainerNames: invalid type: integer `3`, expected a string")]
    #[case::not_an_object(json!([1]), "settings must be a map of setting names to values, not [1]")]
    #[case::no_source(
        json!({"modelcarContainerNames": [], "storageUriAnnotations": []}),
        "modelcarContainerNames and storageUriAnnotations are both empty"
    )]
    #[case::empty_pattern(json!({"modelcarContainerNames": [""]}), "modelcarContainerNames[0]: \"\" would match every container")]
    #[case::star_pattern(json!({"modelcarContainerNames": ["modelcar", "*"]}), "modelcarContainerNames[1]: \"*\" would match")]
    #[case::inner_star(json!({"modelcarContainerNames": ["model*car"]}), "`*` may only end a pattern")]
    #[case::empty_annotation(json!({"storageUriAnnotations": [" "]}), "storageUriAnnotations[0] is empty")]
    #[case::name_uppercase(json!({"initContainerName": "Prefetch"}), "initContainerName: \"Prefetch\" is not a valid container name")]
    #[case::name_empty(json!({"initContainerName": ""}), "initContainerName: \"\" is not a valid container name")]
    #[case::name_trailing_dash(json!({"initContainerName": "prefetch-"}), "is not a valid container name")]
    #[case::name_too_long(json!({"initContainerName": "a".repeat(MAX_INIT_CONTAINER_NAME_LEN + 1)}), "use at most 57 so that `-N` suffixes fit in 63")]
    #[case::name_kserve(json!({"initContainerName": "modelcar-init"}), "initContainerName: \"modelcar-init\" is the name KServe gives")]
    #[case::name_kserve_numbered(json!({"initContainerName": "modelcar-init-3"}), "is the name KServe gives its own init container")]
    #[case::empty_command(json!({"command": []}), "command is empty")]
    #[case::empty_program(json!({"command": ["", "x"]}), "command[0] is empty")]
    #[case::bad_quantity(json!({"resources": {"limits": {"memory": "15MB"}}}), "resources.limits.memory: \"15MB\" is not a Kubernetes quantity")]
    #[case::negative_quantity(json!({"resources": {"requests": {"cpu": "-1"}}}), "resources.requests.cpu: \"-1\" is not a Kubernetes quantity")]
    #[case::request_above_limit(json!({"resources": {"requests": {"memory": "1Gi"}, "limits": {"memory": "15Mi"}}}), "resources.requests.memory (\"1Gi\") is above resources.limits.memory")]
    #[case::resources_claims(json!({"resources": {"claims": []}}), "resources.claims is not supported")]
    #[case::resources_not_object(json!({"resources": "small"}), "resources must be an object")]
    #[case::resources_entries_not_object(json!({"resources": {"limits": ["1"]}}), "resources.limits must map resource names to quantities")]
    #[case::security_context_typo(json!({"securityContext": {"runAsNonroot": true}}), "securityContext.runAsNonroot is not a field of a container securityContext")]
    #[case::security_context_not_object(json!({"securityContext": true}), "securityContext must be an object")]
    #[case::probe_typo(json!({"startupProbe": {"execute": {}}}), "startupProbe.execute is not a field")]
    #[case::bad_version(json!({"nativeSidecarMinKubeletVersion": "latest"}), "nativeSidecarMinKubeletVersion: \"latest\" is not a Kubernetes version")]
    #[case::bad_selector(json!({"nodeLabelSelector": "gpu: true"}), "nodeLabelSelector: \"gpu: true\" is not a label selector; write it as `kubectl get nodes -l` takes it")]
    #[case::start_first_not_bool(json!({"startModelcarFirst": "yes"}), "startModelcarFirst: invalid type: string \"yes\", expected a boolean")]
    fn rejected_settings(#[case] settings: Value, #[case] message: &str) {
        let got = problems(settings);
        assert!(
            got.contains(message),
            "{got:?} does not contain {message:?}"
        );
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let got = problems(json!({"command": [], "initContainerName": "X"}));
        assert!(got.contains("command is empty") && got.contains("initContainerName"));
    }
}
