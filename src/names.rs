//! Container names: the patterns that find modelcars, and fresh names for
//! the containers this policy adds.

/// Kubernetes' limit for a container name (a DNS-1123 label).
pub const MAX_NAME_LEN: usize = 63;

/// `*` at the end of a pattern matches any suffix; otherwise names match exactly.
pub fn matches(pattern: &str, name: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => pattern == name,
    }
}

pub fn matches_any(patterns: &[String], name: &str) -> bool {
    patterns.iter().any(|p| matches(p, name))
}

pub fn is_dns1123_label(s: &str) -> bool {
    let b = s.as_bytes();
    let alnum = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    !b.is_empty()
        && b.len() <= MAX_NAME_LEN
        && b.first().is_some_and(alnum)
        && b.last().is_some_and(alnum)
        && b.iter().all(|c| alnum(c) || *c == b'-')
}

/// KServe names its pre-pull checks `modelcar-init`, `modelcar-init-1`, ...
pub fn is_kserve_init_name(name: &str) -> bool {
    match name.strip_prefix("modelcar-init") {
        Some("") => true,
        Some(rest) => rest
            .strip_prefix('-')
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|c| c.is_ascii_digit())),
        None => false,
    }
}

/// Hands out `base`, `base-1`, `base-2`, ... skipping names the pod already uses.
/// A list, not a hash set: pods hold tens of names, and a hash set would add
/// its hasher and its random seed to the module.
pub struct NameAllocator<'a> {
    base: &'a str,
    taken: Vec<&'a str>,
    next_suffix: usize,
}

impl<'a> NameAllocator<'a> {
    pub fn new(base: &'a str, taken: impl IntoIterator<Item = &'a str>) -> Self {
        NameAllocator {
            base,
            taken: taken.into_iter().collect(),
            next_suffix: 0,
        }
    }

    /// `None` once the names would no longer fit in a container name.
    pub fn next(&mut self) -> Option<String> {
        loop {
            let candidate = match self.next_suffix {
                0 => self.base.to_string(),
                n => format!("{}-{n}", self.base),
            };
            self.next_suffix += 1;
            if candidate.len() > MAX_NAME_LEN {
                return None;
            }
            // Suffixes only grow, so a candidate is never handed out twice.
            if !self.taken.contains(&candidate.as_str()) {
                return Some(candidate);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case::exact("modelcar", "modelcar", true)]
    #[case::exact_is_not_prefix("modelcar", "modelcar-1", false)]
    #[case::suffix_star("modelcar-*", "modelcar-1", true)]
    #[case::suffix_star_empty_suffix("modelcar-*", "modelcar-", true)]
    #[case::suffix_star_needs_prefix("modelcar-*", "modelcar", false)]
    #[case::unrelated("modelcar-*", "kserve-container", false)]
    fn pattern_matching(#[case] pattern: &str, #[case] name: &str, #[case] expected: bool) {
        assert_eq!(matches(pattern, name), expected);
    }

    #[rstest]
    #[case::plain("modelcar-init", true)]
    #[case::numbered("modelcar-init-10", true)]
    #[case::dash_only("modelcar-init-", false)]
    #[case::word_suffix("modelcar-init-x", false)]
    #[case::other("modelcar-prefetch", false)]
    fn kserve_init_names(#[case] name: &str, #[case] expected: bool) {
        assert_eq!(is_kserve_init_name(name), expected);
    }

    #[rstest]
    #[case::simple("modelcar-prefetch", true)]
    #[case::digits("0a9", true)]
    #[case::upper("Modelcar", false)]
    #[case::underscore("model_car", false)]
    #[case::leading_dash("-a", false)]
    #[case::too_long(&"a".repeat(64), false)]
    #[case::max_len(&"a".repeat(63), true)]
    fn dns_labels(#[case] name: &str, #[case] expected: bool) {
        assert_eq!(is_dns1123_label(name), expected);
    }

    #[test]
    fn allocator_skips_taken_names_and_numbers_further_ones() {
        let mut a = NameAllocator::new(
            "modelcar-prefetch",
            ["modelcar-prefetch", "modelcar-prefetch-2"],
        );
        assert_eq!(a.next().as_deref(), Some("modelcar-prefetch-1"));
        assert_eq!(a.next().as_deref(), Some("modelcar-prefetch-3"));
    }

    #[test]
    fn allocator_stops_before_exceeding_the_name_limit() {
        let base = "a".repeat(62);
        let mut a = NameAllocator::new(&base, [base.as_str()]);
        assert_eq!(a.next(), None);
    }
}
