//! A JSON parser that keeps where every key and value starts, so that problems in a JSON
//! template name `file:line:col` (serde_json's values carry no positions). Strict RFC 8259, as
//! Go's `encoding/json` that Packer uses: no comments, no trailing commas.

/// A JSON value and the byte offset where it starts.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Spanned {
    pub at: usize,
    pub value: Json,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Json {
    Null,
    Bool(bool),
    /// The number as written (JSON's number syntax is also HCL's).
    Number(String),
    String(String),
    Array(Vec<Spanned>),
    /// Members in file order (repeats kept: the caller reports them).
    Object(Vec<(Key, Spanned)>),
}

/// An object member's name and the byte offset of its opening quote.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Key {
    pub at: usize,
    pub name: String,
}

impl Json {
    /// What the value is, for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Json::Null => "null",
            Json::Bool(_) => "a bool",
            Json::Number(_) => "a number",
            Json::String(_) => "a string",
            Json::Array(_) => "an array",
            Json::Object(_) => "an object",
        }
    }
}

/// A syntax error at byte offset `at`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SyntaxError {
    pub at: usize,
    pub message: String,
}

/// Parses one JSON document.
pub(crate) fn parse(text: &str) -> Result<Spanned, SyntaxError> {
    let mut p = Parser {
        s: text.as_bytes(),
        text,
        i: 0,
        depth: 0,
    };
    p.ws();
    let v = p.value()?;
    p.ws();
    if p.i < p.s.len() {
        return Err(p.err("unexpected text after the end of the JSON value"));
    }
    Ok(v)
}

struct Parser<'a> {
    s: &'a [u8],
    text: &'a str,
    i: usize,
    depth: usize,
}

/// Deeper nesting is refused rather than overflowing the stack.
const MAX_DEPTH: usize = 128;

impl Parser<'_> {
    fn err(&self, message: impl Into<String>) -> SyntaxError {
        SyntaxError {
            at: self.i,
            message: message.into(),
        }
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.s.get(self.i) {
            self.i += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn value(&mut self) -> Result<Spanned, SyntaxError> {
        let at = self.i;
        let value = match self.peek() {
            None => return Err(self.err("unexpected end of file: a value is missing")),
            Some(b'{') => self.nested(Self::object)?,
            Some(b'[') => self.nested(Self::array)?,
            Some(b'"') => Json::String(self.string()?),
            Some(b'-' | b'0'..=b'9') => Json::Number(self.number()?),
            Some(_) => {
                let rest = &self.text[self.i..];
                let word = |w: &str| rest.starts_with(w);
                let (v, len) = if word("true") {
                    (Json::Bool(true), 4)
                } else if word("false") {
                    (Json::Bool(false), 5)
                } else if word("null") {
                    (Json::Null, 4)
                } else {
                    let c = rest.chars().next().unwrap_or(' ');
                    return Err(
                        self.err(format!("unexpected character `{c}`: a value is expected"))
                    );
                };
                self.i += len;
                v
            }
        };
        Ok(Spanned { at, value })
    }

    fn nested(
        &mut self,
        f: fn(&mut Self) -> Result<Json, SyntaxError>,
    ) -> Result<Json, SyntaxError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.err("values are nested too deeply"));
        }
        let v = f(self);
        self.depth -= 1;
        v
    }

    fn object(&mut self) -> Result<Json, SyntaxError> {
        self.i += 1; // `{`
        let mut members = Vec::new();
        self.ws();
        if self.peek() == Some(b'}') {
            self.i += 1;
            return Ok(Json::Object(members));
        }
        loop {
            self.ws();
            if self.peek() != Some(b'"') {
                return Err(self.err(if self.peek() == Some(b'}') {
                    "a trailing comma before `}` is not allowed in JSON"
                } else {
                    "a member name in double quotes is expected"
                }));
            }
            let at = self.i;
            let name = self.string()?;
            self.ws();
            if self.peek() != Some(b':') {
                return Err(self.err("`:` is expected after a member name"));
            }
            self.i += 1;
            self.ws();
            let v = self.value()?;
            members.push((Key { at, name }, v));
            self.ws();
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b'}') => {
                    self.i += 1;
                    return Ok(Json::Object(members));
                }
                _ => return Err(self.err("`,` or `}` is expected after an object member")),
            }
        }
    }

    fn array(&mut self) -> Result<Json, SyntaxError> {
        self.i += 1; // `[`
        let mut items = Vec::new();
        self.ws();
        if self.peek() == Some(b']') {
            self.i += 1;
            return Ok(Json::Array(items));
        }
        loop {
            self.ws();
            if self.peek() == Some(b']') {
                return Err(self.err("a trailing comma before `]` is not allowed in JSON"));
            }
            items.push(self.value()?);
            self.ws();
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b']') => {
                    self.i += 1;
                    return Ok(Json::Array(items));
                }
                _ => return Err(self.err("`,` or `]` is expected after an array element")),
            }
        }
    }

    fn string(&mut self) -> Result<String, SyntaxError> {
        self.i += 1; // `"`
        let mut out = String::new();
        loop {
            let start = self.i;
            while let Some(b) = self.peek() {
                if b == b'"' || b == b'\\' || b < 0x20 {
                    break;
                }
                self.i += 1;
            }
            out.push_str(&self.text[start..self.i]);
            match self.peek() {
                None => return Err(self.err("unexpected end of file inside a string")),
                Some(b'"') => {
                    self.i += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.i += 1;
                    let c = match self.peek() {
                        Some(b'"') => '"',
                        Some(b'\\') => '\\',
                        Some(b'/') => '/',
                        Some(b'b') => '\u{8}',
                        Some(b'f') => '\u{c}',
                        Some(b'n') => '\n',
                        Some(b'r') => '\r',
                        Some(b't') => '\t',
                        Some(b'u') => {
                            self.i += 1;
                            let hi = self.hex4()?;
                            let code = if (0xD800..0xDC00).contains(&hi)
                                && self.text[self.i..].starts_with("\\u")
                            {
                                self.i += 2;
                                let lo = self.hex4()?;
                                0x10000 + ((hi - 0xD800) << 10) + (lo.wrapping_sub(0xDC00) & 0x3FF)
                            } else {
                                hi
                            };
                            out.push(char::from_u32(code).unwrap_or('\u{FFFD}'));
                            continue;
                        }
                        _ => return Err(self.err("unknown escape in a string")),
                    };
                    self.i += 1;
                    out.push(c);
                }
                Some(_) => {
                    return Err(self.err(
                        "a control character (such as a newline) must be escaped in a JSON string",
                    ));
                }
            }
        }
    }

    fn hex4(&mut self) -> Result<u32, SyntaxError> {
        let digits = self.text.get(self.i..self.i + 4).unwrap_or("");
        let v = u32::from_str_radix(digits, 16)
            .ok()
            .filter(|_| digits.len() == 4 && digits.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or_else(|| self.err("`\\u` must be followed by four hex digits"))?;
        self.i += 4;
        Ok(v)
    }

    fn number(&mut self) -> Result<String, SyntaxError> {
        let start = self.i;
        let digits = |p: &mut Self| {
            let s = p.i;
            while p.peek().is_some_and(|b| b.is_ascii_digit()) {
                p.i += 1;
            }
            p.i > s
        };
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        if self.peek() == Some(b'0') {
            self.i += 1;
        } else if !digits(self) {
            return Err(self.err("a digit is expected"));
        }
        if self.peek() == Some(b'.') {
            self.i += 1;
            if !digits(self) {
                return Err(self.err("a digit is expected after `.`"));
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.i += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.i += 1;
            }
            if !digits(self) {
                return Err(self.err("a digit is expected in the exponent"));
            }
        }
        Ok(self.text[start..self.i].to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(at: usize, v: Json) -> Spanned {
        Spanned { at, value: v }
    }

    #[test]
    fn values_keep_their_offsets() {
        let v = parse(r#"{"a": [1, "x\n\u00e9", true, null], "b": {}}"#).unwrap();
        let Json::Object(m) = v.value else {
            panic!("not an object")
        };
        assert_eq!(
            m[0].0,
            Key {
                at: 1,
                name: "a".into()
            }
        );
        assert_eq!(
            m[0].1,
            s(
                6,
                Json::Array(vec![
                    s(7, Json::Number("1".into())),
                    s(10, Json::String("x\né".into())),
                    s(23, Json::Bool(true)),
                    s(29, Json::Null),
                ])
            )
        );
        assert_eq!(m[1].1, s(41, Json::Object(vec![])));
    }

    #[test]
    fn errors_say_where_and_what() {
        let table = [
            ("{\"a\": 1,}", 8, "trailing comma"),
            ("[1 2]", 3, "`,` or `]`"),
            ("{\"a\" 1}", 5, "`:` is expected"),
            ("{\"a\": tru}", 6, "unexpected character `t`"),
            ("\"abc", 4, "end of file inside a string"),
            ("\"a\nb\"", 2, "control character"),
            ("{} x", 3, "after the end"),
            ("-", 1, "digit"),
            ("{\"a\": 01}", 7, "`,` or `}`"),
        ];
        for (text, at, says) in table {
            let e = parse(text).unwrap_err();
            assert_eq!(e.at, at, "{text}");
            assert!(e.message.contains(says), "{text}: {}", e.message);
        }
    }

    #[test]
    fn surrogate_pairs_and_numbers() {
        assert_eq!(
            parse(r#""\ud83d\ude00""#).unwrap().value,
            Json::String("😀".into())
        );
        assert_eq!(
            parse("-1.5e+3").unwrap().value,
            Json::Number("-1.5e+3".into())
        );
        let deep = "[".repeat(200) + &"]".repeat(200);
        assert!(
            parse(&deep)
                .unwrap_err()
                .message
                .contains("nested too deeply")
        );
    }
}
