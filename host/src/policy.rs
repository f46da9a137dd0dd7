use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Value, json};
use wapc::WapcHost;
use wasmtime_provider::{WasmtimeEngineProviderBuilder, WasmtimeEngineProviderPre};

use crate::host_table::{Records, callback};
use crate::module_file::resolve_default_module;
use crate::{Evaluation, HostCall, HostError, HostTable, SettingsVerdict, engine};

/// A loaded policy module with its own instance, answering host calls from a `HostTable`.
pub struct Policy {
    path: PathBuf,
    pre: WasmtimeEngineProviderPre,
    table: Arc<HostTable>,
    records: Arc<Records>,
    // Dropped after a failed call: a trap can leave the guest's memory half-updated,
    // so the next call gets a fresh instance (policy-server uses one per request anyway).
    instance: RefCell<Option<WapcHost>>,
}

impl Policy {
    /// Loads `policy.wasm` at the workspace root, or the module named by
    /// `MODELCAR_PREFETCH_WASM`. The default module must be newer than the policy sources.
    pub fn load_default() -> Result<Policy, HostError> {
        Self::with_host(HostTable::new())
    }

    /// `load_default` with host capabilities answered from `host`.
    pub fn with_host(host: HostTable) -> Result<Policy, HostError> {
        Self::load(resolve_default_module()?, host)
    }

    pub fn load(path: impl AsRef<Path>, host: HostTable) -> Result<Policy, HostError> {
        let path = path.as_ref().to_path_buf();
        let module = engine::compiled_module(&path)?;
        let pre = WasmtimeEngineProviderBuilder::new()
            .engine(engine::engine()?.clone())
            .module(module)
            .build_pre()
            .map_err(|e| HostError::Load {
                path: path.clone(),
                message: e.to_string(),
            })?;
        let policy = Policy {
            path,
            pre,
            table: Arc::new(host),
            records: Arc::new(Records::default()),
            instance: RefCell::new(None),
        };
        // Instantiate now so that a module that cannot start fails at load time.
        policy.ensure_instance()?;
        Ok(policy)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn protocol_version(&self) -> Result<String, HostError> {
        let operation = "protocol_version";
        let raw = self.call_raw(operation, b"")?;
        serde_json::from_slice(&raw).map_err(|e| protocol_error(operation, &e, &raw))
    }

    /// Like policy-server, a guest error (such as an unknown settings field refused while
    /// deserializing) is a refusal carrying the error text, not a host error.
    pub fn validate_settings(&self, settings: &Value) -> Result<SettingsVerdict, HostError> {
        let operation = "validate_settings";
        let payload = serde_json::to_vec(settings).map_err(|e| HostError::Input(e.to_string()))?;
        match self.call_raw(operation, &payload) {
            Ok(raw) => {
                serde_json::from_slice(&raw).map_err(|e| protocol_error(operation, &e, &raw))
            }
            Err(HostError::Guest { message, .. }) => Ok(SettingsVerdict {
                valid: false,
                message: Some(message),
            }),
            Err(other) => Err(other),
        }
    }

    /// Evaluates an AdmissionRequest (not a whole AdmissionReview) with `settings`.
    pub fn validate(&self, request: &Value, settings: &Value) -> Result<Evaluation, HostError> {
        let operation = "validate";
        let payload = serde_json::to_vec(&json!({"request": request, "settings": settings}))
            .map_err(|e| HostError::Input(e.to_string()))?;
        let raw = self.call_raw(operation, &payload)?;
        let response: Value =
            serde_json::from_slice(&raw).map_err(|e| protocol_error(operation, &e, &raw))?;
        let original = request.get("object").unwrap_or(&Value::Null);
        Evaluation::from_response(response, original).map_err(|message| HostError::Protocol {
            operation: operation.to_owned(),
            message,
        })
    }

    /// Calls a guest function with raw bytes; a guest error or trap is `HostError::Guest`.
    pub fn call_raw(&self, operation: &str, payload: &[u8]) -> Result<Vec<u8>, HostError> {
        self.ensure_instance()?;
        let mut slot = self.instance.borrow_mut();
        let result = match slot.as_ref() {
            Some(instance) => instance.call(operation, payload),
            None => return Err(self.load_error("no instance")),
        };
        result.map_err(|error| {
            *slot = None;
            HostError::Guest {
                operation: operation.to_owned(),
                message: guest_message(error),
            }
        })
    }

    pub fn host_calls(&self) -> Vec<HostCall> {
        self.records.calls()
    }

    pub fn logs(&self) -> Vec<Value> {
        self.records.logs()
    }

    /// Forgets recorded host calls and log lines (long benchmark runs).
    pub fn clear_records(&self) {
        self.records.clear();
    }

    fn ensure_instance(&self) -> Result<(), HostError> {
        let mut slot = self.instance.borrow_mut();
        if slot.is_none() {
            let provider = self
                .pre
                .rehydrate(None)
                .map_err(|e| self.load_error(&e.to_string()))?;
            let host_callback = callback(self.table.clone(), self.records.clone());
            let instance = WapcHost::new(Box::new(provider), Some(Box::new(host_callback)))
                .map_err(|e| self.load_error(&e.to_string()))?;
            *slot = Some(instance);
        }
        Ok(())
    }

    fn load_error(&self, message: &str) -> HostError {
        HostError::Load {
            path: self.path.clone(),
            message: message.to_owned(),
        }
    }
}

impl std::fmt::Debug for Policy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Policy")
            .field("path", &self.path)
            .field("host", &self.table)
            .finish_non_exhaustive()
    }
}

// waPC wraps the guest's own text in a prefix that says nothing to a test reader.
fn guest_message(error: wapc::errors::Error) -> String {
    match error {
        wapc::errors::Error::GuestCallFailure(message) => message,
        other => other.to_string(),
    }
}

fn protocol_error(operation: &str, error: &serde_json::Error, raw: &[u8]) -> HostError {
    HostError::Protocol {
        operation: operation.to_owned(),
        message: format!("{error}: {}", String::from_utf8_lossy(raw)),
    }
}
