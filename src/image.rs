//! Image references: where a model image comes from, and how the API server
//! would default its pull policy.

/// The image a KServe storage URI ships as a modelcar, if it is one.
/// `oci://` follows the cluster's `ociModelMode`, a modelcar by default;
/// `oci+native://` (image volume) and `oci+fetch://` (download) have no race.
pub fn from_storage_uri(uri: &str) -> Option<&str> {
    uri.strip_prefix("oci://")
        .or_else(|| uri.strip_prefix("oci+modelcar://"))
        .filter(|image| !image.is_empty())
}

/// Kubernetes' defaulting rule: `Always` for `:latest` or an image with
/// neither tag nor digest, `IfNotPresent` otherwise.
pub fn default_pull_policy(image: &str) -> &'static str {
    let (name, digest) = match image.split_once('@') {
        Some((name, digest)) => (name, Some(digest)),
        None => (image, None),
    };
    // A ':' before the last '/' is a registry port, not a tag.
    let last_component = name.rsplit('/').next().unwrap_or(name);
    let tag = last_component.split_once(':').map(|(_, tag)| tag);
    match (tag, digest) {
        (Some("latest"), _) | (None, None) => "Always",
        _ => "IfNotPresent",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case::oci("oci://quay.io/org/model:v1", Some("quay.io/org/model:v1"))]
    #[case::oci_modelcar("oci+modelcar://quay.io/org/model:v1", Some("quay.io/org/model:v1"))]
    #[case::port_and_digest(
        "oci://registry.local:5000/m@sha256:0123",
        Some("registry.local:5000/m@sha256:0123")
    )]
    #[case::oci_native("oci+native://quay.io/org/model:v1", None)]
    #[case::oci_fetch("oci+fetch://quay.io/org/model:v1", None)]
    #[case::s3("s3://bucket/model", None)]
    #[case::hf("hf://meta-llama/Llama-3", None)]
    #[case::empty_image("oci://", None)]
    #[case::upper_case_scheme("OCI://quay.io/org/model", None)]
    fn storage_uris(#[case] uri: &str, #[case] expected: Option<&str>) {
        assert_eq!(from_storage_uri(uri), expected);
    }

    #[rstest]
    #[case::tagged("quay.io/org/model:v1", "IfNotPresent")]
    #[case::latest("quay.io/org/model:latest", "Always")]
    #[case::untagged("quay.io/org/model", "Always")]
    #[case::docker_hub_short("busybox", "Always")]
    #[case::port_no_tag("registry.local:5000/org/model", "Always")]
    #[case::port_and_tag("registry.local:5000/org/model:v2", "IfNotPresent")]
    #[case::digest_only("quay.io/org/model@sha256:abc", "IfNotPresent")]
    #[case::port_and_digest("registry.local:5000/model@sha256:abc", "IfNotPresent")]
    #[case::latest_with_digest("quay.io/org/model:latest@sha256:abc", "Always")]
    #[case::tag_with_digest("quay.io/org/model:v1@sha256:abc", "IfNotPresent")]
    fn pull_policy_defaults(#[case] image: &str, #[case] expected: &str) {
        assert_eq!(default_pull_policy(image), expected);
    }
}
