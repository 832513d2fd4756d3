//! The loading pipeline: read the files, parse them all, then declare variables, apply `-var`,
//! evaluate locals in dependency order, and read sources and builds, collecting every problem.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use hcl::Value;
use hcl::edit::Span;
use hcl::edit::expr::Expression;
use hcl::edit::structure::{Block, Body};

use super::build::{Declared, build};
use super::diag::SourceFile;
use super::eval::{Scope, local_refs};
use super::options::{Options, reject_blocks, unknown};
use super::sources::{self, read_source};
use super::variables::{self, Inputs, VarDecl, VarFile};
use super::vartype::VarType;
use super::{Diagnostic, Error, Location, Template};
use crate::builder::SourceConfig;

/// Top-level blocks Packer knows that kiln does not read yet.
const UNSUPPORTED_TOP: &[&str] = &["data", "variables", "hcp_packer_registry"];
/// Top-level blocks kiln reads.
const TOP: &[&str] = &["packer", "variable", "locals", "local", "source", "build"];

pub(crate) fn load(path: &Path, inputs: &Inputs, stage: Stage) -> Result<Template, Error> {
    let files = read_files(path)?;
    let mut var_paths = auto_var_files(path)?;
    var_paths.extend(inputs.var_files.iter().cloned());
    let mut diags = Vec::new();
    let mut parsed = Vec::new();
    for file in &files {
        match parse(file) {
            Ok(body) => parsed.push((file, body)),
            Err(d) => diags.push(d),
        }
    }
    let mut var_files = Vec::new();
    for p in var_paths {
        let text = std::fs::read_to_string(&p).map_err(|source| Error::ReadFile {
            path: p.clone(),
            source,
        })?;
        let file = SourceFile { path: p, text };
        if file.path.extension().is_some_and(|e| e == "json") {
            match serde_json::from_str::<serde_json::Value>(&file.text) {
                Ok(serde_json::Value::Object(map)) => var_files.push(VarFile::Json(file, map)),
                Ok(_) => diags.push(Diagnostic::new(
                    file.location(0),
                    "a JSON var file must hold one object: `{\"name\": \"value\"}`",
                )),
                Err(e) => diags.push(Diagnostic::new(
                    Location {
                        file: file.path.clone(),
                        line: e.line(),
                        col: e.column(),
                    },
                    format!("syntax error: {e}"),
                )),
            }
            continue;
        }
        match parse(&file) {
            Ok(body) => var_files.push(VarFile::Hcl(file, body)),
            Err(d) => diags.push(d),
        }
    }
    if !diags.is_empty() {
        // Later checks would only repeat these as missing names.
        return Err(Error::Invalid(diags));
    }
    let dir = if path.is_dir() {
        path
    } else {
        path.parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
    };
    let template_dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_owned());
    if stage == Stage::Syntax {
        return Ok(Template::empty(path));
    }
    let (mut template, mut diags) = check(&parsed, &var_files, inputs, &template_dir, path);
    if diags.is_empty() {
        for json in json_templates(path) {
            template.warnings.push(Diagnostic::new(
                Location {
                    file: json,
                    line: 0,
                    col: 0,
                },
                "kiln does not read `*.pkr.json` templates yet: this file was skipped",
            ));
        }
        return Ok(template);
    }
    diags.sort_by(|a, b| {
        let key = |d: &Diagnostic| (d.location.file.clone(), d.location.line, d.location.col);
        key(a).cmp(&key(b))
    });
    Err(Error::Invalid(diags))
}

/// How far `load` goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Parse every file, nothing more (`validate -syntax-only`).
    Syntax,
    /// Everything: variables, types, references, options.
    Full,
}

fn parse(file: &SourceFile) -> Result<Body, Diagnostic> {
    hcl::edit::parser::parse_body(&file.text).map_err(|e| {
        let d = Diagnostic::new(
            Location {
                file: file.path.clone(),
                line: e.location().line(),
                col: e.location().column(),
            },
            format!("syntax error: {}", e.message()),
        );
        match bracket_hint(file) {
            Some(hint) => d.with_hint(hint),
            None => d,
        }
    })
}

/// Where the bracket a syntax error is about was opened, with that line, when the parser's
/// position is elsewhere (an unclosed block is reported at the end of the file).
fn bracket_hint(file: &SourceFile) -> Option<String> {
    let line_of = |offset: usize| {
        let at = file.location(offset);
        let text = file.text.lines().nth(at.line - 1).unwrap_or("").trim();
        (at, text.to_owned())
    };
    Some(match super::brackets::problem(&file.text)? {
        super::brackets::Problem::Unclosed { open, bracket } => {
            let (at, text) = line_of(open);
            format!(
                "the `{bracket}` opened at line {}, column {} is never closed: `{text}`",
                at.line, at.col
            )
        }
        super::brackets::Problem::Mismatched {
            open,
            bracket,
            at,
            closer,
        } => {
            let (opened, text) = line_of(open);
            let closed = file.location(at);
            format!(
                "the `{closer}` at line {}, column {} closes the `{bracket}` opened at line {}, \
                 column {} (`{text}`): a closing bracket is missing or extra",
                closed.line, closed.col, opened.line, opened.col
            )
        }
    })
}

/// The `*.pkr.json` files of a template directory (Packer's JSON syntax, not read by kiln).
fn json_templates(path: &Path) -> Vec<PathBuf> {
    if !path.is_dir() {
        return Vec::new();
    }
    files_ending(path, &[".pkr.json"]).unwrap_or_default()
}

/// The `*.auto.pkrvars.hcl` / `*.auto.pkrvars.json` files of a template directory, in name
/// order (none for a single template file, as in Packer).
fn auto_var_files(path: &Path) -> Result<Vec<PathBuf>, Error> {
    if !path.is_dir() {
        return Ok(Vec::new());
    }
    files_ending(path, &[".auto.pkrvars.hcl", ".auto.pkrvars.json"])
}

/// The files of directory `dir` whose names end with one of `suffixes`, in name order.
fn files_ending(dir: &Path, suffixes: &[&str]) -> Result<Vec<PathBuf>, Error> {
    let list_err = |source| Error::ListDir {
        path: dir.to_owned(),
        source,
    };
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(list_err)? {
        let p = entry.map_err(list_err)?.path();
        let name = p.to_string_lossy();
        if suffixes.iter().any(|s| name.ends_with(s)) && p.is_file() {
            found.push(p);
        }
    }
    found.sort();
    Ok(found)
}

/// The `*.pkr.hcl` files of `path` (a file, or a directory read in name order).
fn read_files(path: &Path) -> Result<Vec<SourceFile>, Error> {
    let meta = std::fs::metadata(path).map_err(|source| Error::ReadFile {
        path: path.to_owned(),
        source,
    })?;
    let paths = if meta.is_dir() {
        let found = files_ending(path, &[".pkr.hcl"])?;
        if found.is_empty() {
            return Err(Error::NoTemplates {
                path: path.to_owned(),
            });
        }
        found
    } else {
        vec![path.to_owned()]
    };
    paths
        .into_iter()
        .map(|p| match std::fs::read_to_string(&p) {
            Ok(text) => Ok(SourceFile { path: p, text }),
            Err(source) => Err(Error::ReadFile { path: p, source }),
        })
        .collect()
}

/// Everything after parsing; returns the template and the problems found.
fn check(
    parsed: &[(&SourceFile, Body)],
    var_files: &[VarFile],
    inputs: &Inputs,
    template_dir: &Path,
    path: &Path,
) -> (Template, Vec<Diagnostic>) {
    let mut d = Vec::new();
    let mut var_decls: BTreeMap<String, VarDecl> = BTreeMap::new();
    let mut local_attrs: BTreeMap<String, LocalDef> = BTreeMap::new();
    let mut warnings = Vec::new();
    let mut said_plugins = false;
    let mut kinded: Vec<(&sources::Kind, &SourceFile, &Block, String)> = Vec::new();
    let mut declared = Declared::new();
    let mut builds = Vec::new();
    let mut broken: BTreeSet<String> = BTreeSet::new();
    let constants = Scope::constants();

    for (file, body) in parsed {
        for attr in body.attributes() {
            let at = file.at(attr.key.span());
            d.push(Diagnostic::new(
                at,
                format!(
                    "unexpected option `{}` outside of a block",
                    attr.key.as_str()
                ),
            ));
        }
        for block in body.blocks() {
            let ident = block.ident.as_str();
            let at = file.at(block.ident.span());
            let labels: Vec<&str> = block.labels.iter().map(|l| l.as_str()).collect();
            match (ident, labels.as_slice()) {
                ("variable", [name]) => {
                    if let Some(first) = var_decls.get(*name) {
                        d.push(twice("variable", name, at, first.file, first.block));
                        continue;
                    }
                    let decl = variables::declare(file, block, &constants, &mut d);
                    if decl.is_none() {
                        // Its type was reported; uses of it are not reported again.
                        broken.insert((*name).to_owned());
                    }
                    var_decls.insert(
                        (*name).to_owned(),
                        decl.unwrap_or(VarDecl {
                            file,
                            block,
                            kind: VarType::Any,
                            sensitive: true,
                            description: None,
                        }),
                    );
                }
                ("locals", []) => {
                    reject_blocks(file, &block.body, &[], &mut d);
                    for attr in block.body.attributes() {
                        let def = LocalDef {
                            file,
                            at: file.at(attr.key.span()),
                            expr: &attr.value,
                            sensitive: false,
                        };
                        define_local(&mut local_attrs, attr.key.as_str(), def, &mut d);
                    }
                }
                ("local", [name]) => {
                    let o = Options::read(
                        file,
                        &constants,
                        &block.body,
                        at.clone(),
                        &["expression", "sensitive"],
                        &[],
                        &mut d,
                    );
                    reject_blocks(file, &block.body, &[], &mut d);
                    let sensitive = o.bool("sensitive", &mut d).unwrap_or(false);
                    match block.body.get_attribute("expression") {
                        Some(attr) => {
                            let def = LocalDef {
                                file,
                                at,
                                expr: &attr.value,
                                sensitive,
                            };
                            define_local(&mut local_attrs, name, def, &mut d);
                        }
                        None => o.missing("expression", "", &mut d),
                    }
                }
                ("packer", []) => {
                    let o = Options::read(
                        file,
                        &constants,
                        &block.body,
                        at.clone(),
                        &["required_version"],
                        &[],
                        &mut d,
                    );
                    let _ = o.string("required_version", &mut d);
                    for inner in block.body.blocks() {
                        if inner.ident.as_str() == "required_plugins" {
                            if !said_plugins {
                                said_plugins = true;
                                warnings.push(Diagnostic::new(
                                    file.at(inner.ident.span()),
                                    "`required_plugins` is not needed: kiln's builders, \
                                     provisioners and post-processors are built in",
                                ));
                            }
                        } else {
                            d.push(unknown(
                                file.at(inner.ident.span()),
                                "block",
                                inner.ident.as_str(),
                                &["required_plugins"],
                                &[],
                            ));
                        }
                    }
                }
                ("source", [kind, name]) => {
                    let key = ((*kind).to_owned(), (*name).to_owned());
                    if declared.contains_key(&key) {
                        d.push(Diagnostic::new(
                            at,
                            format!("source `{kind}.{name}` is declared twice"),
                        ));
                        continue;
                    }
                    declared.insert(key, sources::kind(kind).is_some());
                    match sources::kind(kind) {
                        Some(k) => kinded.push((k, file, block, (*name).to_owned())),
                        None => d.push(
                            Diagnostic::new(
                                at,
                                format!("source type `{kind}` is not supported by kiln yet"),
                            )
                            .with_hint(sources::supported_hint()),
                        ),
                    }
                }
                ("build", []) => builds.push((file, block)),
                ("packer" | "locals" | "build", _) => {
                    d.push(Diagnostic::new(
                        at,
                        format!("a `{ident}` block takes no labels"),
                    ));
                }
                ("variable" | "local", _) => {
                    d.push(Diagnostic::new(
                        at,
                        format!("a `{ident}` block takes one label, its name"),
                    ));
                }
                ("source", _) => d.push(Diagnostic::new(
                    at,
                    "a `source` block takes two labels, as in `source \"qemu\" \"NAME\"`",
                )),
                _ => d.push(unknown(at, "block", ident, TOP, UNSUPPORTED_TOP)),
            }
        }
    }

    let assigned = variables::assign(
        &var_decls,
        &broken,
        var_files,
        inputs,
        &constants,
        &mut d,
        &mut warnings,
    );
    let mut sensitive = assigned.secrets;
    let failed = assigned.failed;
    let values = assigned.values;
    let variables = assigned.variables;

    let mut path_obj = hcl::Map::new();
    path_obj.insert(
        "root".to_owned(),
        Value::String(template_dir.to_string_lossy().into_owned()),
    );
    let cwd = std::env::current_dir().unwrap_or_default();
    path_obj.insert(
        "cwd".to_owned(),
        Value::String(cwd.to_string_lossy().into_owned()),
    );
    let packer_obj = hcl::Map::from_iter([(
        "version".to_owned(),
        Value::String(env!("CARGO_PKG_VERSION").to_owned()),
    )]);
    let mut scope = Scope::new(
        var_decls.keys().cloned().collect(),
        local_attrs.keys().cloned().collect(),
        path_obj,
    )
    .with_object("packer", packer_obj);
    for name in &failed {
        scope.poison("var", name);
    }
    scope.set("var", values);
    let local_values = eval_locals(&mut scope, &local_attrs, &mut d);
    for (name, def) in &local_attrs {
        if def.sensitive
            && let Some(v) = local_values.get(name)
        {
            variables::collect_text(v, &mut sensitive);
        }
    }

    let mut template = Template {
        variables,
        ..Template::empty(path)
    };
    let mut table = SourceTable {
        declared,
        read: BTreeMap::new(),
        blocks: BTreeMap::new(),
        template_dir,
    };
    for (kind, file, block, name) in kinded {
        let source = read_source(kind, file, block, &name, &scope, None, template_dir, &mut d);
        template.sources.push(source.clone());
        let key = (kind.type_name.to_owned(), name);
        table.read.insert(key.clone(), source);
        table.blocks.insert(key, (file, block));
    }
    for (file, block) in builds {
        template
            .builds
            .push(build(file, &scope, block, &table, &mut d));
    }

    // A backstop: no sensitive value may be shown, whatever path put it in a message.
    sensitive.retain(|s| s.len() >= 3);
    sensitive.sort();
    sensitive.dedup();
    for diag in d.iter_mut().chain(warnings.iter_mut()) {
        diag.message = mask(&diag.message, &sensitive);
        diag.hint = diag.hint.take().map(|h| mask(&h, &sensitive));
    }
    template.warnings = warnings;
    template.secrets = sensitive;
    (template, d)
}

/// `text` with every secret replaced by `<sensitive>`.
pub(crate) fn mask(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_owned();
    // Longest first, so a secret containing another is masked whole.
    let mut by_len: Vec<&String> = secrets.iter().collect();
    by_len.sort_by_key(|s| std::cmp::Reverse(s.len()));
    for s in by_len {
        out = out.replace(s.as_str(), "<sensitive>");
    }
    out
}

/// The template's sources, for `build` blocks: as read, and their blocks to read again with a
/// build's overrides.
pub(crate) struct SourceTable<'a> {
    pub declared: Declared,
    pub read: BTreeMap<(String, String), SourceConfig>,
    pub blocks: BTreeMap<(String, String), (&'a SourceFile, &'a Block)>,
    pub template_dir: &'a Path,
}

fn twice(
    what: &str,
    name: &str,
    at: Location,
    first_file: &SourceFile,
    first: &Block,
) -> Diagnostic {
    let line = first_file.at(first.ident.span()).line;
    Diagnostic::new(at, format!("{what} `{name}` is declared twice")).with_hint(format!(
        "it was first declared in {}:{line}",
        first_file.path.display()
    ))
}

/// Evaluates locals so that each comes after the locals it uses; a cycle is reported.
fn eval_locals(
    scope: &mut Scope,
    attrs: &BTreeMap<String, LocalDef>,
    d: &mut Vec<Diagnostic>,
) -> hcl::Map<String, Value> {
    let deps: BTreeMap<&str, BTreeSet<String>> = attrs
        .iter()
        .map(|(name, def)| (name.as_str(), local_refs(def.expr)))
        .collect();
    let mut values = hcl::Map::new();
    let mut done: BTreeSet<&str> = BTreeSet::new();
    loop {
        let ready: Vec<&str> = deps
            .iter()
            .filter(|(name, refs)| {
                !done.contains(*name)
                    && refs
                        .iter()
                        .all(|r| done.contains(r.as_str()) || !attrs.contains_key(r))
            })
            .map(|(name, _)| *name)
            .collect();
        if ready.is_empty() {
            break;
        }
        for name in ready {
            let def = &attrs[name];
            match scope.eval(def.file, def.expr, d) {
                Some(v) => {
                    values.insert(name.to_owned(), v);
                }
                None => scope.poison("local", name),
            }
            done.insert(name);
            scope.set("local", values.clone());
        }
    }
    // What is left is in a cycle, or uses a local that is: report only the cycle members.
    let stuck: BTreeSet<&str> = deps.keys().copied().filter(|n| !done.contains(n)).collect();
    let reaches_itself = |start: &str| {
        let mut seen = BTreeSet::new();
        let mut todo: Vec<&str> = deps[start].iter().map(String::as_str).collect();
        while let Some(n) = todo.pop() {
            if n == start {
                return true;
            }
            if stuck.contains(n) && seen.insert(n) {
                todo.extend(deps[n].iter().map(String::as_str));
            }
        }
        false
    };
    let cycle: Vec<&str> = stuck
        .iter()
        .copied()
        .filter(|n| reaches_itself(n))
        .collect();
    for name in &stuck {
        scope.poison("local", name);
    }
    for name in &cycle {
        d.push(
            Diagnostic::new(
                attrs[*name].at.clone(),
                format!("local `{name}` depends on itself"),
            )
            .with_hint(format!(
                "these locals refer to each other in a cycle: `{}`",
                cycle.join("`, `")
            )),
        );
    }
    values
}

/// A local value: from a `locals` block or a `local "NAME"` block.
struct LocalDef<'a> {
    file: &'a SourceFile,
    at: Location,
    expr: &'a Expression,
    sensitive: bool,
}

fn define_local<'a>(
    locals: &mut BTreeMap<String, LocalDef<'a>>,
    name: &str,
    def: LocalDef<'a>,
    d: &mut Vec<Diagnostic>,
) {
    if let Some(first) = locals.get(name) {
        d.push(
            Diagnostic::new(def.at, format!("local `{name}` is defined twice")).with_hint(format!(
                "it was first defined in {}:{}",
                first.file.path.display(),
                first.at.line
            )),
        );
        return;
    }
    locals.insert(name.to_owned(), def);
}
