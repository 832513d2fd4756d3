//! Packer's legacy template engine (`{{user `x`}}`, `{{timestamp}}`, …) inside JSON strings,
//! translated into an HCL2 quoted template (`"${var.x}"`), the way `packer hcl2_upgrade` does.
//! Actions on `.Fields` (`{{ .HTTPIP }}`, `{{ .Vars }}`) are rendered while a build runs, so
//! they stay as written.

use std::collections::BTreeSet;

/// The functions of Packer's legacy engine that kiln translates.
pub(crate) const FUNCTIONS: &[&str] = &[
    "build",
    "build_name",
    "build_type",
    "env",
    "isotime",
    "lower",
    "packer_version",
    "pwd",
    "replace",
    "replace_all",
    "split",
    "strftime",
    "template_dir",
    "timestamp",
    "upper",
    "user",
    "uuid",
];

/// What a string uses, besides its translation.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Translated {
    /// The text between the quotes of an HCL string.
    pub hcl: String,
    /// `{{timestamp}}` was used: the template needs `local.timestamp`.
    pub timestamp: bool,
    /// The `{{user `x`}}` names, in order.
    pub users: Vec<String>,
    /// A function other than `env` was called (a variable using one becomes a local).
    pub calls_non_env: bool,
}

/// Where a string is: `env` is only allowed in variables, as in Packer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Place {
    Variable,
    Elsewhere,
}

/// Translates `s`; `locals` are the variables that became locals (`{{user}}` of one is
/// `local.NAME`). The error is a message for the whole string.
pub(crate) fn translate(
    s: &str,
    place: Place,
    locals: &BTreeSet<String>,
) -> Result<Translated, String> {
    let mut out = Translated::default();
    let mut rest = s;
    let mut trim_next = false;
    while let Some(open) = rest.find("{{") {
        let mut literal = &rest[..open];
        if trim_next {
            literal = literal.trim_start();
        }
        let after = &rest[open + 2..];
        let close = find_close(after).ok_or_else(|| {
            format!(
                "`{{{{` at `{}` is never closed with `}}}}`",
                excerpt(&rest[open..])
            )
        })?;
        let mut inner = &after[..close];
        let trim_before = inner.starts_with("- ") || inner == "-";
        if trim_before {
            inner = &inner[1..];
            literal = literal.trim_end();
        }
        trim_next = inner.ends_with(" -");
        if trim_next {
            inner = &inner[..inner.len() - 1];
        }
        escape_literal(literal, &mut out.hcl);
        let tokens = lex(inner)?;
        if tokens.iter().any(|t| matches!(t, Tok::Field(_))) || tokens.is_empty() {
            // Rendered while the build runs: kept as written.
            escape_literal(&rest[open..open + 2 + close + 2], &mut out.hcl);
        } else {
            let mut p = Pipe {
                toks: &tokens,
                i: 0,
                place,
                locals,
                out: &mut out,
            };
            let expr = p.pipeline()?;
            if p.i != tokens.len() {
                return Err(format!("unexpected `)` in `{{{{{inner}}}}}`"));
            }
            out.hcl.push_str("${");
            out.hcl.push_str(&expr);
            out.hcl.push('}');
        }
        rest = &after[close + 2..];
    }
    let literal = if trim_next { rest.trim_start() } else { rest };
    escape_literal(literal, &mut out.hcl);
    Ok(out)
}

fn excerpt(s: &str) -> String {
    s.chars().take(20).collect()
}

/// The offset of the `}}` closing an action, outside quotes.
fn find_close(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'`' => i += s[i + 1..].find('`')? + 1,
            b'"' => {
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'}' if b.get(i + 1) == Some(&b'}') => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

/// Text as it must appear inside an HCL quoted string.
pub(crate) fn escape_literal(s: &str, out: &mut String) {
    escape(s, out, false);
}

/// `s` inside an HCL quoted string; `${` and `%{` are escaped unless `live` (an HCL template
/// from a `*.pkr.json` file).
pub(crate) fn escape(s: &str, out: &mut String, live: bool) {
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '$' | '%' if !live && chars.peek() == Some(&'{') => {
                out.push(c);
                out.push(c);
            }
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
}

/// An HCL quoted string holding `s` literally.
pub(crate) fn quote(s: &str) -> String {
    let mut out = String::from("\"");
    escape_literal(s, &mut out);
    out.push('"');
    out
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Field(String),
    Str(String),
    Num(String),
    Pipe,
    Open,
    Close,
}

fn lex(s: &str) -> Result<Vec<Tok>, String> {
    let mut toks = Vec::new();
    let mut chars = s.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            c if c.is_whitespace() => {}
            '|' => toks.push(Tok::Pipe),
            '(' => toks.push(Tok::Open),
            ')' => toks.push(Tok::Close),
            '`' => {
                let end = s[i + 1..]
                    .find('`')
                    .ok_or_else(|| format!("unclosed ` in `{{{{{s}}}}}`"))?;
                toks.push(Tok::Str(s[i + 1..i + 1 + end].to_owned()));
                while chars.peek().is_some_and(|(j, _)| *j <= i + 1 + end) {
                    chars.next();
                }
            }
            '"' => {
                let mut v = String::new();
                let mut closed = false;
                while let Some((_, c)) = chars.next() {
                    match c {
                        '"' => {
                            closed = true;
                            break;
                        }
                        '\\' => match chars.next().map(|(_, c)| c) {
                            Some('n') => v.push('\n'),
                            Some('t') => v.push('\t'),
                            Some(c) => v.push(c),
                            None => break,
                        },
                        c => v.push(c),
                    }
                }
                if !closed {
                    return Err(format!("unclosed \" in `{{{{{s}}}}}`"));
                }
                toks.push(Tok::Str(v));
            }
            c if c == '.' || c == '$' || c.is_alphanumeric() || c == '_' || c == '-' => {
                let mut end = i + c.len_utf8();
                while let Some((j, d)) = chars.peek().copied() {
                    if d.is_alphanumeric()
                        || d == '_'
                        || d == '.'
                        || (c == '-' && d.is_ascii_digit())
                    {
                        end = j + d.len_utf8();
                        chars.next();
                    } else {
                        break;
                    }
                }
                let word = &s[i..end];
                toks.push(if c == '.' || c == '$' {
                    Tok::Field(word.to_owned())
                } else if c == '-' || c.is_ascii_digit() {
                    Tok::Num(word.to_owned())
                } else {
                    Tok::Ident(word.to_owned())
                });
            }
            c => return Err(format!("unexpected `{c}` in `{{{{{s}}}}}`")),
        }
    }
    Ok(toks)
}

/// A translated operand: an HCL expression, and the literal string when it is one.
struct Operand {
    expr: String,
    literal: Option<String>,
    number: Option<i64>,
}

struct Pipe<'a, 'o> {
    toks: &'a [Tok],
    i: usize,
    place: Place,
    locals: &'a BTreeSet<String>,
    out: &'o mut Translated,
}

impl Pipe<'_, '_> {
    fn pipeline(&mut self) -> Result<String, String> {
        let mut value: Option<Operand> = None;
        loop {
            let operand = self.command(value.take())?;
            value = Some(operand);
            if self.toks.get(self.i) == Some(&Tok::Pipe) {
                self.i += 1;
                continue;
            }
            break;
        }
        Ok(value.map(|v| v.expr).unwrap_or_default())
    }

    /// One command: a function and its arguments (with `piped` last), or a lone operand.
    fn command(&mut self, piped: Option<Operand>) -> Result<Operand, String> {
        let Some(Tok::Ident(name)) = self.toks.get(self.i).cloned() else {
            let operand = self.operand()?;
            if piped.is_some() {
                return Err("only a function can take a piped value".to_owned());
            }
            return Ok(operand);
        };
        self.i += 1;
        let mut args = Vec::new();
        while let Some(t) = self.toks.get(self.i) {
            if matches!(t, Tok::Pipe | Tok::Close) {
                break;
            }
            args.push(self.operand()?);
        }
        args.extend(piped);
        self.call(&name, args)
    }

    fn operand(&mut self) -> Result<Operand, String> {
        let t = self
            .toks
            .get(self.i)
            .cloned()
            .ok_or("an argument is missing")?;
        self.i += 1;
        Ok(match t {
            Tok::Str(s) => Operand {
                expr: quote(&s),
                literal: Some(s),
                number: None,
            },
            Tok::Num(n) => Operand {
                number: n.parse().ok(),
                expr: n,
                literal: None,
            },
            Tok::Open => {
                let expr = self.pipeline()?;
                if self.toks.get(self.i) != Some(&Tok::Close) {
                    return Err("a `(` is never closed".to_owned());
                }
                self.i += 1;
                Operand {
                    expr: format!("({expr})"),
                    literal: None,
                    number: None,
                }
            }
            Tok::Ident(name) => self.call(&name, Vec::new())?,
            Tok::Field(f) => return Err(format!("`{f}` cannot be used with functions here")),
            Tok::Pipe | Tok::Close => return Err("an argument is missing".to_owned()),
        })
    }

    fn call(&mut self, name: &str, args: Vec<Operand>) -> Result<Operand, String> {
        let arity = |n: usize| {
            if args.len() == n {
                Ok(())
            } else {
                Err(format!(
                    "`{name}` takes {n} argument{}, not {}",
                    if n == 1 { "" } else { "s" },
                    args.len()
                ))
            }
        };
        let literal = |i: usize| {
            args.get(i).and_then(|a| a.literal.clone()).ok_or_else(|| {
                format!("the argument of `{name}` must be a quoted name, as in {{{{{name} `x`}}}}")
            })
        };
        if name != "env" {
            self.out.calls_non_env = true;
        }
        let e = |i: usize| args[i].expr.clone();
        let expr = match name {
            "user" => {
                arity(1)?;
                let v = literal(0)?;
                if !is_identifier(&v) {
                    return Err(format!("`{v}` is not a valid variable name"));
                }
                self.out.users.push(v.clone());
                let root = if self.locals.contains(&v) {
                    "local"
                } else {
                    "var"
                };
                format!("{root}.{v}")
            }
            "env" => {
                arity(1)?;
                if self.place != Place::Variable {
                    return Err(
                        "`env` can only be used in the `variables` section, as in Packer"
                            .to_owned(),
                    );
                }
                format!("env({})", quote(&literal(0)?))
            }
            "timestamp" => {
                arity(0)?;
                self.out.timestamp = true;
                "local.timestamp".to_owned()
            }
            "isotime" | "strftime" if args.is_empty() => "timestamp()".to_owned(),
            "isotime" | "strftime" => {
                arity(1)?;
                format!(
                    "legacy_{}({})",
                    if name == "isotime" {
                        "isotime"
                    } else {
                        "strftime"
                    },
                    e(0)
                )
            }
            "template_dir" => (arity(0)?, "path.root".to_owned()).1,
            "pwd" => (arity(0)?, "path.cwd".to_owned()).1,
            "packer_version" => (arity(0)?, "packer.version".to_owned()).1,
            "uuid" => (arity(0)?, "uuidv4()".to_owned()).1,
            "build_name" => (arity(0)?, "source.name".to_owned()).1,
            "build_type" => (arity(0)?, "source.type".to_owned()).1,
            "build" => {
                arity(1)?;
                let field = literal(0)?;
                if !is_identifier(&field) {
                    return Err(format!("`{field}` is not a build field"));
                }
                format!("build.{field}")
            }
            "lower" | "upper" => (arity(1)?, format!("{name}({})", e(0))).1,
            // split STRING SEP N: the Nth part.
            "split" => {
                arity(3)?;
                format!("split({}, {})[{}]", e(1), e(0), e(2))
            }
            // replace OLD NEW N STRING (Go's strings.Replace); only N = -1 (all) has an HCL twin.
            "replace" => {
                arity(4)?;
                if args[2].number != Some(-1) {
                    return Err(
                        "only `replace` with -1 (replace all) can be translated; use `replace_all`"
                            .to_owned(),
                    );
                }
                format!("replace({}, {}, {})", e(3), e(0), e(1))
            }
            "replace_all" => (arity(3)?, format!("replace({}, {}, {})", e(2), e(0), e(1))).1,
            _ => {
                return Err(format!(
                    "unknown template function `{name}`: kiln translates {}",
                    FUNCTIONS
                        .iter()
                        .map(|f| format!("`{f}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
        };
        Ok(Operand {
            expr,
            literal: None,
            number: None,
        })
    }
}

/// Whether `s` is an HCL identifier.
pub(crate) fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_alphabetic() || c == '_')
        && chars.all(|c| c.is_alphanumeric() || c == '_' || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Result<String, String> {
        let locals = BTreeSet::from(["made".to_owned()]);
        translate(s, Place::Elsewhere, &locals).map(|t| t.hcl)
    }

    #[test]
    fn functions_become_hcl() {
        let table = [
            ("plain", "plain"),
            ("{{user `disk_size`}}", "${var.disk_size}"),
            ("{{ user \"made\" }}-x", "${local.made}-x"),
            ("out-{{timestamp}}", "out-${local.timestamp}"),
            ("{{isotime}}", "${timestamp()}"),
            (
                "{{isotime \"2006-01-02\"}}",
                "${legacy_isotime(\"2006-01-02\")}",
            ),
            ("{{ strftime `%Y` }}", "${legacy_strftime(\"%Y\")}"),
            ("{{template_dir}}/http", "${path.root}/http"),
            ("{{pwd}}", "${path.cwd}"),
            (
                "{{build_name}}-{{build_type}}",
                "${source.name}-${source.type}",
            ),
            ("{{uuid}}", "${uuidv4()}"),
            ("{{packer_version}}", "${packer.version}"),
            ("{{ build `ID` }}", "${build.ID}"),
            ("{{ user `os` | upper }}", "${upper(var.os)}"),
            ("{{ lower (user `os`) }}", "${lower((var.os))}"),
            ("{{ split `a-b` `-` 0 }}", "${split(\"-\", \"a-b\")[0]}"),
            (
                "{{ replace_all `-` `_` (user `os`) }}",
                "${replace((var.os), \"-\", \"_\")}",
            ),
            (
                "{{ user `os` | replace `-` `_` -1 }}",
                "${replace(var.os, \"-\", \"_\")}",
            ),
        ];
        for (legacy, hcl) in table {
            assert_eq!(t(legacy).as_deref(), Ok(hcl), "{legacy}");
        }
    }

    #[test]
    fn runtime_fields_and_hcl_syntax_stay_text() {
        let table = [
            (
                "<wait>{{ .HTTPIP }}:{{ .HTTPPort }}<enter>",
                "<wait>{{ .HTTPIP }}:{{ .HTTPPort }}<enter>",
            ),
            (
                "{{ .Vars }} sudo -E sh '{{ .Path }}'",
                "{{ .Vars }} sudo -E sh '{{ .Path }}'",
            ),
            (
                "echo ${HOME} %{x} \"q\" \\",
                "echo $${HOME} %%{x} \\\"q\\\" \\\\",
            ),
            ("a\nb\tc", "a\\nb\\tc"),
            ("{{- user `a` -}} b", "${var.a}b"),
        ];
        for (legacy, hcl) in table {
            assert_eq!(t(legacy).as_deref(), Ok(hcl), "{legacy}");
        }
    }

    #[test]
    fn what_is_used_is_recorded() {
        let none = BTreeSet::new();
        let v = translate("{{env `HOME`}}", Place::Variable, &none).unwrap();
        assert_eq!(v.hcl, "${env(\"HOME\")}");
        assert!(!v.calls_non_env);
        let v = translate("{{user `a`}}{{timestamp}}", Place::Variable, &none).unwrap();
        assert!(v.calls_non_env && v.timestamp);
        assert_eq!(v.users, ["a"]);
    }

    #[test]
    fn mistakes_are_named() {
        let table = [
            (
                "{{ env `HOME` }}",
                "only be used in the `variables` section",
            ),
            ("{{ nosuch }}", "unknown template function `nosuch`"),
            ("{{ user }}", "`user` takes 1 argument, not 0"),
            ("{{ user `a`", "never closed"),
            ("{{ replace `a` `b` 1 `s` }}", "-1"),
            ("{{ user (user `a`) }}", "must be a quoted name"),
            ("{{ user `a b` }}", "not a valid variable name"),
        ];
        for (legacy, says) in table {
            let e = t(legacy).unwrap_err();
            assert!(e.contains(says), "{legacy}: {e}");
        }
    }
}
