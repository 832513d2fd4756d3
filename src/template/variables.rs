//! Input variables: `variable` blocks, and their values from defaults, `PKR_VAR_*`, var files
//! and `-var`, in Packer's order of precedence (each later one wins):
//! default < `PKR_VAR_name` < `*.auto.pkrvars.hcl` (name order) < `-var-file` (as given) < `-var`.
//!
//! Raw text (`-var`, `PKR_VAR_`) is a literal string for `string`, `number` and untyped
//! variables and an HCL expression for the other types, as in Packer. Values are converted to
//! the declared type, then every `validation` block is checked.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use hcl::Value;
use hcl::edit::Span;
use hcl::edit::structure::{Block, Body};

use super::diag::{SourceFile, command_line, did_you_mean};
use super::eval::{Scope, to_bool, type_name};
use super::options::{Options, unknown};
use super::vartype::VarType;
use super::{Diagnostic, Location};

/// Where variable values come from, besides the template's defaults.
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    /// `-var NAME=VALUE`, in command-line order.
    pub vars: Vec<(String, String)>,
    /// `-var-file PATH`, in command-line order (`*.pkrvars.hcl` or `*.pkrvars.json`).
    pub var_files: Vec<PathBuf>,
    /// `PKR_VAR_NAME=VALUE` environment variables, as `(NAME, VALUE)`.
    pub env: Vec<(String, String)>,
    /// `-only` / `-except`: which builds run (and whose sources are read).
    pub selection: super::Selection,
    /// `-no-warn-undeclared-var`: no warning for var-file values of undeclared variables.
    pub quiet_undeclared: bool,
    /// Whether data sources that reach outside the machine are read.
    pub data_sources: DataSources,
}

/// Whether loading reads the data sources that reach outside the machine (`http`,
/// `amazon-ami`). Pure ones (`null`) are always read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum DataSources {
    /// Read them (`kiln build`, `kiln validate -evaluate-datasources`).
    #[default]
    Read,
    /// Do not: each output is a placeholder of its type, as Packer's `validate` and `inspect`
    /// leave them unknown. Needs no credentials and no network.
    Unknown,
}

impl Inputs {
    /// `-var`s and `-var-file`s as given, with the `PKR_VAR_*` variables of this process.
    pub fn with_env(vars: Vec<(String, String)>, var_files: Vec<PathBuf>) -> Self {
        let env = std::env::vars()
            .filter_map(|(k, v)| Some((k.strip_prefix("PKR_VAR_")?.to_owned(), v)))
            .filter(|(k, _)| !k.is_empty())
            .collect();
        Self {
            vars,
            var_files,
            env,
            selection: super::Selection::default(),
            quiet_undeclared: false,
            data_sources: DataSources::Read,
        }
    }
}

/// A parsed var file.
pub(crate) enum VarFile {
    Hcl(SourceFile, Body),
    Json(SourceFile, serde_json::Map<String, serde_json::Value>),
}

/// A `variable` block as declared.
pub(crate) struct VarDecl<'a> {
    pub file: &'a SourceFile,
    pub block: &'a Block,
    pub kind: VarType,
    pub sensitive: bool,
    pub description: Option<String>,
}

/// A declared variable with its final value, for `inspect` and the build.
#[derive(Debug, Clone, PartialEq)]
pub struct Variable {
    pub name: String,
    /// The type constraint as written in kiln's canonical form (`list(string)`).
    pub type_name: String,
    pub description: Option<String>,
    pub sensitive: bool,
    /// The value after conversion (`None` when it failed).
    pub value: Option<Value>,
}

/// Checks a `variable` block's options and reads its type, description and sensitivity.
/// `None` when its type is not one (reported).
pub(crate) fn declare<'a>(
    file: &'a SourceFile,
    block: &'a Block,
    constants: &Scope,
    d: &mut Vec<Diagnostic>,
) -> Option<VarDecl<'a>> {
    let at = file.at(block.ident.span());
    let supported = ["type", "default", "description", "sensitive", "nullable"];
    let o = Options::read(file, constants, &block.body, at, &supported, &[], d);
    for inner in block.body.blocks() {
        if inner.ident.as_str() != "validation" {
            d.push(unknown(
                file.at(inner.ident.span()),
                "block",
                inner.ident.as_str(),
                &["validation"],
                &[],
            ));
        }
    }
    let kind = match block.body.get_attribute("type") {
        None => VarType::Any,
        Some(attr) => match VarType::parse(&attr.value) {
            Ok(t) => t,
            Err(bad) => {
                d.push(Diagnostic::new(
                    file.at(bad.span.or_else(|| attr.value.span())),
                    format!("invalid type for variable: {}", bad.message),
                ));
                return None;
            }
        },
    };
    Some(VarDecl {
        file,
        block,
        kind,
        sensitive: o.bool("sensitive", d).unwrap_or(false),
        description: o.string("description", d),
    })
}

/// Where a value was given, for messages.
enum Origin {
    Default(Location),
    Env,
    File(Location),
    Cli,
}

/// The values of every declared variable.
pub(crate) struct Assigned {
    pub values: hcl::Map<String, Value>,
    /// Names whose value failed (already reported): uses of them are not reported again.
    pub failed: BTreeSet<String>,
    /// Values of sensitive variables, as text, to be masked everywhere.
    pub secrets: Vec<String>,
    pub variables: Vec<Variable>,
}

/// Gives every declared variable its value, in Packer's precedence; problems go to `d`,
/// warnings (var-file keys that are not declared) to `warnings`.
pub(crate) fn assign(
    decls: &BTreeMap<String, VarDecl>,
    broken: &BTreeSet<String>,
    var_files: &[VarFile],
    inputs: &Inputs,
    constants: &Scope,
    d: &mut Vec<Diagnostic>,
    warnings: &mut Vec<Diagnostic>,
) -> Assigned {
    let mut given: BTreeMap<String, (Value, Origin)> = BTreeMap::new();
    let mut failed = broken.clone();
    for (name, decl) in decls {
        if broken.contains(name) {
            continue;
        }
        if let Some(attr) = decl.block.body.get_attribute("default") {
            match constants.eval(decl.file, &attr.value, d) {
                Some(v) => {
                    let at = decl.file.at(attr.value.span());
                    given.insert(name.clone(), (v, Origin::Default(at)));
                }
                None => {
                    failed.insert(name.clone());
                }
            }
        }
    }
    // PKR_VAR_: undeclared names are ignored, as in Packer (the environment is shared).
    for (name, raw) in &inputs.env {
        let Some(decl) = decls.get(name) else {
            continue;
        };
        let at = command_line();
        let what = format!("environment variable `PKR_VAR_{name}`");
        if let Some(v) = raw_value(&decl.kind, raw, &at, &what, constants, d) {
            failed.remove(name);
            given.insert(name.clone(), (v, Origin::Env));
        } else {
            failed.insert(name.clone());
        }
    }
    for file in var_files {
        for (name, at, value) in file_values(file, constants, d) {
            if !decls.contains_key(&name) {
                let mut w = Diagnostic::new(
                    at,
                    format!("variable `{name}` is set here but not declared in the template"),
                );
                if let Some(h) = did_you_mean(&name, decls.keys().map(String::as_str)) {
                    w = w.with_hint(h);
                }
                if !inputs.quiet_undeclared {
                    warnings.push(w);
                }
                continue;
            }
            match value {
                Some(v) => {
                    failed.remove(&name);
                    given.insert(name, (v, Origin::File(at)));
                }
                None => {
                    failed.insert(name);
                }
            }
        }
    }
    for (name, raw) in &inputs.vars {
        let Some(decl) = decls.get(name) else {
            let mut diag = Diagnostic::new(
                command_line(),
                format!("-var `{name}`: no variable `{name}` is declared in the template"),
            );
            if let Some(h) = did_you_mean(name, decls.keys().map(String::as_str)) {
                diag = diag.with_hint(h);
            }
            d.push(diag);
            continue;
        };
        let what = format!("-var `{name}`");
        if let Some(v) = raw_value(&decl.kind, raw, &command_line(), &what, constants, d) {
            failed.remove(name);
            given.insert(name.clone(), (v, Origin::Cli));
        } else {
            failed.insert(name.clone());
        }
    }

    let mut out = Assigned {
        values: hcl::Map::new(),
        failed,
        secrets: Vec::new(),
        variables: Vec::new(),
    };
    for (name, decl) in decls {
        let mut value = None;
        match given.remove(name) {
            _ if broken.contains(name) => {}
            Some((v, origin)) => match decl.kind.convert(&v) {
                Ok(v) => value = Some(v),
                Err(why) => {
                    out.failed.insert(name.clone());
                    d.push(type_error(name, decl, &origin, &why));
                }
            },
            None if out.failed.contains(name) => {}
            None => {
                out.failed.insert(name.clone());
                d.push(
                    Diagnostic::new(
                        decl.file.at(decl.block.ident.span()),
                        format!("variable `{name}` has no value"),
                    )
                    .with_hint(format!(
                        "give it a `default`, pass `-var {name}=VALUE`, set it in a \
                         `-var-file`, or export `PKR_VAR_{name}`"
                    )),
                );
            }
        }
        if let Some(v) = &value {
            if decl.sensitive {
                collect_text(v, &mut out.secrets);
            }
            if !validate(name, decl, v, d) {
                out.failed.insert(name.clone());
            }
            out.values.insert(name.clone(), v.clone());
        }
        out.variables.push(Variable {
            name: name.clone(),
            type_name: decl.kind.to_string(),
            description: decl.description.clone(),
            sensitive: decl.sensitive,
            value,
        });
    }
    out
}

fn type_error(name: &str, decl: &VarDecl, origin: &Origin, why: &str) -> Diagnostic {
    let kind = &decl.kind;
    match origin {
        Origin::Default(at) => Diagnostic::new(
            at.clone(),
            format!("the default of variable `{name}` does not fit its type {kind}: {why}"),
        ),
        Origin::File(at) => Diagnostic::new(
            at.clone(),
            format!("the value of variable `{name}` does not fit its type {kind}: {why}"),
        ),
        Origin::Env => Diagnostic::new(
            command_line(),
            format!("environment variable `PKR_VAR_{name}` does not fit type {kind}: {why}"),
        ),
        Origin::Cli => Diagnostic::new(
            command_line(),
            format!("-var `{name}`: the value does not fit type {kind}: {why}"),
        ),
    }
}

/// A raw `-var`/`PKR_VAR_` value: literal text, or an HCL expression for complex types.
fn raw_value(
    kind: &VarType,
    raw: &str,
    at: &Location,
    what: &str,
    constants: &Scope,
    d: &mut Vec<Diagnostic>,
) -> Option<Value> {
    if kind.takes_literal() {
        return Some(Value::String(raw.to_owned()));
    }
    let parsed = hcl::edit::parser::parse_expr(raw).ok();
    let value = parsed.and_then(|expr| {
        let file = SourceFile {
            path: at.file.clone(),
            text: raw.to_owned(),
            origin: None,
        };
        constants.eval(&file, &expr, &mut Vec::new())
    });
    if value.is_none() {
        d.push(
            Diagnostic::new(
                at.clone(),
                format!("{what}: the value is not a valid {kind} expression"),
            )
            .with_hint(format!(
                "values of type {kind} are written in HCL, e.g. {}",
                example(kind)
            )),
        );
    }
    value
}

fn example(kind: &VarType) -> &'static str {
    match kind {
        VarType::Bool => "`true`",
        VarType::List(_) | VarType::Set(_) | VarType::Tuple(_) => "`[\"a\", \"b\"]`",
        _ => "`{ key = \"value\" }`",
    }
}

/// The `(name, location, value)` assignments of a var file, in file order.
fn file_values(
    file: &VarFile,
    constants: &Scope,
    d: &mut Vec<Diagnostic>,
) -> Vec<(String, Location, Option<Value>)> {
    match file {
        VarFile::Hcl(src, body) => {
            for block in body.blocks() {
                let message = if block.ident.as_str() == "variable" {
                    "a var file cannot declare variables: move this block into a `.pkr.hcl` file"
                } else {
                    "a var file holds only `name = value` lines"
                };
                d.push(Diagnostic::new(src.at(block.ident.span()), message));
            }
            body.attributes()
                .map(|attr| {
                    let at = src.at(attr.key.span());
                    let value = constants.eval(src, &attr.value, d);
                    (attr.key.as_str().to_owned(), at, value)
                })
                .collect()
        }
        VarFile::Json(src, map) => map
            .iter()
            .map(|(k, v)| {
                let needle = format!("\"{k}\"");
                let at = src.location(src.text.find(&needle).unwrap_or(0));
                (k.clone(), at, Some(hcl::to_value(v).unwrap_or(Value::Null)))
            })
            .collect(),
    }
}

/// Checks every `validation` block of `decl` against `value`; `false` when one failed
/// (reported with its `error_message`).
fn validate(name: &str, decl: &VarDecl, value: &Value, d: &mut Vec<Diagnostic>) -> bool {
    let mut ok = true;
    for block in decl
        .block
        .body
        .blocks()
        .filter(|b| b.ident.as_str() == "validation")
    {
        let file = decl.file;
        let at = file.at(block.ident.span());
        let mut scope = Scope::new(
            BTreeSet::from([name.to_owned()]),
            BTreeSet::new(),
            hcl::Map::new(),
        );
        scope.set(
            "var",
            hcl::Map::from_iter([(name.to_owned(), value.clone())]),
        );
        let o = Options::read(
            file,
            &scope,
            &block.body,
            at,
            &["condition", "error_message"],
            &[],
            d,
        );
        let message = o.string("error_message", d);
        if message.is_none() && !o.has("error_message") {
            o.missing("error_message", "", d);
        }
        if let Some(m) = &message
            && !sentence_like(m)
        {
            o.error(
                "error_message",
                "`error_message` must be a sentence: start with a capital letter and end \
                 with `.`, `?` or `!`",
                d,
            );
        }
        let Some(attr) = block.body.get_attribute("condition") else {
            o.missing("condition", "", d);
            continue;
        };
        let Some(result) = scope.eval(file, &attr.value, d) else {
            ok = false;
            continue;
        };
        match to_bool(&result) {
            Some(true) => {}
            Some(false) => {
                ok = false;
                d.push(
                    Diagnostic::new(
                        file.at(attr.value.span()),
                        format!(
                            "invalid value for variable `{name}`: {}",
                            message
                                .as_deref()
                                .unwrap_or("the validation condition failed.")
                        ),
                    )
                    .with_hint("this validation condition is false for the value given"),
                );
            }
            None => {
                ok = false;
                o.error(
                    "condition",
                    format!(
                        "a validation `condition` must be true or false, found {}",
                        type_name(&result)
                    ),
                    d,
                );
            }
        }
    }
    ok
}

/// Packer's rule for `error_message`: starts with an upper-case letter, ends with `.?!`.
fn sentence_like(s: &str) -> bool {
    let s = s.trim();
    s.chars().next().is_some_and(char::is_uppercase) && s.ends_with(['.', '?', '!'])
}

/// Every string, number and bool inside `v`, as text.
pub(crate) fn collect_text(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Array(items) => items.iter().for_each(|i| collect_text(i, out)),
        Value::Object(map) => map.values().for_each(|i| collect_text(i, out)),
        other => out.extend(super::eval::to_string(other)),
    }
}
