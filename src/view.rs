//! A read-only view of the few pod fields the decision needs.
//!
//! Deserialized straight from the request bytes, it skips everything else
//! without building it, so a pod that needs nothing costs little more than a
//! scan of its JSON. Strings are borrowed unless JSON escapes force a copy.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};

use crate::json_text::{self, Fields};

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct PodView<'a> {
    #[serde(borrow)]
    pub metadata: Option<MetadataView<'a>>,
    #[serde(borrow)]
    pub spec: Option<SpecView<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct MetadataView<'a> {
    #[serde(borrow)]
    pub annotations: Option<Annotations<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct SpecView<'a> {
    #[serde(borrow)]
    pub containers: Option<Vec<ContainerView<'a>>>,
    #[serde(borrow)]
    pub init_containers: Option<Vec<ContainerView<'a>>>,
    #[serde(borrow)]
    pub ephemeral_containers: Option<Vec<ContainerView<'a>>>,
    pub security_context: Option<SecurityView>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ContainerView<'a> {
    #[serde(borrow)]
    pub name: Option<Str<'a>>,
    #[serde(borrow)]
    pub image: Option<Str<'a>>,
}

/// What an added container inherits from the pod's securityContext.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct SecurityView {
    pub run_as_non_root: Option<bool>,
    /// Set (not null); the value does not matter here.
    pub run_as_user: Option<IgnoredAny>,
    /// Set (not null); its content does not matter here.
    pub seccomp_profile: Option<IgnoredAny>,
}

/// Annotation keys and values in document order.
#[derive(Debug, Default)]
pub struct Annotations<'a>(pub Vec<(Cow<'a, str>, Cow<'a, str>)>);

impl<'a> PodView<'a> {
    /// Reads the view from the pod's JSON text; the error names the offending field.
    pub fn from_json(json: &'a str) -> Result<PodView<'a>, String> {
        json_text::parse(json).map_err(|e| explain(json, &e))
    }

    #[cfg(test)]
    pub fn from_value(value: &'a serde_json::Value) -> Result<PodView<'a>, String> {
        PodView::deserialize(value).map_err(|e| explain(&value.to_string(), &e))
    }

    pub fn annotation(&self, key: &str) -> Option<&str> {
        let annotations = self.metadata.as_ref()?.annotations.as_ref()?;
        annotations
            .0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_ref())
    }

    pub fn containers(&self) -> &[ContainerView<'a>] {
        self.spec
            .as_ref()
            .and_then(|s| s.containers.as_deref())
            .unwrap_or_default()
    }

    pub fn init_containers(&self) -> &[ContainerView<'a>] {
        self.spec
            .as_ref()
            .and_then(|s| s.init_containers.as_deref())
            .unwrap_or_default()
    }

    pub fn ephemeral_containers(&self) -> &[ContainerView<'a>] {
        self.spec
            .as_ref()
            .and_then(|s| s.ephemeral_containers.as_deref())
            .unwrap_or_default()
    }

    /// Every container name in the pod: names must be unique across all three lists.
    pub fn container_names(&self) -> impl Iterator<Item = &str> {
        self.containers()
            .iter()
            .chain(self.init_containers())
            .chain(self.ephemeral_containers())
            .filter_map(|c| c.name.as_deref())
    }
}

/// Why a pod does not fit the view, naming the field: serde's own error
/// names only the type it expected.
fn explain(pod: &str, error: &serde_json::Error) -> String {
    let Some(pod) = Fields::parse(pod) else {
        return if pod.starts_with('{') {
            format!("the object is not a Pod: {error}")
        } else {
            "the object is not a Pod: it is not a JSON object".into()
        };
    };
    let found = malformed_metadata(pod.raw("metadata")).or_else(|| malformed_spec(pod.raw("spec")));
    match found {
        Some((path, expected)) => format!("the Pod's {path} is malformed: expected {expected}"),
        None => format!("the object is not a Pod: {error}"),
    }
}

type Malformed = Option<(String, &'static str)>;

fn present(v: Option<&str>) -> Option<&str> {
    v.filter(|v| !json_text::is_null(v))
}

fn malformed_metadata(metadata: Option<&str>) -> Malformed {
    let metadata = present(metadata)?;
    let Some(metadata) = Fields::parse(metadata) else {
        return Some(("metadata".into(), "an object"));
    };
    let annotations = present(metadata.raw("annotations"))?;
    let Some(annotations) = Fields::parse(annotations) else {
        return Some(("metadata.annotations".into(), "a map of strings"));
    };
    annotations
        .iter()
        .find(|(_, v)| !json_text::is_string(v))
        .map(|(k, _)| (format!("metadata.annotations.{k}"), "a string"))
}

fn malformed_spec(spec: Option<&str>) -> Malformed {
    let spec = present(spec)?;
    let Some(spec) = Fields::parse(spec) else {
        return Some(("spec".into(), "an object"));
    };
    if let Some(found) = malformed_security("spec.securityContext", spec.raw("securityContext")) {
        return Some(found);
    }
    ["containers", "initContainers", "ephemeralContainers"]
        .iter()
        .find_map(|list| malformed_containers(list, spec.raw(list)))
}

fn malformed_containers(list: &str, containers: Option<&str>) -> Malformed {
    let containers = present(containers)?;
    let Ok(containers) = json_text::items(containers) else {
        return Some((format!("spec.{list}"), "a list"));
    };
    containers.iter().enumerate().find_map(|(i, c)| {
        let Some(c) = Fields::parse(c) else {
            return Some((format!("spec.{list}[{i}]"), "an object"));
        };
        ["name", "image"]
            .iter()
            .find(|f| present(c.raw(f)).is_some_and(|v| !json_text::is_string(v)))
            .map(|f| (format!("spec.{list}[{i}].{f}"), "a string"))
    })
}

fn malformed_security(path: &str, sc: Option<&str>) -> Malformed {
    let sc = present(sc)?;
    let Some(sc) = Fields::parse(sc) else {
        return Some((path.into(), "an object"));
    };
    present(sc.raw("runAsNonRoot"))
        .filter(|v| !json_text::is_bool(v))
        .map(|_| (format!("{path}.runAsNonRoot"), "a boolean"))
}

impl<'de: 'a, 'a> Deserialize<'de> for Annotations<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Entries;
        impl<'de> Visitor<'de> for Entries {
            type Value = Annotations<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map of strings to strings")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
                let mut entries = Vec::new();
                while let Some((k, v)) = map.next_entry::<Str, Str>()? {
                    entries.push((k.0, v.0));
                }
                Ok(Annotations(entries))
            }
        }
        deserializer.deserialize_map(Entries)
    }
}

/// A string that borrows from the input whenever it can (serde's own
/// `Option<Cow<str>>` always copies).
#[derive(Debug, PartialEq, Eq)]
pub struct Str<'a>(pub Cow<'a, str>);

impl std::ops::Deref for Str<'_> {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Str<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Inner<'a>(#[serde(borrow)] Cow<'a, str>);
        Inner::deserialize(deserializer).map(|i| Str(i.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;
    use serde_json::{Value, json};

    #[test]
    fn reads_names_images_and_annotations() {
        let pod = json!({
            "metadata": {"annotations": {"a": "1", "b": "2"}, "labels": {"x": "y"}},
            "spec": {
                "containers": [{"name": "c", "image": "i", "ports": []}],
                "initContainers": [{"name": "ic", "image": "ii"}],
                "ephemeralContainers": [{"name": "debug"}],
                "volumes": []
            }
        });
        let text = pod.to_string();
        for view in [
            PodView::from_value(&pod).unwrap(),
            PodView::from_json(&text).unwrap(),
        ] {
            assert_eq!(view.annotation("b"), Some("2"));
            assert_eq!(view.annotation("z"), None);
            assert_eq!(view.containers()[0].image.as_deref(), Some("i"));
            assert_eq!(view.init_containers()[0].image.as_deref(), Some("ii"));
            assert_eq!(
                view.container_names().collect::<Vec<_>>(),
                ["c", "ic", "debug"]
            );
        }
    }

    #[test]
    fn strings_without_escapes_are_borrowed() {
        let text = r#"{"metadata":{"annotations":{"k":"v"}},"spec":{"containers":[{"name":"n","image":"i"}]}}"#;
        let view = PodView::from_json(text).unwrap();
        assert!(matches!(
            view.containers()[0].image,
            Some(Str(Cow::Borrowed(_)))
        ));
        let (k, v) = &view
            .metadata
            .as_ref()
            .unwrap()
            .annotations
            .as_ref()
            .unwrap()
            .0[0];
        assert!(matches!((k, v), (Cow::Borrowed(_), Cow::Borrowed(_))));
    }

    #[test]
    fn escaped_strings_are_decoded() {
        let text = r#"{"spec":{"containers":[{"name":"model\u0063ar","image":"a\/b"}]}}"#;
        let view = PodView::from_json(text).unwrap();
        assert_eq!(view.containers()[0].name.as_deref(), Some("modelcar"));
        assert_eq!(view.containers()[0].image.as_deref(), Some("a/b"));
    }

    #[test]
    fn missing_and_null_sections_are_empty() {
        let pod = json!({"metadata": {"annotations": null}, "spec": {"containers": null}});
        let view = PodView::from_value(&pod).unwrap();
        assert!(view.containers().is_empty() && view.annotation("a").is_none());
        assert!(
            PodView::from_value(&json!({}))
                .unwrap()
                .containers()
                .is_empty()
        );
    }

    #[rstest]
    #[case::containers_not_array(json!({"spec": {"containers": {"name": "x"}}}), "the Pod's spec.containers is malformed")]
    #[case::container_not_object(json!({"spec": {"containers": ["modelcar"]}}), "the Pod's spec.containers[0] is malformed")]
    #[case::image_not_string(json!({"spec": {"containers": [{"name": "m", "image": 7}]}}), "the Pod's spec.containers[0].image is malformed")]
    #[case::annotations_not_map(json!({"metadata": {"annotations": ["a"]}}), "the Pod's metadata.annotations is malformed")]
    #[case::annotation_not_string(json!({"metadata": {"annotations": {"a": 1}}}), "the Pod's metadata.annotations")]
    #[case::spec_not_object(json!({"spec": 3}), "the Pod's spec is malformed")]
    #[case::not_an_object(json!("pod"), "the object is not a Pod")]
    #[case::pod_run_as_non_root_not_bool(json!({"spec": {"securityContext": {"runAsNonRoot": "yes"}}}), "the Pod's spec.securityContext.runAsNonRoot is malformed")]
    fn malformed_pods_are_described(#[case] pod: Value, #[case] message: &str) {
        let from_value = PodView::from_value(&pod).unwrap_err();
        assert!(from_value.contains(message), "{from_value}");
        let text = pod.to_string();
        let from_json = PodView::from_json(&text).unwrap_err();
        assert!(
            from_json.starts_with(message.split(" is malformed").next().unwrap()),
            "{from_json}"
        );
    }

    /// The API server may send indented JSON: the explanation does not depend on spacing.
    #[test]
    fn malformed_pretty_printed_pods_are_described() {
        let text = "{\n  \"spec\" : {\n    \"containers\" : [ { \"name\" : \"m\" , \"image\" : 7 } ]\n  }\n}";
        assert_eq!(
            PodView::from_json(text).unwrap_err(),
            "the Pod's spec.containers[0].image is malformed: expected a string"
        );
    }
}
