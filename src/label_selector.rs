//! Label selectors as the API server reads them (`kubectl get nodes -l`):
//! checked when the settings are, so that a typo is refused up front instead
//! of failing every Node list at admission time.

/// Whether `selector` parses as a Kubernetes label selector; empty selects everything.
pub fn is_label_selector(selector: &str) -> bool {
    selector.trim().is_empty()
        || requirements(selector).is_some_and(|r| r.iter().all(|r| requirement(r)))
}

/// The requirements, split at the commas outside parentheses.
fn requirements(selector: &str) -> Option<Vec<&str>> {
    let (mut parts, mut depth, mut start) = (Vec::new(), 0u8, 0);
    for (i, c) in selector.char_indices() {
        match c {
            '(' if depth == 0 => depth = 1,
            ')' if depth == 1 => depth = 0,
            '(' | ')' => return None,
            ',' if depth == 0 => {
                parts.push(&selector[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    (depth == 0).then(|| {
        parts.push(&selector[start..]);
        parts
    })
}

fn requirement(text: &str) -> bool {
    let text = text.trim();
    if let Some(key) = text.strip_prefix('!') {
        return is_key(key.trim());
    }
    if let Some(open) = text.find('(') {
        let (head, list) = text.split_at(open);
        let mut words = head.split_whitespace();
        let (Some(key), Some(op), None) = (words.next(), words.next(), words.next()) else {
            return false;
        };
        let Some(values) = list.strip_prefix('(').and_then(|l| l.strip_suffix(')')) else {
            return false;
        };
        return is_key(key)
            && matches!(op, "in" | "notin")
            && values.split(',').all(|v| is_value(v.trim()));
    }
    for op in ["!=", "==", "=", ">", "<"] {
        if let Some((key, value)) = text.split_once(op) {
            let value = value.trim();
            let numeric = !matches!(op, ">" | "<") || value.parse::<i64>().is_ok();
            return is_key(key.trim()) && is_value(value) && numeric;
        }
    }
    is_key(text)
}

/// `[prefix/]name`: a DNS subdomain prefix and a name of at most 63 characters.
fn is_key(key: &str) -> bool {
    let (prefix, name) = match key.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    let prefix_ok = prefix.is_none_or(|p| {
        !p.is_empty()
            && p.len() <= 253
            && p.split('.').all(|part| {
                let b = part.as_bytes();
                let alnum = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
                !b.is_empty()
                    && b.first().is_some_and(alnum)
                    && b.last().is_some_and(alnum)
                    && b.iter().all(|c| alnum(c) || *c == b'-')
            })
    });
    prefix_ok && !name.is_empty() && is_value(name)
}

/// A label value: empty, or at most 63 of `[A-Za-z0-9_.-]`, alphanumeric at both ends.
fn is_value(value: &str) -> bool {
    let b = value.as_bytes();
    let alnum = |c: &u8| c.is_ascii_alphanumeric();
    b.is_empty()
        || (b.len() <= 63
            && b.first().is_some_and(alnum)
            && b.last().is_some_and(alnum)
            && b.iter()
                .all(|c| alnum(c) || matches!(c, b'-' | b'_' | b'.')))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case::empty("", true)]
    #[case::equality("nvidia.com/gpu.present=true", true)]
    #[case::double_equals("pool == gpu", true)]
    #[case::not_equal("node.kubernetes.io/instance-type!=m5.large", true)]
    #[case::exists("nvidia.com/gpu.product", true)]
    #[case::not_exists("!node-role.kubernetes.io/control-plane", true)]
    #[case::set_based("pool in (gpu-a100, gpu-h100),zone notin (eu-1)", true)]
    #[case::several("a=b,c!=d,!e", true)]
    #[case::empty_value("a=", true)]
    #[case::greater_than("gpu-count>4", true)]
    #[case::greater_than_text("gpu-count>many", false)]
    #[case::space_in_value("a=b c", false)]
    #[case::bad_key("-a=b", false)]
    #[case::uppercase_prefix("Example.com/a=b", false)]
    #[case::empty_requirement("a=b,", false)]
    #[case::unbalanced("pool in (a,b", false)]
    #[case::unknown_set_operator("pool within (a)", false)]
    #[case::nested("pool in ((a))", false)]
    #[case::too_long(&format!("a={}", "v".repeat(64)), false)]
    fn reads_selectors_as_the_api_server_does(#[case] selector: &str, #[case] valid: bool) {
        assert_eq!(is_label_selector(selector), valid, "{selector}");
    }
}
