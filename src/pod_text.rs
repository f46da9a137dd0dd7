//! Edits to the pod's own JSON text.
//!
//! The policy changes two lists and nothing else, so it writes its changes into
//! the request's text instead of rebuilding the pod: every byte outside those
//! lists reaches the host exactly as the API server sent it (unknown fields,
//! `null`s, number spellings), and a mutation costs a scan of the pod rather
//! than a parse into a tree and a serialization of it.

use crate::json_text::{self, Fields};
use crate::scan::{Flow, Scan, Scanner};

/// Where the lists the policy edits sit in the pod's text.
pub struct PodText<'a> {
    text: &'a str,
    spec: &'a str,
    containers: Option<&'a str>,
    container_items: Vec<&'a str>,
    init_containers: Option<&'a str>,
}

/// Byte ranges of the parts `PodText` keeps.
#[derive(Default)]
struct Spans {
    spec: Option<(usize, usize)>,
    /// `None` when missing or `null`.
    containers: Option<(usize, usize)>,
    container_items: Vec<(usize, usize)>,
    /// `null` included: a `null` list is replaced, where a missing one is added.
    init_containers: Option<(usize, usize)>,
}

impl Spans {
    /// The spec's fields, when it is an object; anything else is skipped.
    fn read_spec(&mut self, s: &mut Scanner) -> Scan<()> {
        if s.peek() != Some(b'{') {
            return s.value().map(|_| ());
        }
        s.object(|s, key| {
            if key.is("containers") {
                if s.peek() == Some(b'n') {
                    s.value()?;
                } else {
                    let mut items = Vec::new();
                    let list = s.value_at(|s| {
                        s.array(|s| {
                            items.push(s.value_at(|s| s.value().map(|_| ()))?);
                            Ok(())
                        })
                    })?;
                    self.containers = Some(list);
                    self.container_items = items;
                }
            } else if key.is("initContainers") {
                self.init_containers = Some(s.value_at(|s| s.value().map(|_| ()))?);
            } else {
                s.value()?;
            }
            Ok(Flow::Continue)
        })
        .map(|_| ())
    }
}

impl<'a> PodText<'a> {
    /// Finds the lists in one scan of the pod's text.
    pub fn parse(text: &'a str) -> Result<PodText<'a>, String> {
        let mut spans = Spans::default();
        let mut s = Scanner::new(text.as_bytes());
        s.object(|s, key| {
            if key.is("spec") {
                if spans.spec.is_some() {
                    return Err(s.error("a single `spec`"));
                }
                spans.spec = Some(s.value_at(|s| spans.read_spec(s))?);
            } else {
                s.value()?;
            }
            Ok(Flow::Continue)
        })
        .and_then(|_| s.end())
        .map_err(|e| format!("the Pod could not be read: {e}"))?;
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
            container_items: spans.container_items.into_iter().map(part).collect(),
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
    use rstest::rstest;
    use serde_json::{Value, json};

    fn edit(text: &str, removed: &[usize], appended: &[Value]) -> String {
        let appended: Vec<String> = appended.iter().map(Value::to_string).collect();
        PodText::parse(text).unwrap().edited(removed, &appended)
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
        let pod = PodText::parse(r#"{"spec":{"containers":[{"name":"a","image":"i"}]}}"#).unwrap();
        assert_eq!(
            pod.container(0).unwrap().read::<String>("image").as_deref(),
            Some("i")
        );
        assert!(pod.container(1).is_none());
    }

    #[rstest]
    #[case::no_spec(r#"{"metadata":{}}"#, "the Pod has no spec")]
    #[case::spec_not_object(r#"{"spec":[]}"#, "the Pod's spec is not an object")]
    #[case::init_not_list(
        r#"{"spec":{"initContainers":{}}}"#,
        "spec.initContainers is not a list"
    )]
    #[case::duplicate_spec(r#"{"spec":{},"spec":{}}"#, "expected a single `spec`")]
    #[case::containers_not_list(r#"{"spec":{"containers":7}}"#, "the Pod could not be read")]
    fn unreadable_pods(#[case] text: &str, #[case] message: &str) {
        let e = PodText::parse(text).err().unwrap();
        assert!(e.contains(message), "{e}");
    }
}
