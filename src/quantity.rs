//! Kubernetes resource quantities ("10m", "15Mi", "1e3", "0.5").

/// The quantity's value in base units, or `None` when Kubernetes would not
/// accept it as a resource quantity (negative amounts included). Digits are
/// read by hand: `f64::from_str` would add its tables to the module.
pub fn parse(s: &str) -> Option<f64> {
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+'))
        .unwrap_or(s.len());
    let (number, suffix) = s.split_at(split);
    let number = number.strip_prefix('+').unwrap_or(number);
    let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
    let digits_ok = |d: &str| d.bytes().all(|c| c.is_ascii_digit());
    if (whole.is_empty() && frac.is_empty()) || !digits_ok(whole) || !digits_ok(frac) {
        return None;
    }
    let mantissa = whole
        .bytes()
        .chain(frac.bytes())
        .fold(0f64, |m, d| m * 10.0 + f64::from(d - b'0'));
    let scale = 10f64.powi(-i32::try_from(frac.len()).ok()?);
    Some(mantissa * scale * multiplier(suffix)?)
}

fn multiplier(suffix: &str) -> Option<f64> {
    let binary = |p: i32| Some(1024f64.powi(p));
    let decimal = |p: i32| Some(10f64.powi(p));
    match suffix {
        "" => decimal(0),
        "n" => decimal(-9),
        "u" => decimal(-6),
        "m" => decimal(-3),
        "k" => decimal(3),
        "M" => decimal(6),
        "G" => decimal(9),
        "T" => decimal(12),
        "P" => decimal(15),
        "E" => decimal(18),
        "Ki" => binary(1),
        "Mi" => binary(2),
        "Gi" => binary(3),
        "Ti" => binary(4),
        "Pi" => binary(5),
        "Ei" => binary(6),
        _ => exponent(suffix),
    }
}

fn exponent(suffix: &str) -> Option<f64> {
    let e = suffix.strip_prefix(['e', 'E'])?;
    let digits = e.strip_prefix(['+', '-']).unwrap_or(e);
    if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let magnitude: i32 = digits.parse().ok()?;
    Some(10f64.powi(if e.starts_with('-') {
        -magnitude
    } else {
        magnitude
    }))
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    #[rstest]
    #[case::millicores("10m", Some(0.01))]
    #[case::mebibytes("15Mi", Some(15.0 * 1024.0 * 1024.0))]
    #[case::plain_integer("2", Some(2.0))]
    #[case::decimal("0.5", Some(0.5))]
    #[case::leading_dot(".5", Some(0.5))]
    #[case::trailing_dot("5.", Some(5.0))]
    #[case::plus_sign("+1k", Some(1000.0))]
    #[case::exponent("1e3", Some(1000.0))]
    #[case::negative_exponent("1E-3", Some(0.001))]
    #[case::nano("5n", Some(5e-9))]
    #[case::negative("-1", None)]
    #[case::empty("", None)]
    #[case::decimal_megabytes("15MB", None)]
    #[case::lowercase_binary("15mi", None)]
    #[case::words("lots", None)]
    #[case::dot_only(".", None)]
    #[case::bad_exponent("1e", None)]
    fn parses_like_kubernetes(#[case] s: &str, #[case] expected: Option<f64>) {
        assert_eq!(super::parse(s), expected);
    }
}
