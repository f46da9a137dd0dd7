//! What `modelcar-prefetch-run` prints: kwctl run's JSON line, or a report for people.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::Evaluation;

/// The AdmissionResponse `kwctl run` prints, fields in kwctl's order.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KwctlResponse {
    pub uid: String,
    pub allowed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patch_type: Option<String>,
    /// Base64 of the JSON Patch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patch: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub audit_annotations: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<Value>,
}

/// What `kwctl run` prints for `evaluation` of the request `uid`.
pub fn kwctl_response(uid: &str, evaluation: &Evaluation) -> KwctlResponse {
    let patch = evaluation
        .patch
        .as_ref()
        .map(|_| STANDARD.encode(evaluation.patch_json().to_string()));
    let mut status = Map::new();
    if let Some(message) = &evaluation.message {
        status.insert("message".into(), json!(message));
    }
    if let Some(code) = evaluation.code {
        status.insert("code".into(), json!(code));
    }
    KwctlResponse {
        uid: uid.to_owned(),
        allowed: evaluation.allowed,
        patch_type: patch.as_ref().map(|_| "JSONPatch".to_owned()),
        patch,
        audit_annotations: evaluation.audit_annotations.clone(),
        warnings: evaluation.warnings.clone(),
        status: (!status.is_empty()).then_some(Value::Object(status)),
    }
}

/// A readable report of an AdmissionResponse as kwctl prints it (patch base64-encoded).
pub fn explain_kwctl_response(response: &Value) -> Result<String, String> {
    let ops = match response.get("patch").and_then(Value::as_str) {
        Some(encoded) => {
            let bytes = STANDARD
                .decode(encoded)
                .map_err(|e| format!("patch is not base64: {e}"))?;
            serde_json::from_slice(&bytes).map_err(|e| format!("patch is not JSON: {e}"))?
        }
        None => Value::Array(Vec::new()),
    };
    let allowed = response
        .get("allowed")
        .and_then(Value::as_bool)
        .ok_or("response has no `allowed`")?;
    let message = response.pointer("/status/message").and_then(Value::as_str);
    let warnings: Vec<&str> = response
        .get("warnings")
        .and_then(Value::as_array)
        .map(|w| w.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let audit: BTreeMap<String, String> = response
        .get("auditAnnotations")
        .and_then(|a| serde_json::from_value(a.clone()).ok())
        .unwrap_or_default();
    Ok(explain(allowed, message, &warnings, &audit, &ops))
}

/// A readable report of an evaluation: decision, patch, and each added init container.
pub fn explain_evaluation(evaluation: &Evaluation) -> String {
    let warnings: Vec<&str> = evaluation.warnings.iter().map(String::as_str).collect();
    explain(
        evaluation.allowed,
        evaluation.message.as_deref(),
        &warnings,
        &evaluation.audit_annotations,
        &evaluation.patch_json(),
    )
}

fn explain(
    allowed: bool,
    message: Option<&str>,
    warnings: &[&str],
    audit: &BTreeMap<String, String>,
    ops: &Value,
) -> String {
    let mut out = String::new();
    let decision = if allowed { "ALLOWED" } else { "REJECTED" };
    out.push_str(&format!("Decision: {decision}\n"));
    if let Some(message) = message {
        out.push_str(&format!("Message: {message}\n"));
    }
    for warning in warnings {
        out.push_str(&format!("Warning: {warning}\n"));
    }
    for (key, value) in audit {
        out.push_str(&format!("Audit annotation {key}: {value}\n"));
    }
    let ops = ops.as_array().map(Vec::as_slice).unwrap_or_default();
    if ops.is_empty() {
        out.push_str("Patch: none (the object is admitted unchanged)\n");
        return out;
    }
    out.push_str(&format!("Patch ({} operation(s)):\n", ops.len()));
    out.push_str(&pretty(&Value::Array(ops.to_vec())));
    out.push('\n');
    for container in added_init_containers(ops) {
        let name = container
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("<unnamed>");
        out.push_str(&format!("Added init container `{name}`:\n"));
        out.push_str(&pretty(container));
        out.push('\n');
    }
    out
}

/// Containers that `add` operations put under `/spec/initContainers`, whether the
/// operation adds the whole list or one element.
fn added_init_containers(ops: &[Value]) -> Vec<&Value> {
    let mut containers = Vec::new();
    for op in ops {
        if op.get("op").and_then(Value::as_str) != Some("add") {
            continue;
        }
        let Some(path) = op.get("path").and_then(Value::as_str) else {
            continue;
        };
        let Some(value) = op.get("value") else {
            continue;
        };
        match path.strip_prefix("/spec/initContainers") {
            Some("") => containers.extend(value.as_array().into_iter().flatten()),
            Some(rest) if rest.starts_with('/') && !rest[1..].contains('/') => {
                containers.push(value)
            }
            _ => {}
        }
    }
    containers
}

fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container(name: &str) -> Value {
        json!({"name": name, "image": "registry.example/model:1", "command": ["sh", "-c", "true"]})
    }

    #[test]
    fn decodes_kwctl_patch_and_lists_added_init_containers() {
        let ops = json!([
            {"op": "add", "path": "/spec/initContainers", "value": [container("modelcar-prefetch")]},
            {"op": "add", "path": "/spec/initContainers/1", "value": container("modelcar-prefetch-1")},
            {"op": "add", "path": "/spec/initContainers/0/env", "value": []},
            {"op": "replace", "path": "/spec/initContainers/2", "value": container("other")}
        ]);
        let response = json!({
            "uid": "u", "allowed": true, "patchType": "JSONPatch",
            "patch": STANDARD.encode(ops.to_string()),
            "auditAnnotations": {"prefetch": "added init container modelcar-prefetch"}
        });
        let text = explain_kwctl_response(&response).unwrap();
        assert!(text.starts_with("Decision: ALLOWED\n"), "{text}");
        assert!(
            text.contains("Audit annotation prefetch: added init container modelcar-prefetch\n"),
            "{text}"
        );
        assert!(text.contains("Patch (4 operation(s)):"), "{text}");
        assert!(
            text.contains("Added init container `modelcar-prefetch`:"),
            "{text}"
        );
        assert!(
            text.contains("Added init container `modelcar-prefetch-1`:"),
            "{text}"
        );
        assert!(!text.contains("Added init container `other`"), "{text}");
        assert_eq!(text.matches("Added init container").count(), 2, "{text}");
    }

    #[test]
    fn no_patch_is_said_plainly() {
        let response = json!({"uid": "u", "allowed": false, "status": {"message": "no"}});
        let text = explain_kwctl_response(&response).unwrap();
        assert!(text.contains("Decision: REJECTED"), "{text}");
        assert!(text.contains("Message: no"), "{text}");
        assert!(text.contains("Patch: none"), "{text}");
    }
}
