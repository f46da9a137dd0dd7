//! Warnings to policy-server's log, through Kubewarden's `kubewarden/tracing/log`
//! host call: the event is a JSON object whose `level` and `message` the host
//! logs, and whose other fields it keeps as the line's data.
//!
//! The SDK's slog drain sends the same call, but it builds each event as a
//! `serde_json::Value` map through slog's serializer, whose default methods
//! bring float and 128-bit formatting into the module: 38 KB of a 281 KB
//! module (README "Performance"), for the one kind of line this policy logs.

use crate::json_text;

/// Logs `message` at warning level.
pub fn warning(message: &str) {
    send(&event("warning", message));
}

fn event(level: &str, message: &str) -> String {
    format!(
        r#"{{"level":{},"message":{},"policy":"modelcar-prefetch"}}"#,
        json_text::quoted(level),
        json_text::quoted(message)
    )
}

#[cfg(target_arch = "wasm32")]
fn send(event: &str) {
    // A host that cannot log must not cost the pod its admission.
    let _ = wapc_guest::host_call("kubewarden", "tracing", "log", event.as_bytes());
}

#[cfg(not(target_arch = "wasm32"))]
fn send(event: &str) {
    eprintln!("{event}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    #[test]
    fn the_event_is_what_the_sdk_drain_sends() {
        let event: Value = serde_json::from_str(&event("warning", "image \"m\" is\nnot")).unwrap();
        assert_eq!(
            event,
            json!({"level": "warning", "message": "image \"m\" is\nnot", "policy": "modelcar-prefetch"})
        );
    }
}
