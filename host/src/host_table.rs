use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::Value;

/// Every Kubewarden capability call uses this waPC binding.
pub const KUBEWARDEN_BINDING: &str = "kubewarden";

type Answer = dyn Fn(&Value) -> Result<Vec<u8>, String> + Send + Sync;

/// Answers the policy's host capability calls (`kubewarden/<namespace>/<operation>`).
/// A call nobody answers fails, as on a policy server where the capability is not allowed.
#[derive(Clone, Default)]
pub struct HostTable {
    answers: HashMap<(String, String), Arc<Answer>>,
}

impl HostTable {
    pub fn new() -> Self {
        Self::default()
    }

    /// Answers `kubewarden/<namespace>/<operation>` with `answer(payload)`; an `Err` fails the call.
    pub fn answer(
        self,
        namespace: &str,
        operation: &str,
        answer: impl Fn(&Value) -> Result<Value, String> + Send + Sync + 'static,
    ) -> Self {
        self.answer_bytes(namespace, operation, move |payload| {
            answer(payload).and_then(|value| serde_json::to_vec(&value).map_err(|e| e.to_string()))
        })
    }

    /// Like `answer`, with the answer's bytes ready: a benchmark serving a 50 MB Node list
    /// must not time the host serializing it.
    pub fn answer_bytes(
        mut self,
        namespace: &str,
        operation: &str,
        answer: impl Fn(&Value) -> Result<Vec<u8>, String> + Send + Sync + 'static,
    ) -> Self {
        self.answers.insert(
            (namespace.to_owned(), operation.to_owned()),
            Arc::new(answer),
        );
        self
    }

    pub(crate) fn lookup(&self, namespace: &str, operation: &str) -> Option<&Arc<Answer>> {
        self.answers
            .get(&(namespace.to_owned(), operation.to_owned()))
    }
}

impl std::fmt::Debug for HostTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut keys: Vec<_> = self.answers.keys().collect();
        keys.sort();
        f.debug_struct("HostTable").field("answers", &keys).finish()
    }
}

/// A capability call the policy made (log lines are kept apart, see `Policy::logs`).
#[derive(Debug, Clone, PartialEq)]
pub struct HostCall {
    pub binding: String,
    pub namespace: String,
    pub operation: String,
    pub payload: Value,
}

#[derive(Default)]
pub(crate) struct Records {
    calls: Mutex<Vec<HostCall>>,
    logs: Mutex<Vec<Value>>,
}

impl Records {
    pub(crate) fn calls(&self) -> Vec<HostCall> {
        lock(&self.calls).clone()
    }

    pub(crate) fn logs(&self) -> Vec<Value> {
        lock(&self.logs).clone()
    }

    pub(crate) fn clear(&self) {
        lock(&self.calls).clear();
        lock(&self.logs).clear();
    }
}

// Records stay usable after a panicking answer closure poisoned the lock.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

type CallbackResult = Result<Vec<u8>, Box<dyn std::error::Error + Send + Sync>>;

/// The waPC host callback: records the call and answers it from `table`.
pub(crate) fn callback(
    table: Arc<HostTable>,
    records: Arc<Records>,
) -> impl Fn(u64, &str, &str, &str, &[u8]) -> CallbackResult + Send + Sync + 'static {
    move |_id, binding, namespace, operation, payload| {
        let payload = parse_payload(payload);
        if binding == KUBEWARDEN_BINDING && namespace == "tracing" && operation == "log" {
            lock(&records.logs).push(payload);
            return Ok(Vec::new());
        }
        lock(&records.calls).push(HostCall {
            binding: binding.to_owned(),
            namespace: namespace.to_owned(),
            operation: operation.to_owned(),
            payload: payload.clone(),
        });
        let answer = (binding == KUBEWARDEN_BINDING)
            .then(|| table.lookup(namespace, operation))
            .flatten()
            .ok_or_else(|| {
                format!("host capability {binding}/{namespace}/{operation} is not available")
            })?;
        Ok(answer(&payload)?)
    }
}

// Capability payloads are JSON; anything else is kept readable as a string.
fn parse_payload(payload: &[u8]) -> Value {
    serde_json::from_slice(payload)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(payload).into_owned()))
}
