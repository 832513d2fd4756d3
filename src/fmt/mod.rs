//! `kiln fmt`: rewrites `*.pkr.hcl` and `*.pkrvars.hcl` files in canonical layout, as
//! `packer fmt` does.
//!
//! The layout rules are in [`format`]. Around them: a file is formatted only if it parses,
//! and the result must mean the same as the input (both are parsed and compared, strings and
//! templates included) before anything is written, so a formatting bug can never change a
//! template. Writes go to a temporary file beside the original, keep its permissions and
//! replace it by a rename.

mod format;

use std::io::{self, Read as _, Write as _};
use std::path::{Path, PathBuf};

use crate::ui::Ui;

pub use format::format as format_layout;

/// What `kiln fmt` does with what it finds.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Only report the files that would change (exit code 3 if any); write nothing.
    pub check: bool,
    /// Print a unified diff of each change.
    pub diff: bool,
    /// Write changes back (`-write=false`: print the formatted text instead).
    pub write: bool,
    /// Also format files in subdirectories of the directories given.
    pub recursive: bool,
}

/// Why `kiln fmt` failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading a file, or standard input, failed.
    #[error("Cannot read `{}`", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// Listing a directory failed.
    #[error("Cannot list directory `{}`", path.display())]
    ListDir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// Writing the formatted file (or standard output) failed.
    #[error("Cannot write `{}`", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// Some files could not be formatted; each was reported and left untouched.
    #[error("{count} file{} could not be formatted", if *count == 1 { "" } else { "s" })]
    Failed { count: usize },
    /// `-check` found files that are not formatted (exit code 3, as Packer).
    #[error("{count} file{} not formatted", if *count == 1 { " is" } else { "s are" })]
    NotFormatted { count: usize },
}

impl Error {
    /// The process exit code: 3 when `-check` found unformatted files (Packer's), else 1.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::NotFormatted { .. } => 3,
            _ => 1,
        }
    }
}

/// Why one file's text cannot be formatted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SourceError {
    /// The text is not valid HCL.
    #[error("{line}:{col}: {message}")]
    Parse {
        line: usize,
        col: usize,
        message: String,
    },
    /// The formatted text would mean something else: a bug in kiln, never written.
    #[error(
        "formatting would change the meaning of this file; it was left as it is (a kiln bug, please report it)"
    )]
    Meaning,
}

/// Formats HCL text: the canonical layout, checked to mean the same as `src`.
pub fn format_source(src: &str) -> Result<String, SourceError> {
    let before = parse(src)?;
    let out = format::format(src).map_err(|e| {
        let (line, col) = line_col(src, e.offset);
        SourceError::Parse {
            line,
            col,
            message: e.message.to_owned(),
        }
    })?;
    match parse(&out) {
        Ok(after) if after == before => Ok(out),
        _ => Err(SourceError::Meaning),
    }
}

fn line_col(src: &str, offset: usize) -> (usize, usize) {
    let before = &src[..offset.min(src.len())];
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (
        before.matches('\n').count() + 1,
        before[line_start..].chars().count() + 1,
    )
}

/// The body of `src` with every template parsed, so two bodies compare equal exactly when
/// they mean the same, whatever the spaces inside `${ }`.
fn parse(src: &str) -> Result<hcl::Body, SourceError> {
    hcl::edit::parser::parse_body(src).map_err(|e| SourceError::Parse {
        line: e.location().line(),
        col: e.location().column(),
        message: e.message().to_owned(),
    })?;
    let mut body: hcl::Body = hcl::parse(src).map_err(|e| SourceError::Parse {
        line: 0,
        col: 0,
        message: e.to_string(),
    })?;
    normalize_body(&mut body);
    Ok(body)
}

fn normalize_body(body: &mut hcl::Body) {
    for s in body.iter_mut() {
        match s {
            hcl::Structure::Attribute(a) => normalize(&mut a.expr),
            hcl::Structure::Block(b) => normalize_body(&mut b.body),
        }
    }
}

fn normalize(e: &mut hcl::Expression) {
    use hcl::Expression as E;
    match e {
        E::TemplateExpr(t) => {
            let parsed = hcl::Template::from_expr(t).map(|t| format!("{t:?}"));
            *e = E::String(parsed.unwrap_or_else(|err| format!("unparsable template: {err}")));
        }
        E::Array(items) => items.iter_mut().for_each(normalize),
        E::Object(o) => {
            let items = std::mem::take(o);
            for (mut k, mut v) in items {
                if let hcl::ObjectKey::Expression(ke) = &mut k {
                    normalize(ke);
                }
                normalize(&mut v);
                o.insert(k, v);
            }
        }
        E::Traversal(t) => {
            normalize(&mut t.expr);
            for op in &mut t.operators {
                if let hcl::expr::TraversalOperator::Index(i) = op {
                    normalize(i);
                }
            }
        }
        E::FuncCall(f) => f.args.iter_mut().for_each(normalize),
        E::Parenthesis(p) => normalize(p),
        E::Conditional(c) => {
            normalize(&mut c.cond_expr);
            normalize(&mut c.true_expr);
            normalize(&mut c.false_expr);
        }
        E::Operation(op) => match op.as_mut() {
            hcl::expr::Operation::Unary(u) => normalize(&mut u.expr),
            hcl::expr::Operation::Binary(b) => {
                normalize(&mut b.lhs_expr);
                normalize(&mut b.rhs_expr);
            }
        },
        E::ForExpr(f) => {
            normalize(&mut f.collection_expr);
            if let Some(k) = &mut f.key_expr {
                normalize(k);
            }
            normalize(&mut f.value_expr);
            if let Some(c) = &mut f.cond_expr {
                normalize(c);
            }
        }
        _ => {}
    }
}

/// Whether a directory entry is formatted: `*.pkr.hcl` and `*.pkrvars.hcl`.
fn is_template(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.ends_with(".pkr.hcl") || n.ends_with(".pkrvars.hcl"))
}

/// The files to format under `dir`, sorted; subdirectories too when `recursive`.
fn files_in(dir: &Path, recursive: bool, out: &mut Vec<PathBuf>) -> Result<(), Error> {
    let list_err = |source| Error::ListDir {
        path: dir.to_path_buf(),
        source,
    };
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(list_err)?
        .collect::<Result<_, _>>()
        .map_err(list_err)?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let kind = entry.file_type().map_err(list_err)?;
        if kind.is_dir() {
            if recursive {
                files_in(&path, recursive, out)?;
            }
        } else if is_template(&path) {
            out.push(path);
        }
    }
    Ok(())
}

/// Runs `kiln fmt` on `paths` (files, directories, or `-` for standard input), reporting
/// through `ui`: the names of changed files, diffs, or formatted text.
pub fn run(paths: &[PathBuf], opts: &Options, ui: &Ui) -> Result<(), Error> {
    let mut files = Vec::new();
    for p in paths {
        if p.as_os_str() == "-" {
            files.push(p.clone());
        } else if p.is_dir() {
            files_in(p, opts.recursive, &mut files)?;
        } else {
            files.push(p.clone());
        }
    }
    let mut changed = 0;
    let mut failed = 0;
    for path in &files {
        let stdin = path.as_os_str() == "-";
        let text = if stdin {
            let mut text = String::new();
            io::stdin()
                .read_to_string(&mut text)
                .map_err(|source| Error::Read {
                    path: path.clone(),
                    source,
                })?;
            text
        } else {
            std::fs::read_to_string(path).map_err(|source| Error::Read {
                path: path.clone(),
                source,
            })?
        };
        let formatted = match format_source(&text) {
            Ok(f) => f,
            Err(e) => {
                failed += 1;
                let name = if stdin {
                    "<stdin>".into()
                } else {
                    path.display().to_string()
                };
                ui.raw(
                    true,
                    match e {
                        SourceError::Parse { .. } => format!("error: {name}:{e}"),
                        SourceError::Meaning => format!("error: {name}: {e}"),
                    },
                );
                continue;
            }
        };
        let name = if stdin {
            "<stdin>".into()
        } else {
            path.display().to_string()
        };
        if formatted != text {
            changed += 1;
            if !stdin && (opts.check || opts.write) {
                ui.raw(false, &name);
            }
            if opts.diff {
                ui.raw(false, unified_diff(&text, &formatted, &name));
            }
        }
        if opts.check {
            continue;
        }
        // Standard input, and files with `-write=false`, are printed (their diff instead
        // with `-diff`).
        if stdin || !opts.write {
            if !opts.diff {
                // `raw` ends the text with a newline: do not double the file's own.
                ui.raw(false, formatted.strip_suffix('\n').unwrap_or(&formatted));
            }
        } else if formatted != text {
            write_atomically(path, &formatted)?;
        }
    }
    if failed > 0 {
        return Err(Error::Failed { count: failed });
    }
    if opts.check && changed > 0 {
        return Err(Error::NotFormatted { count: changed });
    }
    Ok(())
}

fn unified_diff(old: &str, new: &str, name: &str) -> String {
    similar::TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(3)
        .header(&format!("old/{name}"), &format!("new/{name}"))
        .to_string()
        .trim_end()
        .to_owned()
}

/// Replaces `path` with `text` through a temporary file in the same directory, keeping the
/// file's permissions. A symlink is followed: its target is rewritten and the link stays (one
/// shared template linked from several directories, as in `boot-configs/`).
fn write_atomically(path: &Path, text: &str) -> Result<(), Error> {
    let write_err = |source| Error::Write {
        path: path.to_path_buf(),
        source,
    };
    let resolved = std::fs::canonicalize(path).map_err(write_err)?;
    let path = resolved.as_path();
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let permissions = std::fs::metadata(path).map_err(write_err)?.permissions();
    let mut tmp = tempfile::Builder::new()
        .prefix(".kiln-fmt-")
        .tempfile_in(dir)
        .map_err(write_err)?;
    tmp.write_all(text.as_bytes()).map_err(write_err)?;
    tmp.as_file().sync_all().map_err(write_err)?;
    std::fs::set_permissions(tmp.path(), permissions).map_err(write_err)?;
    tmp.persist(path).map_err(|e| write_err(e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unparsable_text_is_located() {
        let e = format_source("source \"qemu\" \"x\" {\n  a = \n}\n").expect_err("bad");
        let SourceError::Parse { line, col, .. } = e else {
            panic!("not a parse error: {e:?}");
        };
        assert_eq!((line, col), (2, 7));
    }

    #[test]
    fn spaces_inside_interpolations_do_not_change_meaning() {
        let src = "a = \"${ upper(var.x) }\"\nb = <<EOF\n${ 1 + 2 }\nEOF\n";
        assert_eq!(
            format_source(src).as_deref(),
            Ok("a = \"${upper(var.x)}\"\nb = <<EOF\n${1 + 2}\nEOF\n")
        );
        assert_ne!(
            parse("a = \"x \"\n"),
            parse("a = \"x\"\n"),
            "literal text counts"
        );
    }

    /// Every template in the repository: parseable, idempotent and meaning-preserving after
    /// formatting.
    #[test]
    fn repository_templates_round_trip() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut files = Vec::new();
        for dir in ["tests/fixtures", "boot-configs", "examples"] {
            let dir = root.join(dir);
            if dir.is_dir() {
                files_in(&dir, true, &mut files).expect("lists");
            }
        }
        let mut checked = 0;
        for f in files {
            let text = std::fs::read_to_string(&f).expect("reads");
            let name = f.to_string_lossy();
            // The syntax-error fixtures cannot be parsed: formatting them must fail.
            if name.contains("syntax-error") || name.contains("unclosed-block") {
                assert!(format_source(&text).is_err(), "{}", f.display());
                continue;
            }
            let once = format_source(&text).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
            let twice = format_source(&once).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
            assert_eq!(once, twice, "{}: idempotent", f.display());
            checked += 1;
        }
        assert!(checked >= 10, "only {checked} templates found");
    }
}
