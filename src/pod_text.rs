//! Edits to the pod's own JSON text.
//!
//! The policy changes two lists and nothing else, so it writes its changes into
//! the request's text instead of rebuilding the pod: every byte outside those
//! lists reaches the host exactly as the API server sent it (unknown fields,
//! `null`s, number spellings), and a mutation costs a scan of the pod rather
//! than a parse into a tree and a serialization of it.

use crate::json_text::{self, Fields};

/// Where the lists the policy edits sit in the pod's text.
pub struct PodText<'a> {
    text: &'a str,
    spec: &'a str,
    containers: Option<&'a str>,
    container_items: Vec<&'a str>,
    init_containers: Option<&'a str>,
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
}

impl Spans {
    /// Counts the ranges from `origin` of the text they were found in.
    pub fn shift(&mut self, origin: usize) {
        self.spec
            .iter_mut()
            .chain(&mut self.containers)
            .chain(&mut self.container_items)
            .chain(&mut self.init_containers)
            .for_each(|span| {
                *span = (span.0.saturating_sub(origin), span.1.saturating_sub(origin));
            });
    }
}

impl<'a> PodText<'a> {
    /// The pod's text with the lists found in it (`PodView::from_json`).
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
        Ok(PodText {
            text,
            spec,
            containers: spans.containers.map(part),
            container_items: spans.container_items.iter().copied().map(part).collect(),
            init_containers,
        })
    }

    /// `spec.containers[index]`, field by field.
    pub fn container(&self, index: usize) -> Option<Fields<'a>> {
        Fields::parse(self.container_items.get(index)?)
    }

    /// The pod with the containers at `removed` left out of `spec.containers`
    /// and `appended` (JSON objects) added at the end of `spec.initContainers`.
    pub fn edited(&self, removed: &[usize], appended: &[String]) -> String {
        let mut out = String::with_capacity(
            self.text.len() + appended.iter().map(String::len).sum::<usize>() + 32,
        );
        let mut edits: Vec<(usize, usize, String)> = Vec::with_capacity(2);
        if let (Some(containers), false) = (self.containers, removed.is_empty()) {
            let kept: Vec<&str> = (0..self.container_items.len())
                .filter(|i| !removed.contains(i))
                .map(|i| self.container_items[i])
                .collect();
            let start = self.offset(containers);
            edits.push((
                start,
                start + containers.len(),
                format!("[{}]", kept.join(",")),
            ));
        }
        if !appended.is_empty() {
            let items = appended.join(",");
            edits.push(match self.init_containers {
                Some(list) if list.starts_with('[') => {
                    let end = self.offset(list) + list.len() - 1;
                    let empty = list[1..list.len() - 1].trim().is_empty();
                    (end, end, if empty { items } else { format!(",{items}") })
                }
                Some(null) => {
                    let start = self.offset(null);
                    (start, start + null.len(), format!("[{items}]"))
                }
                None => {
                    let end = self.offset(self.spec) + self.spec.len() - 1;
                    let empty = self.spec[1..self.spec.len() - 1].trim().is_empty();
                    let comma = if empty { "" } else { "," };
                    (end, end, format!("{comma}\"initContainers\":[{items}]"))
                }
            });
        }
        // The containers list may come after the init containers in the text.
        if edits.len() == 2 && edits[0].0 > edits[1].0 {
            edits.swap(0, 1);
        }
        let mut at = 0;
        for (start, end, replacement) in edits {
            out.push_str(&self.text[at..start]);
            out.push_str(&replacement);
            at = end;
        }
        out.push_str(&self.text[at..]);
        out
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
        let appended: Vec<String> = appended.iter().map(Value::to_string).collect();
        parse(text).unwrap().edited(removed, &appended)
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
