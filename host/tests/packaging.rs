//! The files that ship the policy agree with each other and with the built module:
//! one version everywhere, Artifact Hub metadata generated from metadata.yml and
//! questions-ui.yml, every setting the module accepts documented, examples that the
//! module accepts, and the declared host capabilities equal to what the module uses.
//!
//! The accepted settings, modes and capabilities are read from policy.wasm itself, never
//! from a list kept here, so a setting added to src/settings.rs fails these tests until it
//! is documented.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use modelcar_prefetch_host::{HostTable, Policy, fixture, workspace_root};
use serde_json::{Map, Value, json};
use wasmparser::{Parser, Payload};

// ---------------------------------------------------------------------------------------
// Reading the repository's files

fn read_text(relative: &str) -> String {
    let path = workspace_root().join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn read_yaml(relative: &str) -> Value {
    yaml(&read_text(relative), relative)
}

fn yaml(text: &str, what: &str) -> Value {
    serde_yaml::from_str(text).unwrap_or_else(|e| panic!("{what} is not valid YAML: {e}"))
}

fn metadata() -> Value {
    read_yaml("metadata.yml")
}

fn annotation(metadata: &Value, name: &str) -> String {
    metadata["annotations"][name]
        .as_str()
        .unwrap_or_else(|| panic!("metadata.yml: annotation {name} is missing or not a string"))
        .to_owned()
}

fn artifacthub() -> Value {
    read_yaml("artifacthub-pkg.yml")
}

fn artifacthub_annotation(name: &str) -> String {
    artifacthub()["annotations"][name]
        .as_str()
        .unwrap_or_else(|| {
            panic!("artifacthub-pkg.yml: annotation {name} is missing or not a string")
        })
        .to_owned()
}

/// `[package] version` of the policy crate.
fn cargo_version() -> String {
    let manifest = read_text("Cargo.toml");
    let mut in_package = false;
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_package = line == "[package]";
        } else if in_package && let Some(rest) = line.strip_prefix("version") {
            let value = rest.trim_start().trim_start_matches('=').trim();
            return value.trim_matches('"').to_owned();
        }
    }
    panic!("Cargo.toml has no [package] version");
}

fn questions() -> Vec<Value> {
    read_yaml("questions-ui.yml")["questions"]
        .as_array()
        .expect("questions-ui.yml: `questions` must be a list")
        .clone()
}

/// The settings a question sets: its `variable` up to the first dot.
fn question_settings() -> BTreeSet<String> {
    questions()
        .iter()
        .filter_map(|q| q["variable"].as_str())
        .filter(|v| *v != "description")
        .map(|v| v.split('.').next().unwrap_or(v).to_owned())
        .collect()
}

struct Example {
    file: String,
    document: Value,
}

fn examples() -> Vec<Example> {
    let dir = workspace_root().join("examples");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "examples/ holds no policy manifest");
    files
        .iter()
        .map(|path| {
            let file = format!(
                "examples/{}",
                path.file_name().unwrap_or_default().to_string_lossy()
            );
            let text = std::fs::read_to_string(path).unwrap();
            Example {
                document: yaml(&text, &file),
                file,
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// Asking the module

/// The names listed in serde's "unknown field/variant `x`, expected one of `a`, `b`" message.
fn expected_one_of(message: &str) -> BTreeSet<String> {
    let (_, list) = message.split_once("expected one of ").unwrap_or_else(|| {
        panic!("the module's message does not list what it expects: {message:?}")
    });
    let list = list.split(';').next().unwrap_or(list);
    let names: BTreeSet<String> = list
        .split(',')
        .map(|item| item.trim().trim_matches('`').to_owned())
        .filter(|item| !item.is_empty())
        .collect();
    assert!(!names.is_empty(), "no names in {message:?}");
    names
}

fn refusal(settings: Value) -> String {
    let verdict = common::policy()
        .validate_settings(&settings)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!verdict.valid, "the module accepted {settings}");
    verdict.message.unwrap_or_default()
}

/// Every top-level setting the module accepts, from its own "unknown field" refusal.
fn accepted_settings() -> BTreeSet<String> {
    expected_one_of(&refusal(json!({"x-probe": 1})))
}

/// Every `mode` the module accepts, from its own "unknown variant" refusal.
fn accepted_modes() -> BTreeSet<String> {
    expected_one_of(&refusal(json!({"mode": "x-probe"})))
}

// ---------------------------------------------------------------------------------------
// One version everywhere

#[test]
fn cargo_and_metadata_versions_agree() {
    let cargo = cargo_version();
    let metadata = annotation(&metadata(), "io.kubewarden.policy.version");
    assert_eq!(
        metadata, cargo,
        "metadata.yml io.kubewarden.policy.version is {metadata} but Cargo.toml says {cargo}: \
         bump both (and artifacthub-pkg.yml) together"
    );
}

#[test]
fn artifacthub_version_and_image_tags_agree_with_cargo() {
    let version = cargo_version();
    let pkg = artifacthub();
    assert_eq!(
        pkg["version"].as_str(),
        Some(version.as_str()),
        "artifacthub-pkg.yml `version` must be Cargo.toml's {version}"
    );
    let oci = annotation(&metadata(), "io.kubewarden.policy.ociUrl");
    let expected_image = format!("{oci}:v{version}");
    let images = pkg["containersImages"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        images,
        vec![json!({"name": "policy", "image": expected_image})],
        "artifacthub-pkg.yml containersImages must be exactly the policy at {expected_image}"
    );
    let install = pkg["install"].as_str().unwrap_or_default();
    for line in [
        format!("kwctl pull {expected_image}"),
        format!("kwctl scaffold manifest -t ClusterAdmissionPolicy registry://{expected_image}"),
    ] {
        assert!(
            install.contains(&line),
            "artifacthub-pkg.yml install notes must contain `{line}`"
        );
    }
    let source = annotation(&metadata(), "io.kubewarden.policy.source");
    let expected_links = json!([
        {"name": "policy", "url": format!("{source}/releases/download/v{version}/policy.wasm")},
        {"name": "source", "url": source},
    ]);
    assert_eq!(
        pkg["links"], expected_links,
        "artifacthub-pkg.yml links must point at release v{version} (as kwctl scaffold artifacthub writes them)"
    );
}

/// Kubewarden's release workflow (check-policy-version) reads the version with
/// `grep 'io.kubewarden.policy.version' metadata.yml | awk '{print $2}' | tr -d '"'`.
#[test]
fn release_workflow_reads_the_version_annotation() {
    let text = read_text("metadata.yml");
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("io.kubewarden.policy.version"))
        .collect();
    assert_eq!(
        lines.len(),
        1,
        "metadata.yml must mention io.kubewarden.policy.version on exactly one line \
         (the release workflow greps for it), found {lines:?}"
    );
    let field = lines[0].split_whitespace().nth(1).unwrap_or_default();
    assert_eq!(
        field.replace('"', ""),
        cargo_version(),
        "the release workflow would read {field:?} as the policy version"
    );
}

#[test]
fn examples_use_the_released_module() {
    let expected = format!(
        "registry://{}:v{}",
        annotation(&metadata(), "io.kubewarden.policy.ociUrl"),
        cargo_version()
    );
    for example in examples() {
        assert_eq!(
            example.document["spec"]["module"].as_str(),
            Some(expected.as_str()),
            "{}: spec.module must be {expected}",
            example.file
        );
    }
}

#[test]
fn changelog_has_an_entry_for_the_version() {
    let version = cargo_version();
    let changelog = read_text("CHANGELOG.md");
    assert!(
        changelog
            .lines()
            .any(|l| l.starts_with(&format!("## [{version}]"))),
        "CHANGELOG.md has no `## [{version}]` section"
    );
}

// ---------------------------------------------------------------------------------------
// metadata.yml

#[test]
fn metadata_has_every_annotation_kubewarden_and_artifacthub_read() {
    let metadata = metadata();
    for name in [
        "io.kubewarden.policy.title",
        "io.kubewarden.policy.version",
        "io.kubewarden.policy.description",
        "io.kubewarden.policy.author",
        "io.kubewarden.policy.url",
        "io.kubewarden.policy.source",
        "io.kubewarden.policy.license",
        "io.kubewarden.policy.ociUrl",
        "io.kubewarden.policy.severity",
        "io.kubewarden.policy.category",
        "io.artifacthub.displayName",
        "io.artifacthub.resources",
        "io.artifacthub.keywords",
    ] {
        assert!(
            !annotation(&metadata, name).trim().is_empty(),
            "metadata.yml: annotation {name} is empty"
        );
    }
    let severity = annotation(&metadata, "io.kubewarden.policy.severity");
    assert!(
        ["info", "low", "medium", "high", "critical"].contains(&severity.as_str()),
        "io.kubewarden.policy.severity must be info, low, medium, high or critical, not {severity}"
    );
    assert_eq!(
        annotation(&metadata, "io.kubewarden.policy.license"),
        "Apache-2.0"
    );
    assert!(
        read_text("Cargo.toml").contains("license = \"Apache-2.0\""),
        "Cargo.toml must declare license = \"Apache-2.0\" like metadata.yml"
    );
}

#[test]
fn metadata_acts_on_pod_create_only_as_a_mutating_wapc_policy() {
    let metadata = metadata();
    assert_eq!(
        metadata["rules"],
        json!([{"apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"], "operations": ["CREATE"]}]),
        "metadata.yml rules: the policy mutates Pods on CREATE only (pod specs are immutable)"
    );
    assert_eq!(
        metadata["mutating"],
        json!(true),
        "metadata.yml: mutating must be true"
    );
    assert_eq!(metadata["executionMode"], json!("kubewarden-wapc"));
    assert_eq!(
        metadata["backgroundAudit"],
        json!(false),
        "metadata.yml: backgroundAudit must be false (the audit scanner ignores patches)"
    );
}

/// What the module asks the host for, found as kwctl annotate finds it: the capability's
/// namespace and operation strings in the module's data segments.
#[test]
fn metadata_host_capabilities_are_what_the_module_calls() {
    const KNOWN: &[(&str, &str)] = &[
        ("crypto", "v1/is_certificate_trusted"),
        ("kubernetes", "can_i"),
        ("kubernetes", "get_resource"),
        ("kubernetes", "list_resources_all"),
        ("kubernetes", "list_resources_by_namespace"),
        ("net", "v1/dns_lookup_host"),
        ("oci", "v1/manifest_digest"),
        ("oci", "v1/oci_manifest"),
        ("oci", "v1/oci_manifest_config"),
        ("oci", "v1/verify"),
        ("oci", "v2/verify"),
    ];
    let module = common::module_bytes();
    let mut data = Vec::new();
    for payload in Parser::new(0).parse_all(&module) {
        if let Payload::DataSection(section) = payload.unwrap() {
            for segment in section {
                data.extend_from_slice(segment.unwrap().data);
                data.push(0xFF);
            }
        }
    }
    let contains = |needle: &str| data.windows(needle.len()).any(|w| w == needle.as_bytes());
    let operations: Vec<&str> = KNOWN.iter().map(|(_, op)| *op).collect();
    // `list_resources_all` is no prefix of another operation, but keep the check general:
    // an operation found only as the start of a longer one does not count.
    let standalone = |op: &str| {
        let longer: Vec<&str> = operations
            .iter()
            .copied()
            .filter(|o| *o != op && o.starts_with(op))
            .collect();
        data.windows(op.len()).enumerate().any(|(i, w)| {
            w == op.as_bytes() && !longer.iter().any(|l| data[i..].starts_with(l.as_bytes()))
        })
    };
    let used: BTreeSet<String> = KNOWN
        .iter()
        .filter(|(ns, op)| contains(ns) && standalone(op))
        .map(|(ns, op)| format!("{ns}/{op}"))
        .collect();
    let declared: BTreeSet<String> = metadata()["hostCapabilities"]
        .as_array()
        .map(|caps| {
            caps.iter()
                .filter_map(|c| c.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        declared, used,
        "metadata.yml hostCapabilities must list exactly the host capabilities the module calls"
    );
}

/// Runs the module in mode `auto` on a pod with a modelcar it may move, answering the
/// node list, and compares what it asked for with metadata.yml.
#[test]
fn metadata_context_aware_resources_are_what_the_module_reads() {
    let host = HostTable::new().answer("kubernetes", "list_resources_all", |_| {
        Ok(json!({"items": [
            {"metadata": {"name": "node-a"}, "status": {"nodeInfo": {"kubeletVersion": "v1.31.2"}}}
        ]}))
    });
    let policy = Policy::with_host(host).unwrap_or_else(|e| panic!("{e}"));
    let evaluation = policy
        .validate(&fixture("pod-two-modelcars"), &json!({"mode": "auto"}))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(evaluation.allowed);
    let calls = policy.host_calls();
    assert!(
        !calls.is_empty(),
        "mode auto made no host call for a pod with a movable modelcar"
    );
    let mut read = BTreeSet::new();
    let mut capabilities = BTreeSet::new();
    for call in &calls {
        capabilities.insert(format!("{}/{}", call.namespace, call.operation));
        read.insert(resource_key(
            &call.payload["api_version"],
            &call.payload["kind"],
        ));
    }
    let declared: BTreeSet<(String, String)> = metadata()["contextAwareResources"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|r| resource_key(&r["apiVersion"], &r["kind"]))
        .collect();
    assert_eq!(
        declared, read,
        "metadata.yml contextAwareResources must list exactly what the module reads"
    );
    let declared_capabilities: BTreeSet<String> = metadata()["hostCapabilities"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter_map(|c| c.as_str().map(str::to_owned))
        .collect();
    assert!(
        capabilities.is_subset(&declared_capabilities),
        "the module called {capabilities:?}, metadata.yml hostCapabilities declares {declared_capabilities:?}"
    );
}

/// `(apiVersion, kind)`, with `?` for a missing part so that a mismatch stays visible.
fn resource_key(api_version: &Value, kind: &Value) -> (String, String) {
    let text = |v: &Value| v.as_str().unwrap_or("?").to_owned();
    (text(api_version), text(kind))
}

// ---------------------------------------------------------------------------------------
// artifacthub-pkg.yml is metadata.yml + questions-ui.yml

#[test]
fn artifacthub_rules_match_metadata() {
    let rules = yaml(
        &artifacthub_annotation("kubewarden/rules"),
        "kubewarden/rules",
    );
    assert_eq!(
        rules,
        metadata()["rules"],
        "artifacthub-pkg.yml kubewarden/rules drifted from metadata.yml rules"
    );
}

#[test]
fn artifacthub_mutation_matches_metadata() {
    let mutating = metadata()["mutating"].as_bool().unwrap_or(false);
    assert_eq!(
        artifacthub_annotation("kubewarden/mutation"),
        mutating.to_string(),
        "artifacthub-pkg.yml kubewarden/mutation drifted from metadata.yml mutating"
    );
}

#[test]
fn artifacthub_context_aware_resources_match_metadata() {
    let resources = yaml(
        &artifacthub_annotation("kubewarden/contextAwareResources"),
        "kubewarden/contextAwareResources",
    );
    assert_eq!(
        resources,
        metadata()["contextAwareResources"],
        "artifacthub-pkg.yml kubewarden/contextAwareResources drifted from metadata.yml"
    );
}

#[test]
fn artifacthub_questions_are_questions_ui_yml() {
    let embedded = artifacthub_annotation("kubewarden/questions-ui");
    let file = read_text("questions-ui.yml");
    if embedded == file {
        return;
    }
    let (embedded_lines, file_lines): (Vec<_>, Vec<_>) =
        (embedded.lines().collect(), file.lines().collect());
    let line = embedded_lines
        .iter()
        .zip(&file_lines)
        .position(|(a, b)| a != b)
        .unwrap_or(embedded_lines.len().min(file_lines.len()));
    panic!(
        "artifacthub-pkg.yml kubewarden/questions-ui must be questions-ui.yml verbatim \
         (kwctl scaffold artifacthub copies it); first difference at questions-ui.yml line {}: \
         embedded {:?}, file {:?}",
        line + 1,
        embedded_lines.get(line),
        file_lines.get(line),
    );
}

#[test]
fn artifacthub_package_fields_match_metadata_annotations() {
    let metadata = metadata();
    let pkg = artifacthub();
    let field = |name: &str| pkg[name].as_str().unwrap_or_default().to_owned();
    for (pkg_field, annotation_name) in [
        ("name", "io.kubewarden.policy.title"),
        ("displayName", "io.artifacthub.displayName"),
        ("description", "io.kubewarden.policy.description"),
        ("license", "io.kubewarden.policy.license"),
        ("homeURL", "io.kubewarden.policy.url"),
    ] {
        assert_eq!(
            field(pkg_field),
            annotation(&metadata, annotation_name),
            "artifacthub-pkg.yml {pkg_field} drifted from metadata.yml {annotation_name}"
        );
    }
    let keywords: Vec<Value> = annotation(&metadata, "io.artifacthub.keywords")
        .split(',')
        .map(|k| Value::String(k.trim().to_owned()))
        .collect();
    assert_eq!(
        pkg["keywords"],
        Value::Array(keywords),
        "artifacthub-pkg.yml keywords drifted from io.artifacthub.keywords"
    );
    assert_eq!(
        artifacthub_annotation("kubewarden/resources"),
        annotation(&metadata, "io.artifacthub.resources"),
        "artifacthub-pkg.yml kubewarden/resources drifted from io.artifacthub.resources"
    );
    let author = annotation(&metadata, "io.kubewarden.policy.author");
    let (name, email) = author
        .trim_end_matches('>')
        .split_once(" <")
        .unwrap_or_else(|| {
            panic!("io.kubewarden.policy.author must read `Name <email>` (Artifact Hub needs the address), not {author:?}")
        });
    assert_eq!(
        pkg["maintainers"],
        json!([{"name": name, "email": email}]),
        "artifacthub-pkg.yml maintainers drifted from io.kubewarden.policy.author"
    );
    assert_eq!(pkg["provider"], json!({"name": "kubewarden"}));
}

// ---------------------------------------------------------------------------------------
// Every setting documented

#[test]
fn every_accepted_setting_is_in_questions_ui() {
    let accepted = accepted_settings();
    let asked = question_settings();
    let missing: Vec<_> = accepted.difference(&asked).collect();
    assert!(
        missing.is_empty(),
        "questions-ui.yml has no question for {missing:?} (the module accepts {accepted:?}); \
         add them, then copy questions-ui.yml into artifacthub-pkg.yml"
    );
    let unknown: Vec<_> = asked.difference(&accepted).collect();
    assert!(
        unknown.is_empty(),
        "questions-ui.yml asks for {unknown:?}, which the module refuses"
    );
}

#[test]
fn every_accepted_setting_is_in_the_readme() {
    let readme = read_text("README.md");
    let missing: Vec<_> = accepted_settings()
        .into_iter()
        .filter(|s| !readme.contains(&format!("`{s}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "README.md does not document the settings {missing:?}"
    );
}

#[test]
fn every_mode_is_offered_and_documented() {
    let modes = accepted_modes();
    let mode_question = questions()
        .into_iter()
        .find(|q| q["variable"] == "mode")
        .expect("questions-ui.yml has no `mode` question");
    let offered: BTreeSet<String> = mode_question["options"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter_map(|o| o.as_str().map(str::to_owned))
        .collect();
    assert_eq!(
        offered, modes,
        "questions-ui.yml mode options must be the modes the module accepts"
    );
    let readme = read_text("README.md");
    for mode in &modes {
        assert!(
            readme.contains(&format!("`{mode}`")),
            "README.md does not document mode `{mode}`"
        );
    }
}

/// The defaults shown in the form are the module's defaults: the settings they make are
/// valid and change no outcome compared with empty settings.
#[test]
fn questions_ui_defaults_are_the_module_defaults() {
    let mut settings = Map::new();
    for question in questions() {
        let (Some(variable), Some(default)) =
            (question["variable"].as_str(), question.get("default"))
        else {
            continue;
        };
        if variable == "description" || variable.contains('.') || default.is_null() {
            continue;
        }
        settings.insert(variable.to_owned(), default.clone());
    }
    let settings = Value::Object(settings);
    let policy = common::policy();
    let verdict = policy
        .validate_settings(&settings)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        verdict.valid,
        "questions-ui.yml defaults {settings} are refused: {:?}",
        verdict.message
    );
    for name in [
        "kserve-predictor-before-kserve-webhook",
        "kserve-predictor-v0.13-modelcar",
        "kserve-predictor-v0.14-modelcar-init",
        "kserve-predictor-psa-restricted",
        "kserve-predictor-istio-private-digest",
        "pod-two-modelcars",
        "pod-without-modelcar",
    ] {
        let request = fixture(name);
        let with_defaults = policy.validate(&request, &settings).unwrap();
        let with_nothing = policy.validate(&request, &json!({})).unwrap();
        assert_eq!(
            with_defaults.patch_json(),
            with_nothing.patch_json(),
            "{name}: questions-ui.yml defaults {settings} behave differently from the module's defaults"
        );
    }
}

// ---------------------------------------------------------------------------------------
// examples/

#[test]
fn examples_settings_pass_the_modules_validation() {
    let policy = common::policy();
    for example in examples() {
        let settings = example.document["spec"]
            .get("settings")
            .cloned()
            .unwrap_or(json!({}));
        let verdict = policy
            .validate_settings(&settings)
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(
            verdict.valid,
            "{}: the module refuses its settings: {:?}",
            example.file, verdict.message
        );
    }
}

#[test]
fn examples_rules_match_metadata() {
    let rules = metadata()["rules"].clone();
    for example in examples() {
        assert_eq!(
            example.document["spec"]["rules"], rules,
            "{}: spec.rules must equal metadata.yml rules",
            example.file
        );
    }
}

#[test]
fn examples_are_mutating_kubewarden_policies() {
    for example in examples() {
        let doc = &example.document;
        assert_eq!(
            doc["apiVersion"],
            json!("policies.kubewarden.io/v1"),
            "{}",
            example.file
        );
        assert!(
            matches!(
                doc["kind"].as_str(),
                Some("ClusterAdmissionPolicy" | "AdmissionPolicy")
            ),
            "{}: kind must be ClusterAdmissionPolicy or AdmissionPolicy",
            example.file
        );
        assert_eq!(
            doc["spec"]["mutating"],
            json!(true),
            "{}: without `mutating: true` the policy cannot mutate",
            example.file
        );
        assert_ne!(
            doc["spec"]["mode"],
            json!("monitor"),
            "{}: monitor mode drops patches",
            example.file
        );
    }
}

/// Kubewarden grants context-aware resources to ClusterAdmissionPolicies only; mode auto
/// needs the node list.
#[test]
fn auto_mode_examples_grant_the_node_list() {
    let declared = metadata()["contextAwareResources"].clone();
    let mut seen = false;
    for example in examples() {
        let spec = &example.document["spec"];
        if spec["settings"]["mode"] != json!("auto") {
            continue;
        }
        seen = true;
        assert_eq!(
            example.document["kind"],
            json!("ClusterAdmissionPolicy"),
            "{}: only a ClusterAdmissionPolicy can read Nodes",
            example.file
        );
        assert_eq!(
            spec["contextAwareResources"], declared,
            "{}: mode auto needs contextAwareResources equal to metadata.yml's",
            example.file
        );
    }
    assert!(seen, "examples/ has no mode auto policy");
}

#[test]
fn cluster_admission_policy_example_selects_kserve_pods() {
    let example = examples()
        .into_iter()
        .find(|e| e.file == "examples/cluster-admission-policy.yaml")
        .expect("examples/cluster-admission-policy.yaml is missing");
    assert_eq!(
        example.document["spec"]["objectSelector"],
        json!({"matchExpressions": [{"key": "serving.kserve.io/inferenceservice", "operator": "Exists"}]}),
        "{}: only KServe's pods should pay for the policy",
        example.file
    );
}

// ---------------------------------------------------------------------------------------
// README, LICENSE

#[test]
fn readme_states_how_to_run_and_test() {
    let readme = read_text("README.md");
    for command in ["make run", "make test"] {
        assert!(
            readme.contains(&format!("`{command}`")),
            "README.md must state `{command}`"
        );
    }
}

/// The ```yaml blocks of README.md: settings examples (`settings:` at the top) and policy
/// resources (`spec.settings`).
#[test]
fn readme_settings_examples_pass_the_modules_validation() {
    let readme = read_text("README.md");
    let policy = common::policy();
    let mut checked = 0;
    for block in readme.split("```yaml\n").skip(1) {
        let block = block.split("```").next().unwrap_or_default();
        let document = yaml(block, "a ```yaml block of README.md");
        let settings = match (document.get("settings"), document["spec"].get("settings")) {
            (Some(settings), _) | (None, Some(settings)) => settings.clone(),
            (None, None) => continue,
        };
        let verdict = policy
            .validate_settings(&settings)
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(
            verdict.valid,
            "README.md settings example {settings} is refused: {:?}",
            verdict.message
        );
        if let Some(rules) = document["spec"].get("rules") {
            assert_eq!(
                rules,
                &metadata()["rules"],
                "README.md policy example: rules must equal metadata.yml rules"
            );
        }
        checked += 1;
    }
    assert!(checked > 0, "README.md has no settings example");
}

#[test]
fn readme_ends_with_the_performance_section() {
    let readme = read_text("README.md");
    let last_section = readme
        .lines()
        .rfind(|l| l.starts_with("## "))
        .unwrap_or_default();
    assert_eq!(
        last_section, "## Performance",
        "README.md's last section must be `## Performance`"
    );
}

#[test]
fn license_is_the_apache_2_text() {
    let license = read_text("LICENSE");
    for needle in [
        "Apache License",
        "Version 2.0, January 2004",
        "TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION",
        "END OF TERMS AND CONDITIONS",
    ] {
        assert!(license.contains(needle), "LICENSE lacks {needle:?}");
    }
    assert!(Path::new(&workspace_root().join("LICENSE")).is_file());
}

#[test]
fn released_files_are_where_kubewarden_workflows_look() {
    for file in [
        "metadata.yml",
        "questions-ui.yml",
        "artifacthub-pkg.yml",
        "artifacthub-repo.yml",
        "README.md",
        ".github/workflows/test.yml",
        ".github/workflows/release.yml",
    ] {
        assert!(workspace_root().join(file).is_file(), "{file} is missing");
    }
    let repo: BTreeMap<String, Value> =
        serde_yaml::from_str(&read_text("artifacthub-repo.yml")).expect("artifacthub-repo.yml");
    assert!(
        repo.get("owners")
            .and_then(Value::as_array)
            .is_some_and(|o| !o.is_empty()),
        "artifacthub-repo.yml must name the owners"
    );
}
