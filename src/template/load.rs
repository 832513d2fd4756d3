//! The loading pipeline: read the files, parse them all, then declare variables, apply `-var`,
//! evaluate locals in dependency order, and read sources and builds, collecting every problem.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use hcl::Value;
use hcl::edit::Span;
use hcl::edit::expr::Expression;
use hcl::edit::structure::{Block, Body};

use super::build::{Declared, Plan, Unrunnable, plan, runs, source_object};
use super::diag::SourceFile;
use super::eval::{Scope, node_refs};
use super::options::{Options, reject_blocks, unknown};
use super::select::Matcher;
use super::sources::{self, read_source};
use super::variables::{self, Inputs, VarDecl, VarFile};
use super::vartype::VarType;
use super::{Diagnostic, Error, Location, Template};
use crate::builder::SourceConfig;

/// Top-level blocks Packer knows that kiln does not read yet.
const UNSUPPORTED_TOP: &[&str] = &["variables", "hcp_packer_registry"];
/// Top-level blocks kiln reads.
const TOP: &[&str] = &[
    "packer", "variable", "locals", "local", "source", "data", "build",
];

pub(crate) fn load(path: &Path, inputs: &Inputs, stage: Stage) -> Result<Template, Error> {
    // Problems found translating a legacy JSON template; loading goes on to find the others.
    let mut json_diags = Vec::new();
    let files: Vec<SourceFile> = read_files(path)?
        .into_iter()
        .filter_map(|f| as_hcl(f, &mut json_diags))
        .collect();
    let mut diags = Vec::new();
    let mut var_paths = auto_var_files(path)?;
    var_paths.extend(inputs.var_files.iter().cloned());
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
        let file = SourceFile::new(p, text);
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
    if !diags.is_empty() || (files.is_empty() && !json_diags.is_empty()) {
        // Later checks would only repeat these as missing names.
        diags.append(&mut json_diags);
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
        if !json_diags.is_empty() {
            return Err(Error::Invalid(json_diags));
        }
        return Ok(Template::empty(path));
    }
    let (template, mut diags) = check(&parsed, &var_files, inputs, &template_dir, path);
    diags.append(&mut json_diags);
    if diags.is_empty() {
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

/// A template file as HCL text: a legacy JSON template becomes its `hcl2_upgrade` text, its
/// positions still pointing into the JSON.
/// `None` when the JSON cannot be read at all (the reason is in `diags`).
fn as_hcl(file: SourceFile, diags: &mut Vec<Diagnostic>) -> Option<SourceFile> {
    let legacy = !super::legacy::is_hcl_json(&file.path);
    let (up, mut found) = if !legacy {
        super::legacy::from_hcl_json(&file.path, &file.text)
    } else if super::legacy::is_legacy(&file.path) {
        super::legacy::upgrade(&file.path, &file.text)
    } else {
        return Some(file);
    };
    diags.append(&mut found);
    let up = up?;
    Some(SourceFile {
        path: file.path,
        text: up.text,
        origin: Some(super::diag::Origin {
            json: file.text,
            map: up.map,
            legacy,
        }),
    })
}

/// The HCL2 text of the legacy JSON template at `path`, as `packer hcl2_upgrade` writes it
/// (before formatting).
pub(crate) fn upgrade(path: &Path) -> Result<String, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::ReadFile {
        path: path.to_owned(),
        source,
    })?;
    match super::legacy::upgrade(path, &text) {
        (Some(up), diags) if diags.is_empty() => Ok(up.text),
        (_, diags) => Err(Error::Invalid(diags)),
    }
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

/// The `*.pkr.hcl` and `*.pkr.json` files of `path` (a file, or a directory read in name
/// order).
fn read_files(path: &Path) -> Result<Vec<SourceFile>, Error> {
    let meta = std::fs::metadata(path).map_err(|source| Error::ReadFile {
        path: path.to_owned(),
        source,
    })?;
    let paths = if meta.is_dir() {
        let found = files_ending(path, &[".pkr.hcl", ".pkr.json"])?;
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
            Ok(text) => Ok(SourceFile::new(p, text)),
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
    let mut source_blocks: BTreeMap<(String, String), (&SourceFile, &Block)> = BTreeMap::new();
    let mut source_order: Vec<(String, String)> = Vec::new();
    let mut declared = Declared::new();
    let mut builds = Vec::new();
    let mut broken: BTreeSet<String> = BTreeSet::new();
    let mut data_blocks: DataBlocks = BTreeMap::new();
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
                    declared.insert(key.clone(), sources::kind(kind).is_some());
                    source_order.push(key.clone());
                    source_blocks.insert(key, (file, block));
                }
                ("data", [kind, name]) => {
                    let key = ((*kind).to_owned(), (*name).to_owned());
                    if let Some((first_file, first)) = data_blocks.get(&key) {
                        let what = format!("{kind}.{name}");
                        d.push(twice("data source", &what, at, first_file, first));
                        continue;
                    }
                    data_blocks.insert(key, (file, block));
                }
                ("data", _) => d.push(Diagnostic::new(
                    at,
                    "a `data` block takes two labels, as in `data \"http\" \"NAME\"`",
                )),
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
    // Relative paths in builder and provisioner options are relative to the working
    // directory, as in Packer; only file functions and `path.root` are template-relative.
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
    scope.declare_data(
        data_blocks
            .keys()
            .map(|k| (k.clone(), super::data::known(&k.0)))
            .collect(),
    );
    let local_values = eval_locals(
        &mut scope,
        &local_attrs,
        &data_blocks,
        inputs.data_sources,
        &mut d,
        &mut warnings,
    );
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
    // Which builds run is decided before any source is read.
    let matcher = Matcher::new(&inputs.selection, &mut d);
    let mut plans: Vec<Plan> = builds
        .iter()
        .map(|(file, block)| plan(file, &scope, block, &declared, &mut d))
        .collect();
    let mut all_builds = Vec::new();
    for p in &mut plans {
        for u in &mut p.usages {
            let full = u.full();
            u.selected = matcher.selects(p.name.as_deref(), &full);
            all_builds.push(match &p.name {
                Some(b) => format!("{b}.{full}"),
                None => full,
            });
        }
    }
    warnings.extend(matcher.unused(&all_builds));
    let mut table = SourceTable {
        read: BTreeMap::new(),
        blocks: source_blocks,
        base_dir: &cwd,
    };
    // Without `-only` / `-except` every declared source of a type kiln builds is checked, used
    // or not; with them, only those the selected builds use.
    let used = |key: &(String, String)| {
        plans
            .iter()
            .any(|p| p.usages.iter().any(|u| u.selected && u.declared == *key))
    };
    for key in &source_order {
        let (file, block) = table.blocks[key];
        let Some(kind) = sources::kind(&key.0) else {
            continue;
        };
        if !inputs.selection.is_empty() && !used(key) {
            continue;
        }
        let scope = scope.with_object("source", source_object(&key.0, &key.1));
        let source = read_source(kind, file, block, &key.1, &scope, None, &cwd, &mut d);
        template.sources.push(source.clone());
        table.read.insert(key.clone(), source);
    }
    let example = plans
        .iter()
        .flat_map(|p| &p.usages)
        .find(|u| u.selected && sources::kind(&u.declared.0).is_some())
        .map_or_else(
            || format!("{}.NAME", sources::KINDS[0].type_name),
            |u| u.full(),
        );
    let mut unrunnable = Unrunnable::default();
    for p in &plans {
        let b = runs(
            p,
            &scope,
            &table,
            &matcher,
            &example,
            &mut d,
            &mut warnings,
            &mut unrunnable,
        );
        template.builds.push(b);
    }
    template.unrunnable = unrunnable.diagnostics();

    // A backstop: no sensitive value may be shown, whatever path put it in a message.
    sensitive.retain(|s| s.len() >= 3);
    sensitive.sort();
    sensitive.dedup();
    for diag in d
        .iter_mut()
        .chain(warnings.iter_mut())
        .chain(template.unrunnable.iter_mut())
    {
        diag.message = mask(&diag.message, &sensitive);
        diag.hint = diag.hint.take().map(|h| mask(&h, &sensitive));
    }
    // A block read once per source reports its problems once.
    dedup(&mut d);
    dedup(&mut warnings);
    template.warnings = warnings;
    template.secrets = sensitive;
    (template, d)
}

/// `diags` without repeats, in their first order.
fn dedup(diags: &mut Vec<Diagnostic>) {
    let mut seen: Vec<Diagnostic> = Vec::with_capacity(diags.len());
    diags.retain(|x| {
        if seen.contains(x) {
            return false;
        }
        seen.push(x.clone());
        true
    });
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
    pub read: BTreeMap<(String, String), SourceConfig>,
    pub blocks: BTreeMap<(String, String), (&'a SourceFile, &'a Block)>,
    /// What relative paths in builder and provisioner options are relative to.
    pub base_dir: &'a Path,
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

/// One node of the evaluation order: a local or a `data` block.
enum Node<'a> {
    Local(&'a str, &'a LocalDef<'a>),
    Data(&'a str, &'a str, &'a SourceFile, &'a Block),
}

impl Node<'_> {
    /// The locals and data sources it uses (`local.NAME`, `data.TYPE.NAME`).
    fn refs(&self) -> BTreeSet<String> {
        match self {
            Node::Local(_, def) => node_refs(def.expr),
            Node::Data(.., block) => {
                let mut refs = BTreeSet::new();
                body_refs(&block.body, &mut refs);
                refs
            }
        }
    }

    fn at(&self) -> Location {
        match self {
            Node::Local(_, def) => def.at.clone(),
            Node::Data(_, _, file, block) => file.at(block.ident.span()),
        }
    }
}

fn body_refs(body: &Body, refs: &mut BTreeSet<String>) {
    for attr in body.attributes() {
        refs.extend(node_refs(&attr.value));
    }
    for block in body.blocks() {
        body_refs(&block.body, refs);
    }
}

/// Evaluates locals and reads data sources so that each comes after the locals and data
/// sources it uses; a cycle is reported. Returns the locals' values.
fn eval_locals(
    scope: &mut Scope,
    attrs: &BTreeMap<String, LocalDef>,
    data: &DataBlocks,
    mode: super::variables::DataSources,
    d: &mut Vec<Diagnostic>,
    warnings: &mut Vec<Diagnostic>,
) -> hcl::Map<String, Value> {
    let mut nodes: BTreeMap<String, Node> = BTreeMap::new();
    for (name, def) in attrs {
        nodes.insert(format!("local.{name}"), Node::Local(name, def));
    }
    for ((kind, name), (file, block)) in data {
        nodes.insert(
            format!("data.{kind}.{name}"),
            Node::Data(kind, name, file, block),
        );
    }
    let deps: BTreeMap<&str, BTreeSet<String>> = nodes
        .iter()
        .map(|(key, node)| (key.as_str(), node.refs()))
        .collect();
    let mut values = hcl::Map::new();
    let mut data_values: hcl::Map<String, Value> = hcl::Map::new();
    let mut done: BTreeSet<&str> = BTreeSet::new();
    loop {
        let ready: Vec<&str> = deps
            .iter()
            .filter(|(key, refs)| {
                !done.contains(*key)
                    && refs
                        .iter()
                        .all(|r| done.contains(r.as_str()) || !nodes.contains_key(r))
            })
            .map(|(key, _)| *key)
            .collect();
        if ready.is_empty() {
            break;
        }
        for key in ready {
            match &nodes[key] {
                Node::Local(name, def) => {
                    match scope.eval(def.file, def.expr, d) {
                        Some(v) => {
                            values.insert((*name).to_owned(), v);
                        }
                        None => scope.poison("local", name),
                    }
                    scope.set("local", values.clone());
                }
                Node::Data(kind, name, file, block) => {
                    match super::data::read(file, block, scope, mode, d, warnings) {
                        Some(v) => {
                            let of_kind = data_values
                                .entry((*kind).to_owned())
                                .or_insert_with(|| Value::Object(hcl::Map::new()));
                            if let Value::Object(map) = of_kind {
                                map.insert((*name).to_owned(), v);
                            }
                        }
                        None => scope.poison("data", &format!("{kind}.{name}")),
                    }
                    scope.set("data", data_values.clone());
                }
            }
            done.insert(key);
        }
    }
    // What is left is in a cycle, or uses something that is: report only the cycle members.
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
    for key in &stuck {
        if let Some((root, name)) = key.split_once('.') {
            scope.poison(root, name);
        }
    }
    let shown: Vec<String> = cycle
        .iter()
        .map(|k| k.strip_prefix("local.").unwrap_or(k).to_owned())
        .collect();
    let members = if cycle.iter().all(|k| k.starts_with("local.")) {
        "locals"
    } else {
        "locals and data sources"
    };
    for key in &cycle {
        let node = &nodes[*key];
        let what = match node {
            Node::Local(name, _) => format!("local `{name}`"),
            Node::Data(..) => format!("data source `{key}`"),
        };
        d.push(
            Diagnostic::new(node.at(), format!("{what} depends on itself")).with_hint(format!(
                "these {members} refer to each other in a cycle: `{}`",
                shown.join("`, `")
            )),
        );
    }
    values
}

/// The `data` blocks by `(type, name)`.
type DataBlocks<'a> = BTreeMap<(String, String), (&'a SourceFile, &'a Block)>;

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
