//! Kubelet versions as nodes report them (`v1.30.1+k3s1`, `v1.31.0-eks-a737599`).

use std::fmt;

/// Major and minor version: all that decides whether a feature is there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct MinorVersion {
    pub major: u32,
    pub minor: u32,
}

impl MinorVersion {
    /// Accepts `1.29`, `v1.29.3` and vendor suffixes after the patch number.
    pub fn parse(s: &str) -> Option<MinorVersion> {
        let s = s.trim();
        let s = s.strip_prefix('v').unwrap_or(s);
        let mut parts = s.splitn(3, '.');
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next()?.parse().ok()?;
        if let Some(rest) = parts.next() {
            let patch_len = rest.bytes().take_while(u8::is_ascii_digit).count();
            let suffix = &rest[patch_len..];
            if patch_len == 0 || !(suffix.is_empty() || suffix.starts_with(['-', '+'])) {
                return None;
            }
        }
        Some(MinorVersion { major, minor })
    }
}

impl fmt::Display for MinorVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

#[cfg(test)]
mod tests {
    use super::MinorVersion;
    use rstest::rstest;

    #[rstest]
    #[case::plain("v1.29.3", Some((1, 29)))]
    #[case::k3s("v1.30.1+k3s1", Some((1, 30)))]
    #[case::eks("v1.31.0-eks-a737599", Some((1, 31)))]
    #[case::gke("v1.28.15-gke.1020000", Some((1, 28)))]
    #[case::rke2("v1.33.2+rke2r1", Some((1, 33)))]
    #[case::setting_style("1.29", Some((1, 29)))]
    #[case::no_patch_with_v("v1.30", Some((1, 30)))]
    #[case::empty("", None)]
    #[case::word("latest", None)]
    #[case::major_only("v1", None)]
    #[case::garbage_patch("v1.29.x", None)]
    #[case::garbage_minor("v1.x.3", None)]
    fn parses_real_kubelet_versions(#[case] s: &str, #[case] expected: Option<(u32, u32)>) {
        assert_eq!(MinorVersion::parse(s).map(|v| (v.major, v.minor)), expected);
    }

    #[test]
    fn orders_by_major_then_minor() {
        let v = |s| MinorVersion::parse(s).unwrap();
        assert!(v("v1.28.15") < v("1.29"));
        assert!(v("v1.30.0") > v("1.29"));
        assert!(v("v2.0.0") > v("1.99"));
    }
}
