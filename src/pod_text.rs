//! Edits to the pod's own JSON text.
//!
//! The policy changes two lists and nothing else, so it writes its changes into
//! the request's text instead of rebuilding the pod: every byte outside those
//! lists reaches the host exactly as the API server sent it (unknown fields,
//! `null`s, number spellings), and a mutation costs a scan of the pod rather
//! than a parse into a tree and a serialization of it.

use std::borrow::Cow;

use crate::json_text::{self, Fields};

/// Where the parts the policy edits sit in the pod's text.
pub struct PodText<'a> {
    text: &'a str,
    spec: &'a str,
    containers: Option<&'a str>,
    container_items: Vec<&'a str>,
    init_containers: Option<&'a str>,
    init_container_items: Vec<&'a str>,
    metadata: Option<&'a str>,
    annotations: Option<&'a str>,
}

/// What a mutation writes into the pod's text; everything else stays as sent.
#[derive(Debug, Default, PartialEq)]
pub struct Edits<'a> {
    /// `spec.containers` as it should be, item by item, when it changes.
    pub containers: Option<Vec<Cow<'a, str>>>,
    /// Replaced items of `spec.initContainers`: (index, the item's JSON text).
    pub init_containers: Vec<(usize, String)>,
    /// Items appended to `spec.initContainers` (JSON objects).
    pub appended: Vec<String>,
    /// An entry added to `metadata.annotations`: (key, value), both plain text.
    pub annotation: Option<(&'static str, String)>,
}

impl Edits<'_> {
    pub fn is_empty(&self) -> bool {
        self.containers.is_none()
            && self.init_containers.is_empty()
            && self.appended.is_empty()
            && self.annotation.is_none()
    }
}

/// Byte ranges of the parts `PodText` keeps, found as the view is read.
#[derive(Debug, Default)]
pub struct Spans {
    /// `None` when missing or not an object.
    pub spec: Option<(usize, usize)>,
    /// `None` when missing or `null`.
    pub containers: Option<(usize, usize)>,
    pub container_items: Vec<(usize, usize)>,
    /// `null` included: a `null` list is replaced, where a missing one is added.
    pub init_containers: Option<(usize, usize)>,
    pub init_container_items: Vec<(usize, usize)>,
    /// `None` when missing or not an object.
    pub metadata: Option<(usize, usize)>,
    /// `metadata.annotations`, `null` included.
    pub annotations: Option<(usize, usize)>,
}

impl Spans {
    /// Counts the ranges from `origin` of the text they were found in.
    pub fn shift(&mut self, origin: usize) {
        self.spec
            .iter_mut()
            .chain(&mut self.containers)
            .chain(&mut self.container_items)
            .chain(&mut self.init_containers)
            .chain(&mut self.init_container_items)
            .chain(&mut self.metadata)
            .chain(&mut self.annotations)
            .for_each(|span| {
                *span = (span.0.saturating_sub(origin), span.1.saturating_sub(origin));
            });
    }
}

impl<'a> PodText<'a> {
    /// The pod's text with the parts found in it (`PodView::read`).
    pub fn new(text: &'a str, spans: &Spans) -> Result<PodText<'a>, String> {
        let part = |span: (usize, usize)| text.get(span.0..span.1).unwrap_or_default();
        let spec = part(spans.spec.ok_or("the Pod has no spec")?);
        if !spec.starts_with('{') {
            return Err("the Pod's spec is not an object".into());
        }
        let init_containers = spans.init_containers.map(part);
        if init_containers.is_some_and(|i| !i.starts_with('[') && !json_text::is_null(i)) {
            return Err("the Pod's spec.initContainers is not a list".into());
        }
        let items = |spans: &[(usize, usize)]| spans.iter().copied().map(part).collect();
        Ok(PodText {
            text,
            spec,
            containers: spans.containers.map(part),
            container_items: items(&spans.container_items),
            init_containers,
            init_container_items: items(&spans.init_container_items),
            metadata: spans.metadata.map(part),
            annotations: spans.annotations.map(part),
        })
    }

    /// `spec.containers[index]`, field by field.
    pub fn container(&self, index: usize) -> Option<Fields<'a>> {
        Fields::parse(self.container_items.get(index)?)
    }

    /// `spec.containers[index]` as its text.
    pub fn container_text(&self, index: usize) -> Option<&'a str> {
        self.container_items.get(index).copied()
    }

    /// `spec.initContainers[index]`, field by field.
    pub fn init_container(&self, index: usize) -> Option<Fields<'a>> {
        Fields::parse(self.init_container_items.get(index)?)
    }

    /// The pod with `edits` written into its text.
    pub fn edited(&self, edits: &Edits) -> String {
        let added: usize = edits.appended.iter().map(String::len).sum();
        let mut out = String::with_capacity(self.text.len() + added + 256);
        let mut replacements: Vec<(usize, usize, String)> = Vec::with_capacity(4);
        if let (Some(list), Some(items)) = (self.containers, &edits.containers) {
            let start = self.offset(list);
            replacements.push((start, start + list.len(), format!("[{}]", items.join(","))));
        }
        for (index, item) in &edits.init_containers {
            if let Some(old) = self.init_container_items.get(*index) {
                let start = self.offset(old);
                replacements.push((start, start + old.len(), item.clone()));
            }
        }
        if !edits.appended.is_empty() {
            let items = edits.appended.join(",");
            replacements.push(match self.init_containers {
                Some(list) if list.starts_with('[') => self.append_to(list, ']', items),
                Some(null) => {
                    let start = self.offset(null);
                    (start, start + null.len(), format!("[{items}]"))
                }
                None => self.append_to(self.spec, '}', format!("\"initContainers\":[{items}]")),
            });
        }
        if let Some((key, value)) = &edits.annotation {
            let entry = format!("{}:{}", json_text::quoted(key), json_text::quoted(value));
            let edit = match (self.annotations, self.metadata) {
                (Some(map), _) if map.starts_with('{') => Some(self.prepend_to(map, entry)),
                (Some(null), _) => {
                    let start = self.offset(null);
                    Some((start, start + null.len(), format!("{{{entry}}}")))
                }
                (None, Some(metadata)) => {
                    Some(self.prepend_to(metadata, format!("\"annotations\":{{{entry}}}")))
                }
                (None, None) => None,
            };
            replacements.extend(edit);
        }
        // The parts may come in any order in the text; there are a handful.
        for i in 1..replacements.len() {
            let mut j = i;
            while j > 0 && replacements[j - 1].0 > replacements[j].0 {
                replacements.swap(j - 1, j);
                j -= 1;
            }
        }
        let mut at = 0;
        for (start, end, replacement) in replacements {
            out.push_str(&self.text[at..start]);
            out.push_str(&replacement);
            at = end;
        }
        out.push_str(&self.text[at..]);
        out
    }

    /// An insertion of `items` before the closing `close` of `part`, after a comma
    /// when `part` holds anything.
    fn append_to(&self, part: &str, close: char, items: String) -> (usize, usize, String) {
        let end = self.offset(part) + part.len() - close.len_utf8();
        let empty = part[1..part.len() - 1].trim().is_empty();
        (end, end, if empty { items } else { format!(",{items}") })
    }

    /// An insertion of `entry` right after the opening brace of the object `part`.
    fn prepend_to(&self, part: &str, entry: String) -> (usize, usize, String) {
        let start = self.offset(part) + 1;
        let empty = part[1..part.len() - 1].trim().is_empty();
        (
            start,
            start,
            if empty { entry } else { format!("{entry},") },
        )
    }

    /// Where `part`, a slice borrowed from the pod's text, starts in it.
    fn offset(&self, part: &str) -> usize {
        part.as_ptr() as usize - self.text.as_ptr() as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::view::PodView;
    use rstest::rstest;
    use serde_json::{Value, json};

    fn parse(text: &str) -> Result<PodText<'_>, String> {
        PodText::new(text, &PodView::from_json(text)?.spans)
    }

    fn edit(text: &str, removed: &[usize], appended: &[Value]) -> String {
        let pod = parse(text).unwrap();
        let containers = (!removed.is_empty()).then(|| {
            (0..pod.container_items.len())
                .filter(|i| !removed.contains(i))
                .map(|i| Cow::Borrowed(pod.container_items[i]))
                .collect()
        });
        pod.edited(&Edits {
            containers,
            appended: appended.iter().map(Value::to_string).collect(),
            ..Edits::default()
        })
    }

    #[rstest]
    #[case::no_list(
        r#"{"spec":{"containers":[{"name":"a"}]}}"#,
        r#"{"spec":{"containers":[{"name":"a"}],"initContainers":[{"n":1}]}}"#
    )]
    #[case::empty_spec(r#"{"spec":{}}"#, r#"{"spec":{"initContainers":[{"n":1}]}}"#)]
    #[case::empty_spec_with_space(r#"{"spec":{ }}"#, r#"{"spec":{ "initContainers":[{"n":1}]}}"#)]
    #[case::empty_list(
        r#"{"spec":{"initContainers":[ ]}}"#,
        r#"{"spec":{"initContainers":[ {"n":1}]}}"#
    )]
    #[case::null_list(
        r#"{"spec":{"initContainers":null}}"#,
        r#"{"spec":{"initContainers":[{"n":1}]}}"#
    )]
    #[case::after_existing(
        r#"{"spec":{"initContainers":[{"name":"istio-init"}] ,"x":1}}"#,
        r#"{"spec":{"initContainers":[{"name":"istio-init"},{"n":1}] ,"x":1}}"#
    )]
    #[case::pretty_printed(
        "{\n  \"spec\": {\n    \"initContainers\": [\n      {}\n    ]\n  }\n}",
        "{\n  \"spec\": {\n    \"initContainers\": [\n      {}\n    ,{\"n\":1}]\n  }\n}"
    )]
    fn appends_init_containers_in_place(#[case] text: &str, #[case] expected: &str) {
        let out = edit(text, &[], &[json!({"n": 1})]);
        assert_eq!(out, expected);
        serde_json::from_str::<Value>(&out).unwrap();
    }

    #[test]
    fn every_other_byte_survives() {
        let text = r#"{"metadata":{"creationTimestamp":null,"x":1.0000000000000002e-300},"spec":{"z":"\u00e9","containers":[{"name":"s"},  {"name":"modelcar"}],"w":[1,2]},"status":{}}"#;
        let out = edit(
            text,
            &[1],
            &[json!({"name": "modelcar", "restartPolicy": "Always"})],
        );
        assert_eq!(
            out,
            r#"{"metadata":{"creationTimestamp":null,"x":1.0000000000000002e-300},"spec":{"z":"\u00e9","containers":[{"name":"s"}],"w":[1,2],"initContainers":[{"name":"modelcar","restartPolicy":"Always"}]},"status":{}}"#
        );
    }

    #[rstest]
    #[case::first(&[0], r#"[{"name":"b"},{"name":"c"}]"#)]
    #[case::middle(&[1], r#"[{"name":"a"},{"name":"c"}]"#)]
    #[case::two(&[0, 2], r#"[{"name":"b"}]"#)]
    fn removes_containers(#[case] removed: &[usize], #[case] expected: &str) {
        let text = r#"{"spec":{"containers":[{"name":"a"}, {"name":"b"}, {"name":"c"}]}}"#;
        let out: Value = serde_json::from_str(&edit(text, removed, &[])).unwrap();
        assert_eq!(
            out["spec"]["containers"],
            serde_json::from_str::<Value>(expected).unwrap()
        );
    }

    fn annotated(text: &str) -> String {
        parse(text).unwrap().edited(&Edits {
            annotation: Some(("k", "v".into())),
            ..Edits::default()
        })
    }

    #[rstest]
    #[case::to_the_map(
        r#"{"metadata":{"annotations":{"a":"1"}},"spec":{}}"#,
        r#"{"metadata":{"annotations":{"k":"v","a":"1"}},"spec":{}}"#
    )]
    #[case::to_an_empty_map(
        r#"{"metadata":{"annotations":{ }},"spec":{}}"#,
        r#"{"metadata":{"annotations":{"k":"v" }},"spec":{}}"#
    )]
    #[case::null_map(
        r#"{"metadata":{"annotations":null},"spec":{}}"#,
        r#"{"metadata":{"annotations":{"k":"v"}},"spec":{}}"#
    )]
    #[case::no_map(
        r#"{"metadata":{"name":"p"},"spec":{}}"#,
        r#"{"metadata":{"annotations":{"k":"v"},"name":"p"},"spec":{}}"#
    )]
    #[case::empty_metadata(
        r#"{"spec":{},"metadata":{}}"#,
        r#"{"spec":{},"metadata":{"annotations":{"k":"v"}}}"#
    )]
    #[case::no_metadata(r#"{"spec":{}}"#, r#"{"spec":{}}"#)]
    fn adds_an_annotation_in_place(#[case] text: &str, #[case] expected: &str) {
        assert_eq!(annotated(text), expected);
    }

    #[test]
    fn every_edit_at_once_in_text_order() {
        let text = r#"{"spec":{"initContainers":[{"name":"i"}, {"name":"j"}],"containers":[{"name":"s"},{"name":"m"}]},"metadata":{"annotations":{}}}"#;
        let pod = parse(text).unwrap();
        let out = pod.edited(&Edits {
            containers: Some(vec![
                Cow::Owned(r#"{"name":"m","x":1}"#.into()),
                Cow::Borrowed(r#"{"name":"s"}"#),
            ]),
            init_containers: vec![(1, r#"{"name":"j","u":2}"#.into())],
            appended: vec![r#"{"name":"p"}"#.into()],
            annotation: Some(("k", "s".into())),
        });
        assert_eq!(
            out,
            r#"{"spec":{"initContainers":[{"name":"i"}, {"name":"j","u":2},{"name":"p"}],"containers":[{"name":"m","x":1},{"name":"s"}]},"metadata":{"annotations":{"k":"s"}}}"#
        );
    }

    #[test]
    fn reads_a_container() {
        let pod = parse(r#"{"spec":{"containers":[{"name":"a","image":"i"}]}}"#).unwrap();
        assert_eq!(
            pod.container(0).unwrap().read::<String>("image").as_deref(),
            Some("i")
        );
        assert!(pod.container(1).is_none());
    }

    #[rstest]
    #[case::no_spec(r#"{"metadata":{}}"#, "the Pod has no spec")]
    #[case::null_spec(r#"{"spec":null}"#, "the Pod has no spec")]
    fn unreadable_pods(#[case] text: &str, #[case] message: &str) {
        let e = parse(text).err().unwrap();
        assert!(e.contains(message), "{e}");
    }
}
