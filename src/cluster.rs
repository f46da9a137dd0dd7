//! Whether the cluster runs native sidecars: every node's kubelet must be new
//! enough, because an old kubelet ignores `restartPolicy: Always` on an init
//! container and the pod then hangs in Init on the modelcar's `sleep infinity`.

use serde::Serialize;

use crate::scan::{Flow, Scan, Scanner};

use crate::kubelet::MinorVersion;

/// What the policy asks of the cluster, behind a trait so that the mutation
/// stays a pure function and tests answer without a host.
pub trait Cluster {
    /// `(node name, kubelet version)` for every node that `label_selector`
    /// selects (every node without one).
    fn kubelet_versions(
        &self,
        label_selector: Option<&str>,
    ) -> Result<Vec<(String, String)>, String>;
}

/// Why native sidecars are not used.
#[derive(Debug, PartialEq, Eq)]
pub enum Unsupported {
    /// A node's kubelet is too old: the cluster does not support them.
    OldKubelet(String),
    /// The policy cannot tell whether the cluster supports them.
    Unknown(String),
}

/// `Ok` when native sidecars work on every node `label_selector` selects
/// (the nodes the pods can land on), else why not.
pub fn native_sidecars_supported(
    min: MinorVersion,
    label_selector: Option<&str>,
    cluster: &dyn Cluster,
) -> Result<(), Unsupported> {
    let nodes = cluster
        .kubelet_versions(label_selector)
        .map_err(|e| Unsupported::Unknown(format!("the node list could not be read ({e})")))?;
    if nodes.is_empty() {
        return Err(Unsupported::Unknown(match label_selector {
            Some(selector) => format!("no node matches nodeLabelSelector {selector:?}"),
            None => "the node list is empty".into(),
        }));
    }
    for (node, version) in &nodes {
        match MinorVersion::parse(version) {
            None => {
                return Err(Unsupported::Unknown(format!(
                    "node {node} reports kubelet version {version:?}, which cannot be read"
                )));
            }
            Some(v) if v < min => {
                return Err(Unsupported::OldKubelet(format!(
                    "node {node} runs kubelet {version}, older than {min}"
                )));
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// The cluster as Kubewarden's host shows it (`kubernetes/list_resources_all`).
pub struct HostCluster;

#[derive(Serialize)]
struct ListAllResourcesRequest<'a> {
    api_version: &'a str,
    kind: &'a str,
    label_selector: Option<&'a str>,
    field_selector: Option<&'a str>,
    /// Only the fields read here travel from policy-server's cache.
    field_masks: [&'a str; 2],
}

/// The Nodes `label_selector` selects, reduced to their names and kubelet versions.
fn node_list_request(label_selector: Option<&str>) -> ListAllResourcesRequest<'_> {
    ListAllResourcesRequest {
        api_version: "v1",
        kind: "Node",
        label_selector,
        field_selector: None,
        field_masks: ["metadata.name", "status.nodeInfo.kubeletVersion"],
    }
}

impl Cluster for HostCluster {
    fn kubelet_versions(
        &self,
        label_selector: Option<&str>,
    ) -> Result<Vec<(String, String)>, String> {
        let request = node_list_request(label_selector);
        let payload = serde_json::to_vec(&request).map_err(|e| e.to_string())?;
        let response = host_call(&payload)?;
        parse_node_list(&response)
    }
}

/// Names and kubelet versions from a `NodeList`. Walked with the scanner, never
/// built: without field masks a GPU node is ~10 KB, mostly `status.images`.
pub(crate) fn parse_node_list(bytes: &[u8]) -> Result<Vec<(String, String)>, String> {
    let mut nodes = Vec::new();
    let mut s = Scanner::new(bytes);
    s.object(|s, key| {
        if key.is("items") {
            s.array(|s| {
                nodes.push(node(s)?);
                Ok(())
            })?;
        } else {
            s.value()?;
        }
        Ok(Flow::Continue)
    })
    .and_then(|_| s.end())
    .map_err(|e| format!("unexpected answer: {e}"))?;
    Ok(nodes)
}

/// `{"metadata": {"name": ...}, "status": {"nodeInfo": {"kubeletVersion": ...}}}`
fn node(s: &mut Scanner) -> Scan<(String, String)> {
    let (mut name, mut version) = (String::new(), String::new());
    s.object(|s, key| {
        if key.is("metadata") {
            string_at(s, &["name"], &mut name)?;
        } else if key.is("status") {
            string_at(s, &["nodeInfo", "kubeletVersion"], &mut version)?;
        } else {
            s.value()?;
        }
        Ok(Flow::Continue)
    })?;
    Ok((name, version))
}

/// Reads the string at `path` in the object ahead into `into`, skipping the rest.
fn string_at(s: &mut Scanner, path: &[&str], into: &mut String) -> Scan<()> {
    let Some((first, rest)) = path.split_first() else {
        *into = s.text()?.into_owned();
        return Ok(());
    };
    s.object(|s, key| {
        if key.is(first) {
            string_at(s, rest, into)?;
        } else {
            s.value()?;
        }
        Ok(Flow::Continue)
    })
    .map(|_| ())
}

#[cfg(target_arch = "wasm32")]
fn host_call(payload: &[u8]) -> Result<Vec<u8>, String> {
    wapc_guest::host_call("kubewarden", "kubernetes", "list_resources_all", payload)
        .map_err(|e| host_error(&e.to_string()))
}

/// The first line of a host error: the rest may be a stack trace (policy-evaluator
/// appends one under RUST_BACKTRACE), which would reach kubectl in a warning.
fn host_error(error: &str) -> String {
    error
        .lines()
        .next()
        .unwrap_or_default()
        .trim_end()
        .to_string()
}

#[cfg(not(target_arch = "wasm32"))]
fn host_call(_payload: &[u8]) -> Result<Vec<u8>, String> {
    Err(host_error(
        "host capabilities exist only inside a policy host",
    ))
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use rstest::rstest;

    /// A cluster with fixed nodes, or a failing one.
    pub struct FakeCluster(pub Result<Vec<(String, String)>, String>);

    impl FakeCluster {
        pub fn nodes(versions: &[&str]) -> FakeCluster {
            FakeCluster(Ok(versions
                .iter()
                .enumerate()
                .map(|(i, v)| (format!("node-{i}"), v.to_string()))
                .collect()))
        }
    }

    impl Cluster for FakeCluster {
        fn kubelet_versions(&self, _: Option<&str>) -> Result<Vec<(String, String)>, String> {
            self.0.clone()
        }
    }

    fn min() -> MinorVersion {
        MinorVersion::parse("1.29").unwrap()
    }

    #[rstest]
    #[case::all_nodes_new(FakeCluster::nodes(&["v1.29.3", "v1.30.1+k3s1", "v1.31.0-eks-a737599", "v1.33.2+rke2r1"]), Ok(()))]
    #[case::one_old_node(FakeCluster::nodes(&["v1.30.1", "v1.28.15-gke.1020000"]), Err(Unsupported::OldKubelet("node node-1 runs kubelet v1.28.15-gke.1020000, older than 1.29".into())))]
    #[case::unparsable(FakeCluster::nodes(&["v1.30.1", ""]), Err(Unsupported::Unknown("node node-1 reports kubelet version \"\", which cannot be read".into())))]
    #[case::empty(FakeCluster::nodes(&[]), Err(Unsupported::Unknown("the node list is empty".into())))]
    #[case::error(FakeCluster(Err("forbidden".into())), Err(Unsupported::Unknown("the node list could not be read (forbidden)".into())))]
    fn decides_from_every_node(
        #[case] cluster: FakeCluster,
        #[case] expected: Result<(), Unsupported>,
    ) {
        assert_eq!(native_sidecars_supported(min(), None, &cluster), expected);
    }

    #[test]
    fn no_selected_node_names_the_selector() {
        let got = native_sidecars_supported(min(), Some("gpu=true"), &FakeCluster::nodes(&[]));
        let expected = "no node matches nodeLabelSelector \"gpu=true\"";
        assert_eq!(got, Err(Unsupported::Unknown(expected.into())));
    }

    #[test]
    fn host_errors_keep_their_first_line() {
        let error = "Host error: nodes is forbidden: User \"x\" cannot list\n\nStack backtrace:\n   0: anyhow::error";
        assert_eq!(
            host_error(error),
            "Host error: nodes is forbidden: User \"x\" cannot list"
        );
    }

    #[test]
    fn request_asks_only_for_the_kubelet_version() {
        assert_eq!(
            serde_json::to_value(node_list_request(None)).unwrap(),
            serde_json::json!({"api_version": "v1", "kind": "Node", "label_selector": null, "field_selector": null,
                               "field_masks": ["metadata.name", "status.nodeInfo.kubeletVersion"]})
        );
        let selected = serde_json::to_value(node_list_request(Some("gpu=true"))).unwrap();
        assert_eq!(selected["label_selector"], "gpu=true");
    }

    #[test]
    fn reads_a_masked_node_list() {
        let body = br#"{"apiVersion":"v1","kind":"NodeList","metadata":{},"items":[
            {"metadata":{"name":"a"},"status":{"nodeInfo":{"kubeletVersion":"v1.30.2"}}},
            {"metadata":{"name":"b"}}]}"#;
        assert_eq!(
            parse_node_list(body).unwrap(),
            [
                ("a".to_string(), "v1.30.2".to_string()),
                ("b".to_string(), String::new())
            ]
        );
        assert!(
            parse_node_list(b"nope")
                .unwrap_err()
                .starts_with("unexpected answer")
        );
    }
}
