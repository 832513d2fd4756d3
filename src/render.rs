//! Packer's legacy `{{ .Name }}` placeholders, filled in while a build runs.
//!
//! HCL leaves this text alone; it stands for values only known then: the HTTP server's
//! address in `boot_command`, the script path in `execute_command`, the SSH host in a
//! provisioner (`build.Host` is written `{{ .Host }}` by the template loader). One scanner
//! serves every place: [`render_mapped`] (boot commands, whose errors point back into the
//! original text), [`render`] (every placeholder must be known) and [`render_known`] (unknown
//! ones stay as written: a shell command may hold a `docker inspect -f '{{.State}}'`).

use std::borrow::Cow;

/// A placeholder that could not be filled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// `{{` without `}}`.
    #[error("`{{{{` at byte {offset} is never closed with `}}}}`")]
    Unclosed { offset: usize },
    /// A placeholder with no value here (e.g. `{{ .Foo }}`, `{{ timestamp }}`).
    #[error("unknown variable `{placeholder}`")]
    Unknown { placeholder: String, offset: usize },
}

/// `text` with each `{{ .Name }}` (spaces inside the braces optional) replaced by
/// `lookup("Name")`, plus, for each byte of the output, the offset in `text` it came from (a
/// byte produced by a placeholder points at its `{{`).
pub fn render_mapped<'a>(
    text: &str,
    lookup: impl Fn(&str) -> Option<Cow<'a, str>>,
) -> Result<(String, Vec<usize>), Error> {
    let mut out = String::with_capacity(text.len());
    let mut origin = Vec::with_capacity(text.len());
    let mut pos = 0;
    while let Some(found) = text[pos..].find("{{") {
        let open = pos + found;
        out.push_str(&text[pos..open]);
        origin.extend(pos..open);
        let close = text[open + 2..]
            .find("}}")
            .map(|i| open + 2 + i)
            .ok_or(Error::Unclosed { offset: open })?;
        let inner = text[open + 2..close].trim();
        let value = inner
            .strip_prefix('.')
            .filter(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
            .and_then(&lookup)
            .ok_or_else(|| Error::Unknown {
                placeholder: format!("{{{{ {inner} }}}}"),
                offset: open,
            })?;
        out.push_str(&value);
        origin.resize(origin.len() + value.len(), open);
        pos = close + 2;
    }
    out.push_str(&text[pos..]);
    origin.extend(pos..text.len());
    Ok((out, origin))
}

/// `text` with every placeholder filled; an unknown one is an error.
pub fn render<'a>(
    text: &str,
    lookup: impl Fn(&str) -> Option<Cow<'a, str>>,
) -> Result<String, Error> {
    render_mapped(text, lookup).map(|(s, _)| s)
}

/// `text` with the placeholders `lookup` knows filled; the others (and an unclosed `{{`) are
/// kept as written.
pub fn render_known<'a>(text: &str, lookup: impl Fn(&str) -> Option<Cow<'a, str>>) -> String {
    known(text, &lookup)
}

fn known<'a>(text: &str, lookup: &dyn Fn(&str) -> Option<Cow<'a, str>>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    loop {
        match render(rest, lookup) {
            Ok(done) => {
                out.push_str(&done);
                return out;
            }
            Err(Error::Unclosed { .. }) => {
                // Everything before the unclosed `{{` renders on its own.
                let cut = rest.rfind("{{").unwrap_or(0);
                out.push_str(&known(&rest[..cut], lookup));
                out.push_str(&rest[cut..]);
                return out;
            }
            Err(Error::Unknown {
                placeholder: _,
                offset,
            }) => {
                let end = rest[offset..]
                    .find("}}")
                    .map_or(rest.len(), |i| offset + i + 2);
                out.push_str(&known(&rest[..offset], lookup));
                out.push_str(&rest[offset..end]);
                rest = &rest[end..];
            }
        }
    }
}

/// The placeholder starting at `offset` of `text`, as written (`{{.Foo}}`).
pub fn written(text: &str, offset: usize) -> &str {
    let rest = text.get(offset..).unwrap_or("");
    rest.find("}}").map_or(rest, |i| &rest[..i + 2])
}

/// A lookup over `(name, value)` pairs.
pub fn pairs<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<Cow<'a, str>> {
    move |name| {
        vars.iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| Cow::Borrowed(*v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VARS: &[(&str, &str)] = &[("HTTPIP", "10.0.2.2"), ("HTTPPort", "8080"), ("Empty", "")];

    #[test]
    fn render_table() {
        let table = [
            ("no placeholders", "plain", Ok("plain")),
            (
                "spaces optional",
                "{{.HTTPIP}}:{{ .HTTPPort }}",
                Ok("10.0.2.2:8080"),
            ),
            ("empty value", "a{{ .Empty }}b", Ok("ab")),
            (
                "unknown field",
                "x {{ .Nope }}",
                Err(Error::Unknown {
                    placeholder: "{{ .Nope }}".into(),
                    offset: 2,
                }),
            ),
            (
                "not a field",
                "{{ timestamp }}",
                Err(Error::Unknown {
                    placeholder: "{{ timestamp }}".into(),
                    offset: 0,
                }),
            ),
            (
                "unclosed",
                "ab {{ .HTTPIP",
                Err(Error::Unclosed { offset: 3 }),
            ),
        ];
        for (reason, text, want) in table {
            let got = render(text, pairs(VARS));
            assert_eq!(got, want.map(str::to_owned), "{reason}");
        }
    }

    #[test]
    fn origins_point_back_into_the_text() {
        let (out, origin) = render_mapped("a{{ .HTTPPort }}b", pairs(VARS)).expect("renders");
        assert_eq!(out, "a8080b");
        assert_eq!(origin, [0, 1, 1, 1, 1, 16]);
    }

    #[test]
    fn render_known_keeps_what_it_does_not_know() {
        let table = [
            (
                "docker format kept, known filled",
                "docker inspect -f '{{.State}}' {{ .HTTPIP }}",
                "docker inspect -f '{{.State}}' 10.0.2.2",
            ),
            ("unclosed kept", "{{ .HTTPIP }} {{ oops", "10.0.2.2 {{ oops"),
            ("two unknown", "{{a}}{{ .HTTPPort }}{{b}}", "{{a}}8080{{b}}"),
        ];
        for (reason, text, want) in table {
            assert_eq!(render_known(text, pairs(VARS)), want, "{reason}");
        }
    }
}
