//! Replays a kwctl host-capabilities session file (`kwctl run
//! --record-host-capabilities-interactions` writes them), so the runner and tests can use
//! the same recordings as `kwctl run --replay-host-capabilities-interactions`.
//!
//! The file is a YAML list of exchanges:
//! ```yaml
//! - type: Exchange
//!   request: |
//!     !KubernetesListResourceAll
//!     api_version: v1
//!     kind: Namespace
//!     label_selector: null
//!     field_selector: null
//!     field_masks: null
//!   response:
//!     type: Success
//!     payload: '{"apiVersion":"v1","kind":"NamespaceList","items":[]}'
//! ```
//! `request` may also be a mapping with a `type` key instead of the YAML tag. Exchanges
//! are answered in file order, as kwctl does; a call that does not match the next exchange
//! fails.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::{Arc, Mutex};

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::{HostError, HostTable};

/// Host calls a session can answer: (waPC namespace, operation, kwctl request type).
/// The Kubernetes ones are what this policy can use; OCI and sigstore are not replayed.
const REPLAYABLE: &[(&str, &str, &str)] = &[
    (
        "kubernetes",
        "list_resources_all",
        "KubernetesListResourceAll",
    ),
    (
        "kubernetes",
        "list_resources_by_namespace",
        "KubernetesListResourceNamespace",
    ),
    ("kubernetes", "get_resource", "KubernetesGetResource"),
];

/// Request fields compared only when both the recording and the call set them: kwctl
/// records what its host saw, which may differ in defaults from what the SDK sends.
const OPTIONAL_FIELDS: &[&str] = &[
    "label_selector",
    "field_selector",
    "namespace",
    "name",
    "field_masks",
];

#[derive(Debug, Clone, PartialEq)]
pub struct Exchange {
    pub request_type: String,
    pub request: Map<String, Value>,
    pub response: Result<Value, String>,
}

#[derive(Deserialize)]
struct RawExchange {
    #[serde(rename = "type")]
    kind: String,
    request: serde_yaml::Value,
    response: RawResponse,
}

#[derive(Deserialize)]
struct RawResponse {
    #[serde(rename = "type")]
    kind: String,
    payload: Option<String>,
    message: Option<String>,
}

pub fn load(path: &Path) -> Result<Vec<Exchange>, HostError> {
    let text = std::fs::read_to_string(path).map_err(|source| HostError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse(&text).map_err(|e| HostError::Input(format!("session {}: {e}", path.display())))
}

pub fn parse(text: &str) -> Result<Vec<Exchange>, String> {
    let raw: Vec<RawExchange> = serde_yaml::from_str(text).map_err(|e| e.to_string())?;
    raw.into_iter()
        .enumerate()
        .map(|(index, exchange)| {
            exchange_from_raw(exchange).map_err(|e| format!("exchange #{}: {e}", index + 1))
        })
        .collect()
}

fn exchange_from_raw(raw: RawExchange) -> Result<Exchange, String> {
    if raw.kind != "Exchange" {
        return Err(format!("unsupported entry type `{}`", raw.kind));
    }
    let (request_type, request) = request_from_yaml(raw.request)?;
    let response = match raw.response.kind.as_str() {
        "Success" => {
            let payload = raw.response.payload.unwrap_or_default();
            Ok(serde_json::from_str(&payload).map_err(|e| format!("payload is not JSON: {e}"))?)
        }
        "Error" => Err(raw
            .response
            .message
            .unwrap_or_else(|| "recorded error".to_owned())),
        other => return Err(format!("unsupported response type `{other}`")),
    };
    Ok(Exchange {
        request_type,
        request,
        response,
    })
}

fn request_from_yaml(request: serde_yaml::Value) -> Result<(String, Map<String, Value>), String> {
    let (tag, body) = match request {
        serde_yaml::Value::String(text) => split_tag(&text)?,
        serde_yaml::Value::Tagged(tagged) => {
            let tag = tagged.tag.to_string().trim_start_matches('!').to_owned();
            (Some(tag), tagged.value)
        }
        other => (None, other),
    };
    let Value::Object(mut fields) = serde_json::to_value(body).map_err(|e| e.to_string())? else {
        return Err("request is not a mapping".to_owned());
    };
    let request_type = match (tag, fields.remove("type")) {
        (Some(tag), _) => tag,
        (None, Some(Value::String(kind))) => kind,
        _ => return Err("request has no `!Type` tag nor `type` field".to_owned()),
    };
    Ok((request_type, fields))
}

// kwctl writes the request as a YAML document in a string, its first line the type tag.
fn split_tag(text: &str) -> Result<(Option<String>, serde_yaml::Value), String> {
    let trimmed = text.trim_start();
    let (tag, rest) = match trimmed.strip_prefix('!') {
        Some(tagged) => {
            let (tag, rest) = tagged
                .split_once(char::is_whitespace)
                .unwrap_or((tagged, ""));
            (Some(tag.to_owned()), rest)
        }
        None => (None, trimmed),
    };
    let body = if rest.trim().is_empty() {
        serde_yaml::Value::Mapping(Default::default())
    } else {
        serde_yaml::from_str(rest).map_err(|e| e.to_string())?
    };
    Ok((tag, body))
}

/// A host table that answers the replayable capabilities from `exchanges`, in order.
pub fn host_table(exchanges: Vec<Exchange>) -> HostTable {
    let queue = Arc::new(Mutex::new(VecDeque::from(exchanges)));
    REPLAYABLE.iter().fold(
        HostTable::new(),
        |table, &(namespace, operation, request_type)| {
            let queue = queue.clone();
            table.answer(namespace, operation, move |payload| {
                let mut queue = queue.lock().unwrap_or_else(|p| p.into_inner());
                let next = queue.pop_front().ok_or_else(|| {
                    format!("session has no more exchanges for {request_type} {payload}")
                })?;
                if !matches(&next, request_type, payload) {
                    return Err(format!(
                        "session expected {} {}, the policy asked {request_type} {payload}",
                        next.request_type,
                        Value::Object(next.request.clone())
                    ));
                }
                next.response
            })
        },
    )
}

pub fn load_host_table(path: &Path) -> Result<HostTable, HostError> {
    load(path).map(host_table)
}

fn matches(exchange: &Exchange, request_type: &str, payload: &Value) -> bool {
    if exchange.request_type != request_type {
        return false;
    }
    let Some(call) = payload.as_object() else {
        return false;
    };
    let same = |key: &str| exchange.request.get(key) == call.get(key);
    let compatible = |key: &&str| match (exchange.request.get(*key), call.get(*key)) {
        (Some(recorded), Some(asked)) if !recorded.is_null() && !asked.is_null() => {
            recorded == asked
        }
        _ => true,
    };
    same("api_version") && same("kind") && OPTIONAL_FIELDS.iter().all(compatible)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const RECORDED: &str = r#"
- type: Exchange
  request: |
    !KubernetesListResourceAll
    api_version: v1
    kind: Namespace
    label_selector: null
    field_selector: null
    field_masks: null
  response:
    type: Success
    payload: '{"apiVersion":"v1","kind":"NamespaceList","items":[{"metadata":{"name":"a"}}]}'
- type: Exchange
  request:
    type: KubernetesListResourceAll
    api_version: serving.kserve.io/v1beta1
    kind: InferenceService
  response:
    type: Error
    message: forbidden
"#;

    fn ask(table: &HostTable, operation: &str, payload: Value) -> Result<Value, String> {
        let answer = table.lookup("kubernetes", operation).expect("replayable");
        answer(&payload).map(|bytes| serde_json::from_slice(&bytes).expect("an answer is JSON"))
    }

    #[test]
    fn parses_tagged_and_mapping_requests() {
        let exchanges = parse(RECORDED).unwrap();
        assert_eq!(exchanges.len(), 2);
        assert_eq!(exchanges[0].request_type, "KubernetesListResourceAll");
        assert_eq!(exchanges[0].request["kind"], "Namespace");
        assert_eq!(
            exchanges[1].request["api_version"],
            "serving.kserve.io/v1beta1"
        );
        assert_eq!(exchanges[1].response, Err("forbidden".to_owned()));
    }

    #[test]
    fn replays_in_order_and_checks_the_request() {
        let table = host_table(parse(RECORDED).unwrap());
        let first = ask(
            &table,
            "list_resources_all",
            json!({"api_version": "v1", "kind": "Namespace", "label_selector": null}),
        )
        .unwrap();
        assert_eq!(first["items"][0]["metadata"]["name"], "a");
        let second = ask(
            &table,
            "list_resources_all",
            json!({"api_version": "serving.kserve.io/v1beta1", "kind": "InferenceService"}),
        );
        assert_eq!(second, Err("forbidden".to_owned()));
        let exhausted = ask(&table, "list_resources_all", json!({"api_version": "v1"}));
        assert!(exhausted.unwrap_err().contains("no more exchanges"));
    }

    #[test]
    fn a_different_request_fails() {
        let table = host_table(parse(RECORDED).unwrap());
        let error = ask(
            &table,
            "list_resources_all",
            json!({"api_version": "v1", "kind": "Pod"}),
        )
        .unwrap_err();
        assert!(error.contains("session expected"), "{error}");
    }
}
