//! A strict JSON scanner that walks text without building anything.
//!
//! The request envelope is walked with it so that the policy can stop as soon
//! as it knows the request is not a Pod creation, and so that a Pod is scanned
//! once before any field of it is read. It checks everything serde_json's
//! parser checks (string escapes and control characters, number grammar,
//! literals, commas, nesting up to serde_json's 128 levels) except UTF-8, which
//! is checked on the slices the policy goes on to read.

use std::borrow::Cow;
use std::fmt;

/// serde_json's recursion limit: deeper text is refused, not followed.
const MAX_DEPTH: u32 = 128;

pub struct Scanner<'a> {
    text: &'a [u8],
    at: usize,
    depth: u32,
}

/// Whether an object walk goes on after a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Stop,
}

#[derive(Debug, PartialEq, Eq)]
pub struct ScanError {
    pub at: usize,
    pub expected: &'static str,
}

impl fmt::Display for ScanError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "expected {} at byte {}", self.expected, self.at)
    }
}

pub type Scan<T> = Result<T, ScanError>;

/// A string literal as it is in the text.
#[derive(Debug, Clone, Copy)]
pub struct Str<'a> {
    /// With its quotes.
    pub quoted: &'a [u8],
    escaped: bool,
}

impl<'a> Str<'a> {
    /// The string's value, borrowed unless it holds escapes; `None` when it
    /// is not valid UTF-8 or cannot be decoded.
    pub fn value(&self) -> Option<Cow<'a, str>> {
        if self.escaped {
            return serde_json::from_slice(self.quoted).ok().map(Cow::Owned);
        }
        let inner = self.quoted.get(1..self.quoted.len() - 1)?;
        std::str::from_utf8(inner).ok().map(Cow::Borrowed)
    }

    /// Whether the string's value is `s`. Escapes are decoded only when there are any.
    pub fn is(&self, s: &str) -> bool {
        if self.escaped {
            self.value().as_deref() == Some(s)
        } else {
            self.quoted.get(1..self.quoted.len() - 1) == Some(s.as_bytes())
        }
    }
}

impl<'a> Scanner<'a> {
    pub fn new(text: &'a [u8]) -> Scanner<'a> {
        Scanner {
            text,
            at: 0,
            depth: 0,
        }
    }

    /// The text being scanned.
    pub fn source(&self) -> &'a [u8] {
        self.text
    }

    /// Where the scanner is in its text.
    pub fn position(&self) -> usize {
        self.at
    }

    /// Goes back to `at`, a position the scanner was at before.
    pub fn rewind(&mut self, at: usize) {
        self.at = at;
    }

    fn fail<T>(&self, expected: &'static str) -> Scan<T> {
        Err(self.error(expected))
    }

    /// The next byte that is not whitespace, not consumed.
    pub fn peek(&mut self) -> Option<u8> {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.text.get(self.at) {
            self.at += 1;
        }
        self.text.get(self.at).copied()
    }

    pub fn error(&self, expected: &'static str) -> ScanError {
        ScanError {
            at: self.at,
            expected,
        }
    }

    fn eat(&mut self, byte: u8, expected: &'static str) -> Scan<()> {
        if self.peek() != Some(byte) {
            return self.fail(expected);
        }
        self.at += 1;
        Ok(())
    }

    /// Only whitespace is left.
    pub fn end(&mut self) -> Scan<()> {
        match self.peek() {
            None => Ok(()),
            Some(_) => self.fail("the end of the text"),
        }
    }

    /// Walks an object: `field` gets each key with the scanner before the value,
    /// and must consume that value unless it stops the walk.
    pub fn object(
        &mut self,
        mut field: impl FnMut(&mut Self, Str<'a>) -> Scan<Flow>,
    ) -> Scan<Flow> {
        self.eat(b'{', "`{`")?;
        self.nest(|s| {
            if s.peek() == Some(b'}') {
                s.at += 1;
                return Ok(Flow::Continue);
            }
            loop {
                let key = s.string()?;
                s.eat(b':', "`:`")?;
                if field(s, key)? == Flow::Stop {
                    return Ok(Flow::Stop);
                }
                match s.peek() {
                    Some(b',') => s.at += 1,
                    Some(b'}') => {
                        s.at += 1;
                        return Ok(Flow::Continue);
                    }
                    _ => return s.fail("`,` or `}`"),
                }
            }
        })
    }

    /// Walks a list: `item` consumes each value.
    pub fn array(&mut self, mut item: impl FnMut(&mut Self) -> Scan<()>) -> Scan<()> {
        self.eat(b'[', "`[`")?;
        self.nest(|s| {
            if s.peek() == Some(b']') {
                s.at += 1;
                return Ok(());
            }
            loop {
                item(s)?;
                match s.peek() {
                    Some(b',') => s.at += 1,
                    Some(b']') => {
                        s.at += 1;
                        return Ok(());
                    }
                    _ => return s.fail("`,` or `]`"),
                }
            }
        })
    }

    /// Consumes a value; whether it is the string `expected`.
    pub fn string_is(&mut self, expected: &str) -> Scan<bool> {
        if self.peek() == Some(b'"') {
            self.string().map(|s| s.is(expected))
        } else {
            self.value().map(|_| false)
        }
    }

    /// A string value, decoded: borrowed unless it holds escapes.
    pub fn text(&mut self) -> Scan<Cow<'a, str>> {
        self.peek();
        let at = self.at;
        let s = self.string()?;
        s.value().ok_or(ScanError {
            at,
            expected: "a string of valid UTF-8",
        })
    }

    fn nest<T>(&mut self, inside: impl FnOnce(&mut Self) -> Scan<T>) -> Scan<T> {
        if self.depth == MAX_DEPTH {
            return self.fail("at most 128 nested lists and objects");
        }
        self.depth += 1;
        let result = inside(self);
        self.depth -= 1;
        result
    }

    /// Skips one value; returns its text. Iterative, with the open lists and
    /// objects as bits (1 = object): a pod is mostly nesting and short strings.
    pub fn value(&mut self) -> Scan<&'a [u8]> {
        let start = match self.peek() {
            Some(_) => self.at,
            None => return self.fail("a value"),
        };
        let mut open: u128 = 0;
        let mut depth = 0u32;
        loop {
            // A value is expected here.
            match self.peek() {
                Some(b @ (b'{' | b'[')) => {
                    if self.depth + depth == MAX_DEPTH {
                        return self.fail("at most 128 nested lists and objects");
                    }
                    self.at += 1;
                    let object = b == b'{';
                    let close = if object { b'}' } else { b']' };
                    if self.peek() == Some(close) {
                        self.at += 1;
                    } else {
                        open = open << 1 | u128::from(object);
                        depth += 1;
                        if object {
                            self.string()?;
                            self.eat(b':', "`:`")?;
                        }
                        continue;
                    }
                }
                Some(b'"') => {
                    self.string()?;
                }
                Some(b't') => self.literal(b"true")?,
                Some(b'f') => self.literal(b"false")?,
                Some(b'n') => self.literal(b"null")?,
                _ => self.number()?,
            }
            // After a value: close what it ended, or go on to the next one.
            loop {
                if depth == 0 {
                    return Ok(&self.text[start..self.at]);
                }
                let object = open & 1 == 1;
                match self.peek() {
                    Some(b',') => {
                        self.at += 1;
                        if object {
                            self.string()?;
                            self.eat(b':', "`:`")?;
                        }
                        break;
                    }
                    Some(b'}') if object => {}
                    Some(b']') if !object => {}
                    _ if object => return self.fail("`,` or `}`"),
                    _ => return self.fail("`,` or `]`"),
                }
                self.at += 1;
                open >>= 1;
                depth -= 1;
            }
        }
    }

    /// Runs `read` on the value ahead; returns the value's byte range.
    pub fn value_at(&mut self, read: impl FnOnce(&mut Self) -> Scan<()>) -> Scan<(usize, usize)> {
        self.peek();
        let start = self.at;
        read(self)?;
        Ok((start, self.at))
    }

    /// A string literal, checked.
    #[inline]
    pub fn string(&mut self) -> Scan<Str<'a>> {
        if self.peek() != Some(b'"') {
            return self.fail("a string");
        }
        let start = self.at;
        self.at += 1;
        let mut escaped = false;
        loop {
            self.at = next_special(self.text, self.at);
            match self.text.get(self.at) {
                Some(b'"') => {
                    self.at += 1;
                    return Ok(Str {
                        quoted: &self.text[start..self.at],
                        escaped,
                    });
                }
                Some(b'\\') => {
                    escaped = true;
                    self.escape()?;
                }
                Some(_) => return self.fail("no control character in a string"),
                None => return self.fail("the string's closing quote"),
            }
        }
    }

    fn escape(&mut self) -> Scan<()> {
        let hex = |b: &u8| b.is_ascii_hexdigit();
        match self.text.get(self.at + 1) {
            Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => self.at += 2,
            Some(b'u')
                if self
                    .text
                    .get(self.at + 2..self.at + 6)
                    .is_some_and(|h| h.iter().all(hex)) =>
            {
                self.at += 6;
            }
            _ => return self.fail("a valid escape"),
        }
        Ok(())
    }

    fn literal(&mut self, word: &[u8]) -> Scan<()> {
        if !self.text[self.at..].starts_with(word) {
            return self.fail("`true`, `false` or `null`");
        }
        self.at += word.len();
        Ok(())
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`
    fn number(&mut self) -> Scan<()> {
        if self.text.get(self.at) == Some(&b'-') {
            self.at += 1;
        }
        match self.text.get(self.at) {
            Some(b'0') => self.at += 1,
            Some(b'1'..=b'9') => self.digits(),
            _ => return self.fail("a value"),
        }
        if self.text.get(self.at) == Some(&b'.') {
            self.at += 1;
            if !self.digits_required() {
                return self.fail("a digit after `.`");
            }
        }
        if let Some(b'e' | b'E') = self.text.get(self.at) {
            self.at += 1;
            if let Some(b'+' | b'-') = self.text.get(self.at) {
                self.at += 1;
            }
            if !self.digits_required() {
                return self.fail("a digit in the exponent");
            }
        }
        Ok(())
    }

    fn digits(&mut self) {
        while self.text.get(self.at).is_some_and(u8::is_ascii_digit) {
            self.at += 1;
        }
    }

    fn digits_required(&mut self) -> bool {
        let start = self.at;
        self.digits();
        self.at > start
    }
}

/// The first `"`, `\` or control character at or after `from` (or the text's
/// length): eight bytes at a time, as string contents are most of a pod.
fn next_special(text: &[u8], from: usize) -> usize {
    next_hit::<true>(text, from)
}

/// The first `"` or `\` at or after `from`, or the text's length.
pub fn next_quote_or_backslash(text: &[u8], from: usize) -> usize {
    next_hit::<false>(text, from)
}

#[inline(always)]
fn next_hit<const CONTROLS: bool>(text: &[u8], mut from: usize) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    while let Some(chunk) = text.get(from..from + 8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let w = u64::from_le_bytes(word);
        let quote = w ^ (ONES * u64::from(b'"'));
        let backslash = w ^ (ONES * u64::from(b'\\'));
        // A byte's high bit is set where it is zero (or below 0x20 for `w`);
        // only bytes after a true hit can be set falsely, so the lowest is true.
        let mut hits =
            (quote.wrapping_sub(ONES) & !quote) | (backslash.wrapping_sub(ONES) & !backslash);
        if CONTROLS {
            hits |= w.wrapping_sub(ONES * 0x20) & !w;
        }
        let hits = hits & HIGH;
        if hits != 0 {
            return from + hits.trailing_zeros() as usize / 8;
        }
        from += 8;
    }
    while let Some(&b) = text.get(from) {
        if b == b'"' || b == b'\\' || (CONTROLS && b < 0x20) {
            break;
        }
        from += 1;
    }
    from
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn skip(text: &str) -> Scan<&str> {
        let mut s = Scanner::new(text.as_bytes());
        let span = s.value()?;
        s.end()?;
        Ok(std::str::from_utf8(span).unwrap())
    }

    #[rstest]
    #[case::object(r#" {"a": [1, -2.5e+3, 0.0, true, false, null], "b": {}} "#)]
    #[case::empty_list("[ ]")]
    #[case::escapes(r#""tab\t quote\" slash\/ unicode\u00e9 \uD83D\uDE00""#)]
    #[case::long_string(r#""abcdefghijklmnopqrstuvwxyz0123456789 héllo wörld""#)]
    #[case::zero("0")]
    #[case::negative_exponent("-0.5E-7")]
    #[case::nested_128(&format!("{}{}", "[".repeat(128), "]".repeat(128)))]
    fn valid_json_is_skipped_whole(#[case] text: &str) {
        assert_eq!(skip(text), Ok(text.trim()));
    }

    #[rstest]
    #[case::unclosed_string(r#""abc"#, "the string's closing quote")]
    #[case::control_character("\"a\nb\"", "no control character in a string")]
    #[case::bad_escape(r#""\x""#, "a valid escape")]
    #[case::short_unicode_escape(r#""\u12""#, "a valid escape")]
    #[case::leading_zero("01", "the end of the text")]
    #[case::bare_dot("1.", "a digit after `.`")]
    #[case::empty_exponent("1e", "a digit in the exponent")]
    #[case::plus_sign("+1", "a value")]
    #[case::misspelt_literal("nul", "`true`, `false` or `null`")]
    #[case::trailing_comma("[1,]", "a value")]
    #[case::missing_colon(r#"{"a" 1}"#, "`:`")]
    #[case::unquoted_key("{a: 1}", "a string")]
    #[case::missing_comma(r#"{"a": 1 "b": 2}"#, "`,` or `}`")]
    #[case::nothing("  ", "a value")]
    #[case::too_deep(&"[".repeat(129), "at most 128 nested lists and objects")]
    fn invalid_json_is_refused(#[case] text: &str, #[case] expected: &str) {
        assert_eq!(skip(text).unwrap_err().expected, expected);
    }

    #[test]
    fn an_object_walk_stops_where_asked() {
        let mut s = Scanner::new(br#"{"kind": "Deployment", "object": {not json"#);
        let mut seen = Vec::new();
        let flow = s
            .object(|s, key| {
                seen.push(std::str::from_utf8(key.quoted).unwrap().to_owned());
                s.value()?;
                Ok(Flow::Stop)
            })
            .unwrap();
        assert_eq!(flow, Flow::Stop);
        assert_eq!(seen, ["\"kind\""]);
    }

    #[rstest]
    #[case::plain(r#""Pod""#, true)]
    #[case::escaped(r#""P\u006fd""#, true)]
    #[case::other(r#""Pods""#, false)]
    #[case::escaped_other(r#""P\u006fds""#, false)]
    fn strings_compare_by_value(#[case] text: &str, #[case] is_pod: bool) {
        let s = Scanner::new(text.as_bytes()).string().unwrap();
        assert_eq!(s.is("Pod"), is_pod);
    }

    #[rstest]
    #[case::the_string(r#""Pod""#, true)]
    #[case::another_string(r#""Pods""#, false)]
    #[case::a_number("1", false)]
    #[case::an_object(r#"{"kind": "Pod"}"#, false)]
    fn a_value_is_or_is_not_a_string(#[case] text: &str, #[case] is_pod: bool) {
        let mut s = Scanner::new(text.as_bytes());
        assert_eq!(s.string_is("Pod"), Ok(is_pod));
        assert_eq!(s.end(), Ok(()), "the whole value is consumed");
    }

    #[test]
    fn every_special_byte_is_found_at_every_offset() {
        for special in [b'"', b'\\', b'\n', 0x1f] {
            for at in 0..20 {
                let mut text = vec![b'a'; 20];
                text.extend_from_slice("é€".as_bytes());
                text[at] = special;
                assert_eq!(next_special(&text, 0), at, "{special} at {at}");
                assert_eq!(next_special(&text, at + 1), text.len());
            }
        }
    }
}
