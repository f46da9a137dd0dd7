//! JSON read as text: an object's fields, a list's items and a value's type,
//! each a slice of the text it came from.
//!
//! The policy never builds a `serde_json::Value` tree. It reads the handful
//! of fields it decides on, and writes back the text it was given. Besides
//! keeping every byte of the pod as sent, this keeps `Value`'s deserializer,
//! its map and the sort that builds it out of the module: 40 KB of the 282 KB
//! it had (README "Performance").

use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

/// Parses `text` as `T`. Every parse in the policy goes through here, or
/// through `serde_json::from_slice` on request bytes: one reader type means
/// one copy of serde_json's parser in the module.
pub fn parse<'a, T: Deserialize<'a>>(text: &'a str) -> serde_json::Result<T> {
    serde_json::from_slice(text.as_bytes())
}

/// `text` as a JSON string literal. Serializing a `str` cannot fail; going
/// through `serde_json::Value` would bring its whole serializer (numbers
/// included) into the module.
pub fn quoted(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_default()
}

/// The items of a JSON list, as their text; an error when `list` is not a list.
pub fn items(list: &str) -> serde_json::Result<Vec<&str>> {
    let items: Vec<&RawValue> = parse(list)?;
    Ok(items.into_iter().map(RawValue::get).collect())
}

/// A value's text is never preceded by whitespace (serde_json skips it before
/// it starts a raw value), so its first byte says what it is.
pub fn is_null(value: &str) -> bool {
    value == "null"
}

pub fn is_number(value: &str) -> bool {
    value.starts_with(|c: char| c == '-' || c.is_ascii_digit())
}

/// Whether `text` has a `\u` escape of half a UTF-16 surrogate pair without
/// its other half. serde_json checks pairs only when it decodes a string, not
/// when it skips one, so such text gets through every parse the policy makes;
/// the host decodes all of the object the policy returns, and fails on it.
pub fn has_lone_surrogate(text: &str) -> bool {
    let bytes = text.as_bytes();
    let unit = |at: usize| {
        let hex = bytes.get(at..at + 4)?;
        hex.iter()
            .try_fold(0u32, |n, &b| Some(n << 4 | char::from(b).to_digit(16)?))
    };
    let mut at = 0;
    while at < text.len() {
        // `str::find` searches a word at a time: a mutated pod is scanned in full.
        let Some(rest) = text.get(at..) else {
            at += 1; // inside a character, after a backslash that escaped nothing valid
            continue;
        };
        let Some(found) = rest.find('\\') else {
            return false;
        };
        at += found;
        if bytes.get(at + 1) != Some(&b'u') {
            at += 2; // `\\`, `\"` and the like: the escaped byte is not a backslash
            continue;
        }
        match unit(at + 2) {
            Some(0xD800..=0xDBFF) => {
                let paired = bytes.get(at + 6..at + 8) == Some(b"\\u".as_slice())
                    && matches!(unit(at + 8), Some(0xDC00..=0xDFFF));
                if !paired {
                    return true;
                }
                at += 12;
            }
            Some(0xDC00..=0xDFFF) => return true,
            _ => at += 6,
        }
    }
    false
}

/// An object's fields in document order: decoded keys, values as their text.
#[derive(Default)]
pub struct Fields<'a>(Vec<(String, &'a RawValue)>);

impl<'a> Fields<'a> {
    /// `None` when `object` is not a JSON object.
    pub fn parse(object: &'a str) -> Option<Fields<'a>> {
        parse(object).ok()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Each field's key and value text, in document order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &'a str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.get()))
    }

    pub fn raw(&self, key: &str) -> Option<&'a str> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v.get())
    }

    /// A field read as `T`; `None` when absent or of another shape.
    pub fn read<T: Deserialize<'a>>(&self, key: &str) -> Option<T> {
        parse(self.raw(key)?).ok()
    }

    /// The object without `key`.
    pub fn without(mut self, key: &str) -> Fields<'a> {
        self.0.retain(|(k, _)| k != key);
        self
    }

    /// The object with `set` (key, JSON text) replacing or adding fields;
    /// every other field is written back as it was.
    pub fn with(&self, set: &[(&str, String)]) -> String {
        let mut out = String::from("{");
        let kept = self
            .0
            .iter()
            .filter(|(k, _)| !set.iter().any(|(s, _)| s == k));
        for (key, value) in kept
            .map(|(k, v)| (k.as_str(), v.get()))
            .chain(set.iter().map(|(k, v)| (*k, v.as_str())))
        {
            if out.len() > 1 {
                out.push(',');
            }
            out.push_str(&quoted(key));
            out.push(':');
            out.push_str(value);
        }
        out.push('}');
        out
    }
}

impl<'de> Deserialize<'de> for Fields<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Entries;
        impl<'de> Visitor<'de> for Entries {
            type Value = Fields<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
                let mut fields = Vec::new();
                while let Some(entry) = map.next_entry::<String, &'de RawValue>()? {
                    fields.push(entry);
                }
                Ok(Fields(fields))
            }
        }
        deserializer.deserialize_map(Entries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;
    use serde_json::{Value, json};

    #[test]
    fn fields_are_written_back_verbatim() {
        let text =
            r#"{"name":"m","x":1.0000000000000002e-300, "a\"b":[1 ,2],"restartPolicy":"Never"}"#;
        let fields = Fields::parse(text).unwrap();
        assert_eq!(fields.raw("x"), Some("1.0000000000000002e-300"));
        assert_eq!(
            fields.read::<String>("restartPolicy").as_deref(),
            Some("Never")
        );
        assert_eq!(
            fields.with(&[
                ("restartPolicy", r#""Always""#.into()),
                ("startupProbe", "{}".into())
            ]),
            r#"{"name":"m","x":1.0000000000000002e-300,"a\"b":[1 ,2],"restartPolicy":"Always","startupProbe":{}}"#
        );
        assert_eq!(
            fields.without("x").without("name").with(&[]),
            r#"{"a\"b":[1 ,2],"restartPolicy":"Never"}"#
        );
        assert!(Fields::parse("[1]").is_none());
    }

    #[test]
    fn iterates_in_document_order() {
        let fields = Fields::parse(r#"{ "b" : 1 , "a":"x\"y" ,"c":null}"#).unwrap();
        let got: Vec<_> = fields.iter().collect();
        assert_eq!(got, [("b", "1"), ("a", r#""x\"y""#), ("c", "null")]);
    }

    #[rstest]
    #[case::list(r#"[1, "a" ,{"b":[]}]"#, Some(vec!["1", r#""a""#, r#"{"b":[]}"#]))]
    #[case::empty(" [ ] ", Some(vec![]))]
    #[case::object(r#"{"a":1}"#, None)]
    #[case::not_json("[1,", None)]
    fn list_items(#[case] list: &str, #[case] expected: Option<Vec<&str>>) {
        assert_eq!(items(list).ok(), expected);
    }

    /// The first-byte tests agree with serde_json on every kind of value, as
    /// `Fields` hands them out (whitespace around values included).
    #[test]
    fn kinds_agree_with_serde_json() {
        let text = r#"{"n": null ,"t":true,"f": false,"i":-3,"z":0.5e1,"s":"1","l":[],"o":{}}"#;
        for (key, raw) in Fields::parse(text).unwrap().iter() {
            let v: Value = serde_json::from_str(raw).unwrap();
            assert_eq!(is_null(raw), v.is_null(), "{key}");
            assert_eq!(is_number(raw), v.is_number(), "{key}");
        }
    }

    /// `has_lone_surrogate` says yes exactly when serde_json cannot decode the text.
    #[rstest]
    #[case::none(r#"{"a":"plain"}"#)]
    #[case::pair(r#"{"a":"\ud83d\ude00"}"#)]
    #[case::pair_upper(r#"{"a":"x\uD83D\uDE00y"}"#)]
    #[case::bmp(r#"{"a":"\u00e9\uffff"}"#)]
    #[case::escaped_backslash(r#"{"a":"\\ud800"}"#)]
    #[case::escaped_quote(r#"{"a":"\"\ud83d\ude00"}"#)]
    #[case::lone_lead(r#"{"a":"\ud800"}"#)]
    #[case::lone_lead_at_end(r#"{"a":"x\uDBFF"}"#)]
    #[case::lead_then_lead(r#"{"a":"\ud800\ud800"}"#)]
    #[case::lead_then_char(r#"{"a":"\ud800x\udc00"}"#)]
    #[case::lone_trail(r#"{"a":"\udc00"}"#)]
    #[case::lone_trail_in_key(r#"{"es%\uddAAersion":"v1"}"#)]
    #[case::pair_then_lone(r#"{"a":"\ud83d\ude00\ude00"}"#)]
    fn lone_surrogates_are_what_serde_json_refuses(#[case] text: &str) {
        let decodable = serde_json::from_str::<Value>(text).is_ok();
        assert_eq!(has_lone_surrogate(text), !decodable, "{text}");
        assert!(
            serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok(),
            "{text}"
        );
    }

    /// Text serde_json would refuse never reaches the check, but it must not panic on it.
    #[rstest]
    #[case::escaped_multibyte("\\é\\ud800", true)]
    #[case::escaped_multibyte_then_pair("\\é\\ud83d\\ude00", false)]
    #[case::trailing_backslash("x\\", false)]
    #[case::short_escape("\\ud8", false)]
    #[case::lead_at_end("\\ud800\\u", true)]
    fn odd_text_does_not_panic(#[case] text: &str, #[case] lone: bool) {
        assert_eq!(has_lone_surrogate(text), lone, "{text}");
    }

    #[test]
    fn quotes_like_serde_json() {
        for s in ["plain", "a\"b\\c", "tab\there", "é\u{1}"] {
            assert_eq!(quoted(s), json!(s).to_string());
            assert_eq!(parse::<String>(&quoted(s)).unwrap(), s);
        }
    }
}
