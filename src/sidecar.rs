//! A modelcar turned into a native sidecar: an init container with
//! `restartPolicy: Always`, which the kubelet starts (and, with a startup
//! probe, waits for) before it starts the model server.

use serde_json::{Map, Value};

use crate::model_link;
use crate::settings::Settings;

/// The modelcar as a native sidecar, and a log line when it gets no probe.
pub fn from_modelcar(
    settings: &Settings,
    mut modelcar: Map<String, Value>,
) -> (Value, Option<String>) {
    modelcar.insert("restartPolicy".into(), Value::String("Always".into()));
    let mut note = None;
    if let Some(probe) = &settings.startup_probe {
        modelcar.insert("startupProbe".into(), probe.clone());
    } else if !modelcar.contains_key("startupProbe") {
        match model_link::link_path(&modelcar) {
            Some(path) => {
                modelcar.insert("startupProbe".into(), model_link::startup_probe(&path));
            }
            None => {
                let name = modelcar
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or("modelcar");
                note = Some(format!(
                    "native sidecar {name} gets no startup probe: its command does not show where it \
                     links the model; set the startupProbe setting to wait for it"
                ));
            }
        }
    }
    (Value::Object(modelcar), note)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn kserve_modelcar() -> Map<String, Value> {
        json!({
            "name": "modelcar",
            "image": "quay.io/m:1",
            "args": ["sh", "-c", "ln -sf /proc/$$$$/root/models /mnt/models && sleep infinity"],
            "resources": {"limits": {"cpu": "10m", "memory": "15Mi"}, "requests": {"cpu": "10m", "memory": "15Mi"}},
            "securityContext": {"runAsUser": 1010},
            "volumeMounts": [{"name": "kserve-provision-location", "mountPath": "/mnt"}],
            "terminationMessagePolicy": "FallbackToLogsOnError"
        })
        .as_object()
        .unwrap()
        .clone()
    }

    #[test]
    fn keeps_everything_and_adds_restart_policy_and_probe() {
        let (sidecar, note) = from_modelcar(&Settings::default(), kserve_modelcar());
        let mut expected = Value::Object(kserve_modelcar());
        expected["restartPolicy"] = json!("Always");
        expected["startupProbe"] = model_link::startup_probe("/mnt/models");
        assert_eq!(sidecar, expected);
        assert_eq!(note, None);
    }

    #[test]
    fn probe_setting_overrides() {
        let probe = json!({"exec": {"command": ["true"]}});
        let settings = Settings::from_value(&json!({"startupProbe": probe}));
        let (sidecar, _) = from_modelcar(&settings, kserve_modelcar());
        assert_eq!(sidecar["startupProbe"], probe);
    }

    #[test]
    fn own_probe_is_kept() {
        let mut modelcar = kserve_modelcar();
        modelcar.insert("startupProbe".into(), json!({"tcpSocket": {"port": 1}}));
        let (sidecar, note) = from_modelcar(&Settings::default(), modelcar);
        assert_eq!(sidecar["startupProbe"], json!({"tcpSocket": {"port": 1}}));
        assert_eq!(note, None);
    }

    #[test]
    fn unknown_command_gets_no_probe_and_a_reason() {
        let mut modelcar = kserve_modelcar();
        modelcar.insert("args".into(), json!(["serve-model"]));
        let (sidecar, note) = from_modelcar(&Settings::default(), modelcar);
        assert!(sidecar.get("startupProbe").is_none());
        assert!(
            note.unwrap()
                .contains("native sidecar modelcar gets no startup probe")
        );
    }
}
