//! Turning byte offsets into `file:line:col` and rendering diagnostics with their source line.
//! Kept apart so every other template module only builds messages. "Did you mean" suggestions
//! come from [`crate::suggest`].

use std::fmt::Write as _;
use std::ops::Range;
use std::path::PathBuf;

pub(crate) use crate::suggest::{did_you_mean, suggest};

use super::{Diagnostic, Location};

/// One template file: its path as the user named it, and its text.
#[derive(Debug)]
pub(crate) struct SourceFile {
    pub path: PathBuf,
    /// The HCL text parsed (for a legacy JSON template, its upgrade).
    pub text: String,
    /// For a legacy JSON template: the JSON text, where locations point.
    pub origin: Option<Origin>,
}

/// The JSON a file's HCL text was made from ([`super::legacy`]).
#[derive(Debug)]
pub(crate) struct Origin {
    pub json: String,
    /// `(hcl_offset, json_offset)`, in increasing `hcl_offset` order.
    pub map: Vec<(usize, usize)>,
    /// A legacy JSON template (not `*.pkr.json`): its options are read with Packer's legacy
    /// weak typing ([`super::options`]).
    pub legacy: bool,
}

impl SourceFile {
    /// A file read as it is.
    pub fn new(path: PathBuf, text: String) -> Self {
        Self {
            path,
            text,
            origin: None,
        }
    }

    /// The 1-based line and column (in characters) of byte `offset` of [`Self::text`]; for
    /// a legacy JSON template, of the JSON key or value it came from.
    pub fn location(&self, offset: usize) -> Location {
        let (text, offset) = match &self.origin {
            Some(o) => (&o.json, super::legacy::json_offset(&o.map, offset)),
            None => (&self.text, offset),
        };
        let offset = offset.min(text.len());
        let before = text.get(..offset).unwrap_or(text);
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        Location {
            file: self.path.clone(),
            line: before.matches('\n').count() + 1,
            col: before[line_start..].chars().count() + 1,
        }
    }

    /// The location where `span` starts; the top of the file when the parser kept no span.
    pub fn at(&self, span: Option<Range<usize>>) -> Location {
        self.location(span.map_or(0, |s| s.start))
    }
}

impl Diagnostic {
    /// A diagnostic without a hint.
    pub fn new(location: Location, message: impl Into<String>) -> Self {
        Self {
            location,
            message: message.into(),
            hint: None,
        }
    }

    /// Adds a hint (printed as `hint: ...`).
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Renders `file:line:col: message`, then (given the file's text) the source line and a
    /// caret under the column, then `hint: ...` if there is one.
    pub fn render(&self, source_text: Option<&str>) -> String {
        let mut out = format!("{}: {}", self.location, self.message);
        let line = self.location.line;
        if let Some(text) = source_text.filter(|_| line > 0)
            && let Some(src_line) = text.lines().nth(line - 1)
        {
            let gutter = line.to_string();
            let pad = " ".repeat(gutter.len());
            // Copy tabs so the caret lines up under tab-indented text.
            let indent: String = src_line
                .chars()
                .take(self.location.col.saturating_sub(1))
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            let _ = write!(out, "\n {gutter} | {src_line}\n {pad} | {indent}^");
        }
        if let Some(hint) = &self.hint {
            let _ = write!(out, "\nhint: {hint}");
        }
        out
    }
}

/// The location used for problems on the command line (`-var`), which have no file position.
pub(crate) fn command_line() -> Location {
    Location {
        file: PathBuf::from("command line"),
        line: 0,
        col: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_become_lines_and_columns() {
        let f = SourceFile {
            path: "t.pkr.hcl".into(),
            text: "a = 1\n  bé = 2\n".into(),
            origin: None,
        };
        let table = [
            (0, 1, 1, "start of file"),
            (4, 1, 5, "inside the first line"),
            (6, 2, 1, "start of the second line"),
            (11, 2, 5, "after a two-byte character"),
        ];
        for (offset, line, col, reason) in table {
            let loc = f.location(offset);
            assert_eq!((loc.line, loc.col), (line, col), "{reason}");
        }
    }

    #[test]
    fn render_shows_line_caret_and_hint() {
        let d = Diagnostic::new(
            Location {
                file: "t.pkr.hcl".into(),
                line: 2,
                col: 3,
            },
            "unknown option `iso_ur`",
        )
        .with_hint("did you mean `iso_url`?");
        let text = "source \"qemu\" \"x\" {\n  iso_ur = \"a\"\n}\n";
        assert_eq!(
            d.render(Some(text)),
            "t.pkr.hcl:2:3: unknown option `iso_ur`\n 2 |   iso_ur = \"a\"\n   |   ^\nhint: did you mean `iso_url`?"
        );
        assert_eq!(
            d.render(None),
            "t.pkr.hcl:2:3: unknown option `iso_ur`\nhint: did you mean `iso_url`?"
        );
    }

    #[test]
    fn command_line_problems_have_no_position() {
        let d = Diagnostic::new(command_line(), "m");
        assert_eq!(d.render(Some("x")), "command line: m");
    }
}
