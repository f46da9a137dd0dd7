use std::collections::BTreeMap;

use json_patch::Patch;
use serde::Deserialize;
use serde_json::Value;

/// The answer of the module's `validate_settings`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SettingsVerdict {
    pub valid: bool,
    pub message: Option<String>,
}

/// The module's `validate` answer, plus the JSON Patch policy-server would send.
#[derive(Debug, Clone)]
pub struct Evaluation {
    pub allowed: bool,
    pub message: Option<String>,
    /// The HTTP-like code a rejecting policy may set.
    pub code: Option<u16>,
    pub warnings: Vec<String>,
    /// What policy-server hands the API server as the AdmissionResponse's
    /// `auditAnnotations` (the API server prefixes each key with the webhook's name).
    pub audit_annotations: BTreeMap<String, String>,
    pub mutated_object: Option<Value>,
    /// `json_patch::diff(request.object, mutated_object)`; `None` when nothing changed.
    pub patch: Option<Patch>,
    /// The ValidationResponse exactly as the module returned it.
    pub raw: Value,
}

/// The SDK's ValidationResponse, read leniently: unknown fields are the SDK's business.
#[derive(Deserialize)]
struct ValidationResponse {
    accepted: bool,
    message: Option<String>,
    code: Option<u16>,
    mutated_object: Option<Value>,
    audit_annotations: Option<BTreeMap<String, String>>,
    warnings: Option<Vec<String>>,
}

impl Evaluation {
    pub(crate) fn from_response(raw: Value, original_object: &Value) -> Result<Self, String> {
        let response: ValidationResponse =
            serde_json::from_value(raw.clone()).map_err(|e| e.to_string())?;
        let patch = response
            .mutated_object
            .as_ref()
            .map(|mutated| json_patch::diff(original_object, mutated))
            .filter(|patch| !patch.0.is_empty());
        Ok(Self {
            allowed: response.accepted,
            message: response.message,
            code: response.code,
            warnings: response.warnings.unwrap_or_default(),
            audit_annotations: response.audit_annotations.unwrap_or_default(),
            mutated_object: response.mutated_object,
            patch,
            raw,
        })
    }

    /// `original_object` with the patch applied: what the API server would store.
    /// When the patch does not apply to it (another object than the request's), the
    /// mutated object is returned, or the original unchanged when there is none.
    pub fn patched(&self, original_object: &Value) -> Value {
        let mut object = original_object.clone();
        let Some(patch) = &self.patch else {
            return object;
        };
        match json_patch::patch(&mut object, &patch.0) {
            Ok(()) => object,
            Err(_) => self
                .mutated_object
                .clone()
                .unwrap_or_else(|| original_object.clone()),
        }
    }

    /// The patch operations as a JSON array (`[]` when there is no patch).
    pub fn patch_json(&self) -> Value {
        self.patch
            .as_ref()
            .and_then(|patch| serde_json::to_value(patch).ok())
            .unwrap_or_else(|| Value::Array(Vec::new()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn patch_is_the_diff_of_original_and_mutated_object() {
        let original = json!({"spec": {"containers": [{"name": "a"}]}});
        let mutated =
            json!({"spec": {"containers": [{"name": "a"}], "initContainers": [{"name": "i"}]}});
        let raw = json!({"accepted": true, "mutated_object": mutated, "warnings": ["w"],
                         "audit_annotations": {"prefetch": "added i"}});
        let evaluation = Evaluation::from_response(raw, &original).unwrap();
        assert_eq!(
            evaluation.patch_json(),
            json!([{"op": "add", "path": "/spec/initContainers", "value": [{"name": "i"}]}])
        );
        assert_eq!(evaluation.patched(&original), mutated);
        assert_eq!(evaluation.warnings, vec!["w".to_owned()]);
        assert_eq!(
            evaluation.audit_annotations,
            BTreeMap::from([("prefetch".to_owned(), "added i".to_owned())])
        );
    }

    #[test]
    fn unchanged_mutated_object_is_no_patch() {
        let original = json!({"a": 1});
        let raw = json!({"accepted": true, "mutated_object": {"a": 1}});
        let evaluation = Evaluation::from_response(raw, &original).unwrap();
        assert!(evaluation.patch.is_none());
        assert_eq!(evaluation.patch_json(), json!([]));
        assert_eq!(evaluation.patched(&original), original);
    }

    #[test]
    fn rejection_keeps_message_and_code() {
        let raw = json!({"accepted": false, "message": "no", "code": 400});
        let evaluation = Evaluation::from_response(raw, &Value::Null).unwrap();
        assert!(!evaluation.allowed);
        assert_eq!(evaluation.message.as_deref(), Some("no"));
        assert_eq!(evaluation.code, Some(400));
    }
}
