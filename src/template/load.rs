//! The loading pipeline: read the files, parse them all, then declare variables, apply `-var`,
//! evaluate locals in dependency order, and read sources and builds, collecting every problem.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use hcl::Value;
use hcl::edit::Span;
use hcl::edit::expr::Expression;
use hcl::edit::structure::{Attribute, Block, Body};

use super::build::{Declared, build};
use super::diag::{SourceFile, command_line, did_you_mean};
use super::eval::{Scope, local_refs, number_value, to_bool, to_number, to_string, type_name};
use super::options::{Options, reject_blocks, unknown};
use super::{Diagnostic, Error, Location, Source, Template, qemu_source as qemu};

/// Top-level blocks Packer knows that kiln does not read yet.
const UNSUPPORTED_TOP: &[&str] = &["data", "variables", "local", "hcp_packer_registry"];
/// Top-level blocks kiln reads.
const TOP: &[&str] = &["packer", "variable", "locals", "source", "build"];

pub(crate) fn load(path: &Path, vars: &[(String, String)]) -> Result<Template, Error> {
    let files = read_files(path)?;
    let mut diags = Vec::new();
    let mut parsed = Vec::new();
    for file in &files {
        match hcl::edit::parser::parse_body(&file.text) {
            Ok(body) => parsed.push((file, body)),
            Err(e) => diags.push(Diagnostic::new(
                Location {
                    file: file.path.clone(),
                    line: e.location().line(),
                    col: e.location().column(),
                },
                format!("syntax error: {}", e.message()),
            )),
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
    let (template, mut diags) = check(&parsed, vars, &template_dir, path);
    if diags.is_empty() {
        return Ok(template);
    }
    diags.sort_by(|a, b| {
        let key = |d: &Diagnostic| (d.location.file.clone(), d.location.line, d.location.col);
        key(a).cmp(&key(b))
    });
    Err(Error::Invalid(diags))
}

/// The `*.pkr.hcl` files of `path` (a file, or a directory read in name order).
fn read_files(path: &Path) -> Result<Vec<SourceFile>, Error> {
    let meta = std::fs::metadata(path).map_err(|source| Error::ReadFile {
        path: path.to_owned(),
        source,
    })?;
    let paths = if meta.is_dir() {
        let list_err = |source| Error::ListDir {
            path: path.to_owned(),
            source,
        };
        let mut found = Vec::new();
        for entry in std::fs::read_dir(path).map_err(list_err)? {
            let p = entry.map_err(list_err)?.path();
            if p.to_string_lossy().ends_with(".pkr.hcl") && p.is_file() {
                found.push(p);
            }
        }
        if found.is_empty() {
            return Err(Error::NoTemplates {
                path: path.to_owned(),
            });
        }
        found.sort();
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

/// A `variable` block.
struct VarDecl<'a> {
    file: &'a SourceFile,
    block: &'a Block,
    kind: VarType,
    sensitive: bool,
}

#[derive(Clone, Copy, PartialEq)]
enum VarType {
    Any,
    String,
    Number,
    Bool,
}

impl VarType {
    fn name(self) -> &'static str {
        match self {
            VarType::Any => "any",
            VarType::String => "string",
            VarType::Number => "number",
            VarType::Bool => "bool",
        }
    }

    /// `v` converted to this type, as HCL converts.
    fn convert(self, v: &Value) -> Option<Value> {
        match self {
            VarType::Any => Some(v.clone()),
            VarType::String => to_string(v).map(Value::String),
            VarType::Number => to_number(v).map(number_value),
            VarType::Bool => to_bool(v).map(Value::Bool),
        }
    }
}

/// Everything after parsing; returns the template and the problems found.
fn check(
    parsed: &[(&SourceFile, Body)],
    cli_vars: &[(String, String)],
    template_dir: &Path,
    path: &Path,
) -> (Template, Vec<Diagnostic>) {
    let mut d = Vec::new();
    let mut var_decls: BTreeMap<String, VarDecl> = BTreeMap::new();
    let mut local_attrs: BTreeMap<String, (&SourceFile, &Attribute)> = BTreeMap::new();
    let mut qemu_sources: Vec<(&SourceFile, &Block, String)> = Vec::new();
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
                ("packer", []) => {} // plugins are built in
                ("variable", [name]) => {
                    if let Some(first) = var_decls.get(*name) {
                        d.push(twice("variable", name, at, first.file, first.block));
                        continue;
                    }
                    let decl = declare_var(file, block, &constants, &mut d);
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
                        }),
                    );
                }
                ("locals", []) => {
                    reject_blocks(file, &block.body, &[], &mut d);
                    for attr in block.body.attributes() {
                        let name = attr.key.as_str();
                        if let Some((f, first)) = local_attrs.get(name) {
                            let line = f.at(first.key.span()).line;
                            d.push(
                                Diagnostic::new(
                                    file.at(attr.key.span()),
                                    format!("local `{name}` is defined twice"),
                                )
                                .with_hint(format!(
                                    "it was first defined in {}:{line}",
                                    f.path.display()
                                )),
                            );
                            continue;
                        }
                        local_attrs.insert(name.to_owned(), (file, attr));
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
                    declared.insert(key, matches!(*kind, "qemu" | "null"));
                    if matches!(*kind, "qemu" | "null") {
                        qemu_sources.push((file, block, (*name).to_owned()));
                    } else {
                        d.push(
                            Diagnostic::new(
                                at,
                                format!("source type `{kind}` is not supported by kiln yet"),
                            )
                            .with_hint(
                                "kiln builds with `source \"qemu\" \"NAME\"` (or `\"null\"`)",
                            ),
                        );
                    }
                }
                ("build", []) => builds.push((file, block)),
                ("packer" | "locals" | "build", _) => {
                    d.push(Diagnostic::new(
                        at,
                        format!("a `{ident}` block takes no labels"),
                    ));
                }
                ("variable", _) => {
                    d.push(Diagnostic::new(
                        at,
                        "a `variable` block takes one label, its name",
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

    // Variables: defaults, then -var values.
    let mut values: hcl::Map<String, Value> = hcl::Map::new();
    let mut sensitive: Vec<String> = Vec::new();
    let mut failed = broken.clone();
    for (name, decl) in &var_decls {
        if broken.contains(name) {
            continue;
        }
        let Some(attr) = decl.block.body.get_attribute("default") else {
            continue;
        };
        let Some(v) = constants.eval(decl.file, &attr.value, &mut d) else {
            failed.insert(name.clone());
            continue;
        };
        match decl.kind.convert(&v) {
            Some(v) => {
                values.insert(name.clone(), v);
            }
            None => {
                failed.insert(name.clone());
                d.push(Diagnostic::new(
                    decl.file.at(attr.value.span()),
                    format!(
                        "the default of variable `{name}` must be a {}, found {}",
                        decl.kind.name(),
                        type_name(&v)
                    ),
                ));
            }
        }
    }
    for (name, raw) in cli_vars {
        let Some(decl) = var_decls.get(name) else {
            let mut diag = Diagnostic::new(
                command_line(),
                format!("-var `{name}`: no variable `{name}` is declared in the template"),
            );
            if let Some(h) = did_you_mean(name, var_decls.keys().map(String::as_str)) {
                diag = diag.with_hint(h);
            }
            d.push(diag);
            continue;
        };
        let converted = match decl.kind {
            VarType::Any | VarType::String => Some(Value::String(raw.clone())),
            kind => kind.convert(&Value::String(raw.clone())),
        };
        match converted {
            _ if broken.contains(name) => {}
            Some(v) => {
                failed.remove(name);
                values.insert(name.clone(), v);
            }
            None => d.push(Diagnostic::new(
                command_line(),
                format!(
                    "-var `{name}`: the value is not a valid {}",
                    decl.kind.name()
                ),
            )),
        }
    }
    for (name, decl) in &var_decls {
        if !values.contains_key(name) && !failed.contains(name) {
            failed.insert(name.clone());
            d.push(
                Diagnostic::new(
                    decl.file.at(decl.block.ident.span()),
                    format!("variable `{name}` has no value"),
                )
                .with_hint(format!("give it a `default`, or pass `-var {name}=VALUE`")),
            );
        }
        if decl.sensitive
            && let Some(v) = values.get(name).and_then(to_string)
        {
            sensitive.push(v);
        }
    }

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
    let mut scope = Scope::new(
        var_decls.keys().cloned().collect(),
        local_attrs.keys().cloned().collect(),
        path_obj,
    );
    for name in &failed {
        scope.poison("var", name);
    }
    scope.set("var", values);
    eval_locals(&mut scope, &local_attrs, &mut d);

    let mut template = Template {
        path: path.to_owned(),
        sources: Vec::new(),
        builds: Vec::new(),
    };
    for (file, block, name) in qemu_sources {
        let at = file.at(block.ident.span());
        if block.labels.first().map(|l| l.as_str()) == Some("null") {
            let o = Options::read(
                file,
                &scope,
                &block.body,
                at,
                qemu::NULL_SUPPORTED,
                qemu::KNOWN,
                &mut d,
            );
            reject_blocks(file, &block.body, &[], &mut d);
            let config = qemu::null_source(&name, &o, template_dir, &mut d);
            template.sources.push(Source::Null(config));
            continue;
        }
        let o = Options::read(
            file,
            &scope,
            &block.body,
            at,
            qemu::SUPPORTED,
            qemu::KNOWN,
            &mut d,
        );
        reject_blocks(file, &block.body, qemu::KNOWN, &mut d);
        let config = qemu::source(&name, &o, template_dir, &mut d);
        template.sources.push(Source::Qemu(Box::new(config)));
    }
    for (file, block) in builds {
        template
            .builds
            .push(build(file, &scope, block, &declared, template_dir, &mut d));
    }

    // A backstop: no sensitive value may be shown, whatever path put it in a message.
    for diag in &mut d {
        for secret in sensitive.iter().filter(|s| s.len() >= 3) {
            diag.message = diag.message.replace(secret.as_str(), "<sensitive>");
            diag.hint = diag
                .hint
                .take()
                .map(|h| h.replace(secret.as_str(), "<sensitive>"));
        }
    }
    (template, d)
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

/// Checks a `variable` block's options and reads its type and sensitivity.
fn declare_var<'a>(
    file: &'a SourceFile,
    block: &'a Block,
    constants: &Scope,
    d: &mut Vec<Diagnostic>,
) -> Option<VarDecl<'a>> {
    let at = file.at(block.ident.span());
    let supported = ["type", "default", "description", "sensitive"];
    let o = Options::read(
        file,
        constants,
        &block.body,
        at,
        &supported,
        &["nullable"],
        d,
    );
    reject_blocks(file, &block.body, &["validation"], d);
    let kind = match block.body.get_attribute("type").map(|a| &a.value) {
        None => VarType::Any,
        Some(Expression::Variable(v)) if v.as_str() == "string" => VarType::String,
        Some(Expression::Variable(v)) if v.as_str() == "number" => VarType::Number,
        Some(Expression::Variable(v)) if v.as_str() == "bool" => VarType::Bool,
        Some(Expression::Variable(v)) if v.as_str() == "any" => VarType::Any,
        Some(other) => {
            let text = file.snippet(other.span()).unwrap_or("this type");
            d.push(
                Diagnostic::new(
                    file.at(other.span()),
                    format!("variable type `{text}` is not supported by kiln yet"),
                )
                .with_hint("supported types: `string`, `number`, `bool`"),
            );
            return None;
        }
    };
    let sensitive = o.bool("sensitive", d).unwrap_or(false);
    Some(VarDecl {
        file,
        block,
        kind,
        sensitive,
    })
}

/// Evaluates locals so that each comes after the locals it uses; a cycle is reported.
fn eval_locals(
    scope: &mut Scope,
    attrs: &BTreeMap<String, (&SourceFile, &Attribute)>,
    d: &mut Vec<Diagnostic>,
) {
    let deps: BTreeMap<&str, BTreeSet<String>> = attrs
        .iter()
        .map(|(name, (_, attr))| (name.as_str(), local_refs(&attr.value)))
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
            let (file, attr) = attrs[name];
            match scope.eval(file, &attr.value, d) {
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
        let (file, attr) = attrs[*name];
        d.push(
            Diagnostic::new(
                file.at(attr.key.span()),
                format!("local `{name}` depends on itself"),
            )
            .with_hint(format!(
                "these locals refer to each other in a cycle: `{}`",
                cycle.join("`, `")
            )),
        );
    }
}
