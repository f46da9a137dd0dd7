//! A modelcar turned into a native sidecar: an init container with
//! `restartPolicy: Always`, which the kubelet starts (and, with a startup
//! probe, waits for) before it starts the model server.

use crate::json_text::Fields;
use crate::model_link;
use crate::settings::Settings;

/// The modelcar as a native sidecar (JSON text), and a log line when it gets
/// no probe. Every field it had is written back as it was.
pub fn from_modelcar(settings: &Settings, modelcar: &Fields) -> (String, Option<String>) {
    let mut set = vec![("restartPolicy", r#""Always""#.to_string())];
    let mut note = None;
    if let Some(probe) = &settings.startup_probe {
        set.push(("startupProbe", probe.text().to_string()));
    } else if modelcar.raw("startupProbe").is_none() {
        match model_link::link_path(modelcar) {
            Some(path) => set.push(("startupProbe", model_link::startup_probe(&path))),
            None => {
                let name = modelcar
                    .read::<String>("name")
                    .unwrap_or_else(|| "modelcar".into());
                note = Some(format!(
                    "native sidecar {name} gets no startup probe: its command does not show where it \
                     links the model; set the startupProbe setting to wait for it"
                ));
            }
        }
    }
    (modelcar.with(&set), note)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Map, Value, json};

    /// `from_modelcar` over values: the modelcar as JSON text in, the sidecar parsed out.
    fn sidecar(settings: &Settings, modelcar: Map<String, Value>) -> (Value, Option<String>) {
        let text = Value::Object(modelcar).to_string();
        let (out, note) = from_modelcar(settings, &Fields::parse(&text).unwrap());
        (serde_json::from_str(&out).unwrap(), note)
    }

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
        let (sidecar, note) = sidecar(&Settings::default(), kserve_modelcar());
        let mut expected = Value::Object(kserve_modelcar());
        expected["restartPolicy"] = json!("Always");
        expected["startupProbe"] =
            serde_json::from_str(&model_link::startup_probe("/mnt/models")).unwrap();
        assert_eq!(sidecar, expected);
        assert_eq!(note, None);
    }

    #[test]
    fn probe_setting_overrides() {
        let probe = json!({"exec": {"command": ["true"]}});
        let settings = Settings::from_value(&json!({"startupProbe": probe}));
        let (sidecar, _) = sidecar(&settings, kserve_modelcar());
        assert_eq!(sidecar["startupProbe"], probe);
    }

    #[test]
    fn own_probe_is_kept() {
        let mut modelcar = kserve_modelcar();
        modelcar.insert("startupProbe".into(), json!({"tcpSocket": {"port": 1}}));
        let (sidecar, note) = sidecar(&Settings::default(), modelcar);
        assert_eq!(sidecar["startupProbe"], json!({"tcpSocket": {"port": 1}}));
        assert_eq!(note, None);
    }

    #[test]
    fn unknown_command_gets_no_probe_and_a_reason() {
        let mut modelcar = kserve_modelcar();
        modelcar.insert("args".into(), json!(["serve-model"]));
        let (sidecar, note) = sidecar(&Settings::default(), modelcar);
        assert!(sidecar.get("startupProbe").is_none());
        assert!(
            note.unwrap()
                .contains("native sidecar modelcar gets no startup probe")
        );
    }

    #[test]
    fn values_are_written_back_byte_for_byte() {
        let text = r#"{"name":"modelcar","x-weight":2.2250738585072014e-308,"restartPolicy":"Never","args":["sh","-c","ln -s /proc/$$$$/root/models /mnt/models && sleep infinity"]}"#;
        let (out, _) = from_modelcar(&Settings::default(), &Fields::parse(text).unwrap());
        assert!(
            out.starts_with(r#"{"name":"modelcar","x-weight":2.2250738585072014e-308,"args":"#),
            "{out}"
        );
        assert!(
            out.contains(r#""restartPolicy":"Always","startupProbe":"#),
            "{out}"
        );
        assert!(!out.contains("Never"));
    }
}
