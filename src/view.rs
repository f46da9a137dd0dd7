//! The few pod fields the decision needs, and where the lists the policy
//! edits sit in the text, read in one pass of the scanner.
//!
//! Everything else is passed over without being built; strings are borrowed
//! unless JSON escapes force a copy. The pass is strict, and a field of the
//! wrong type is reported by its path, as a user would look for it.

use std::borrow::Cow;

use crate::pod_text::Spans;
use crate::scan::{Flow, Scan, Scanner};
use crate::security::PodSecurity;

#[derive(Debug, Default)]
pub struct PodView<'a> {
    /// `metadata.annotations` in document order.
    annotations: Vec<(Cow<'a, str>, Cow<'a, str>)>,
    containers: Vec<ContainerView<'a>>,
    init_containers: Vec<ContainerView<'a>>,
    ephemeral_containers: Vec<ContainerView<'a>>,
    /// `spec.securityContext`, as far as an added container cares.
    pub security: PodSecurity,
    /// For `PodText`, which writes the changes.
    pub spans: Spans,
}

#[derive(Debug, Default)]
pub struct ContainerView<'a> {
    pub name: Option<Cow<'a, str>>,
    pub image: Option<Cow<'a, str>>,
}

impl<'a> PodView<'a> {
    /// Reads the view from a pod's JSON text alone.
    #[cfg(test)]
    pub fn from_json(json: &'a str) -> Result<PodView<'a>, String> {
        let mut s = Scanner::new(json.as_bytes());
        let view = PodView::read(&mut s)?;
        match s.end() {
            Ok(()) => Ok(view),
            Err(e) => Err(format!("the Pod could not be read: {e}")),
        }
    }

    /// Reads the view from the value ahead of `s` (the request's `object`, as
    /// the envelope is walked); spans are counted from where the value starts.
    /// On `Err`, where `s` stopped is unspecified.
    pub fn read(s: &mut Scanner<'a>) -> Result<PodView<'a>, String> {
        if s.peek() != Some(b'{') {
            return Err("the object is not a Pod: it is not a JSON object".into());
        }
        let origin = s.position();
        let mut reader = Reader {
            view: PodView::default(),
            malformed: None,
        };
        match reader.pod(s) {
            Ok(()) => {
                reader.view.spans.shift(origin);
                Ok(reader.view)
            }
            Err(e) => Err(reader
                .malformed
                .unwrap_or_else(|| format!("the Pod could not be read: {e}"))),
        }
    }

    /// The view of a pod built as a value; the text is leaked, as tests do not mind.
    #[cfg(test)]
    pub fn from_value(value: &serde_json::Value) -> Result<PodView<'static>, String> {
        PodView::from_json(Box::leak(value.to_string().into_boxed_str()))
    }

    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_ref())
    }

    pub fn containers(&self) -> &[ContainerView<'a>] {
        &self.containers
    }

    pub fn init_containers(&self) -> &[ContainerView<'a>] {
        &self.init_containers
    }

    pub fn ephemeral_containers(&self) -> &[ContainerView<'a>] {
        &self.ephemeral_containers
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

/// The pass that fills a view; `null` is the same as a missing field.
struct Reader<'a> {
    view: PodView<'a>,
    /// What the user should hear when the pass stopped at a field of the wrong type.
    malformed: Option<String>,
}

impl<'a> Reader<'a> {
    fn pod(&mut self, s: &mut Scanner<'a>) -> Scan<()> {
        fields(s, &["metadata", "spec"], |s, field| {
            if field == 0 {
                let span = s.value_at(|s| self.metadata(s))?;
                if s.source()[span.0] == b'{' {
                    self.view.spans.metadata = Some(span);
                }
                return Ok(());
            }
            let span = s.value_at(|s| self.spec(s))?;
            if s.source()[span.0] == b'{' {
                self.view.spans.spec = Some(span);
            }
            Ok(())
        })
    }

    fn metadata(&mut self, s: &mut Scanner<'a>) -> Scan<()> {
        if !self.opens(s, b'{', || "metadata".into(), "an object")? {
            return Ok(());
        }
        fields(s, &["annotations"], |s, _| {
            self.view.spans.annotations = Some(s.value_at(|s| self.annotations(s))?);
            Ok(())
        })
    }

    fn annotations(&mut self, s: &mut Scanner<'a>) -> Scan<()> {
        let path = || "metadata.annotations".into();
        if !self.opens(s, b'{', path, "a map of strings")? {
            return Ok(());
        }
        s.object(|s, key| {
            let key = key
                .value()
                .ok_or_else(|| s.error("a string of valid UTF-8"))?;
            if s.peek() != Some(b'"') {
                return self.malformed(s, format!("metadata.annotations.{key}"), "a string");
            }
            let value = s.text()?;
            self.view.annotations.push((key, value));
            Ok(Flow::Continue)
        })
        .map(|_| ())
    }

    fn spec(&mut self, s: &mut Scanner<'a>) -> Scan<()> {
        if !self.opens(s, b'{', || "spec".into(), "an object")? {
            return Ok(());
        }
        const FIELDS: [&str; 4] = [
            "containers",
            "initContainers",
            "ephemeralContainers",
            "securityContext",
        ];
        fields(s, &FIELDS, |s, field| {
            let list = FIELDS[field];
            if field == 3 {
                return self.security(s);
            }
            let mut items = Vec::new();
            if field == 2 {
                self.view.ephemeral_containers = self.containers(s, list, &mut items)?;
                return Ok(());
            }
            let mut containers = Vec::new();
            let span = s.value_at(|s| {
                containers = self.containers(s, list, &mut items)?;
                Ok(())
            })?;
            if field == 1 {
                self.view.init_containers = containers;
                self.view.spans.init_containers = Some(span);
                self.view.spans.init_container_items = items;
            } else {
                self.view.containers = containers;
                if s.source()[span.0] != b'n' {
                    self.view.spans.containers = Some(span);
                    self.view.spans.container_items = items;
                }
            }
            Ok(())
        })
    }

    /// A list of containers; `spans` gets each item's byte range.
    fn containers(
        &mut self,
        s: &mut Scanner<'a>,
        list: &str,
        spans: &mut Vec<(usize, usize)>,
    ) -> Scan<Vec<ContainerView<'a>>> {
        let mut containers = Vec::new();
        if !self.opens(s, b'[', || format!("spec.{list}"), "a list")? {
            return Ok(containers);
        }
        s.array(|s| {
            let index = containers.len();
            let path = || format!("spec.{list}[{index}]");
            if s.peek() != Some(b'{') {
                return self.malformed(s, path(), "an object");
            }
            let mut container = ContainerView::default();
            const FIELDS: [&str; 2] = ["name", "image"];
            let span = s.value_at(|s| {
                fields(s, &FIELDS, |s, field| {
                    match s.peek() {
                        Some(b'"') => {
                            let value = Some(s.text()?);
                            if field == 0 {
                                container.name = value;
                            } else {
                                container.image = value;
                            }
                        }
                        Some(b'n') => s.value().map(|_| ())?,
                        _ => {
                            let path = format!("{}.{}", path(), FIELDS[field]);
                            return self.malformed(s, path, "a string");
                        }
                    }
                    Ok(())
                })
            })?;
            spans.push(span);
            containers.push(container);
            Ok(())
        })?;
        Ok(containers)
    }

    fn security(&mut self, s: &mut Scanner<'a>) -> Scan<()> {
        const PATH: &str = "spec.securityContext";
        if !self.opens(s, b'{', || PATH.into(), "an object")? {
            return Ok(());
        }
        fields(
            s,
            &["runAsNonRoot", "runAsUser", "seccompProfile"],
            |s, field| {
                let value = s.value()?;
                let set = value != b"null";
                let security = &mut self.view.security;
                match field {
                    0 if set && value != b"true" && value != b"false" => {
                        return self.malformed(s, format!("{PATH}.runAsNonRoot"), "a boolean");
                    }
                    0 => security.run_as_non_root = value == b"true",
                    1 => security.run_as_user = set,
                    _ => security.seccomp_profile = set,
                }
                Ok(())
            },
        )
    }

    /// Whether the value ahead opens with `open`; a `null` is consumed and is
    /// not, anything else is malformed.
    fn opens(
        &mut self,
        s: &mut Scanner<'a>,
        open: u8,
        path: impl FnOnce() -> String,
        expected: &'static str,
    ) -> Scan<bool> {
        match s.peek() {
            Some(b) if b == open => Ok(true),
            Some(b'n') => s.value().map(|_| false),
            _ => self.malformed(s, path(), expected),
        }
    }

    fn malformed<T>(&mut self, s: &Scanner, path: String, expected: &'static str) -> Scan<T> {
        self.malformed = Some(format!(
            "the Pod's {path} is malformed: expected {expected}"
        ));
        Err(s.error(expected))
    }
}

/// Walks an object, handing `read` each field that `names` names (its index
/// there) and skipping the others. A named field is taken once, as serde's
/// derived readers take them.
fn fields<'a>(
    s: &mut Scanner<'a>,
    names: &[&str],
    mut read: impl FnMut(&mut Scanner<'a>, usize) -> Scan<()>,
) -> Scan<()> {
    let mut seen = 0u8;
    s.object(|s, key| {
        match names.iter().position(|name| key.is(name)) {
            Some(field) if seen & 1 << field != 0 => return Err(s.error("each field once")),
            Some(field) => {
                seen |= 1 << field;
                read(s, field)?;
            }
            None => {
                s.value()?;
            }
        }
        Ok(Flow::Continue)
    })
    .map(|_| ())
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
        assert!(matches!(view.containers()[0].image, Some(Cow::Borrowed(_))));
        let (k, v) = &view.annotations[0];
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

    #[rstest]
    #[case::spec(r#"{"spec":{},"spec":{}}"#)]
    #[case::image(r#"{"spec":{"containers":[{"image":"a","image":"b"}]}}"#)]
    fn a_field_given_twice_is_refused(#[case] text: &str) {
        let e = PodView::from_json(text).unwrap_err();
        assert!(e.contains("expected each field once"), "{e}");
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
