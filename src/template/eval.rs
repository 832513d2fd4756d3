//! Evaluating HCL expressions with `var.*`, `local.*` and `path.*`, with located diagnostics.
//!
//! `hcl-rs` evaluates but reports no positions, so every expression is first walked with
//! `hcl-edit`'s visitor: references to undeclared variables, locals and data sources, and
//! unknown functions are reported at their own span before anything is evaluated. Evaluation
//! errors are rewritten without the values involved, so a sensitive value cannot leak into one.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::ops::Range;
use std::path::PathBuf;

use hcl::Value;
use hcl::edit::Span;
use hcl::edit::expr::{Expression, ForExpr, FuncCall, TraversalOperator};
use hcl::edit::template::ForTemplateExpr;
use hcl::edit::visit::{self, Visit};
use hcl::eval::{Context, ErrorKind};

use super::Diagnostic;
use super::diag::{SourceFile, did_you_mean, suggest};
use super::functions::{self, Availability};

/// Functions Packer's HCL2 offers (kiln's are in `functions.rs`); the others are named
/// correctly in errors.
#[rustfmt::skip]
pub(super) const PACKER_FUNCTIONS: &[&str] = &[
    "abs", "abspath", "alltrue", "anytrue", "aws_secretsmanager", "aws_secretsmanager_raw",
    "basename", "base64decode", "base64encode", "base64gzip", "bcrypt", "can", "ceil", "chomp",
    "chunklist", "cidrhost", "cidrnetmask", "cidrsubnet", "cidrsubnets", "coalesce",
    "coalescelist", "compact", "concat", "consul_key", "contains", "convert", "csvdecode",
    "dirname", "distinct", "element", "endswith", "env", "file", "filebase64", "fileexists",
    "fileset", "flatten", "floor", "format", "formatdate", "formatlist", "indent", "index",
    "join", "jsondecode", "jsonencode", "keys", "legacy_isotime", "legacy_strftime", "length",
    "log", "lookup", "lower", "max", "md5", "merge", "min", "parseint", "pathexpand", "pow",
    "range", "reverse", "replace", "regex", "regexall", "regex_replace", "rfc3339_parse",
    "rsadecrypt", "setintersection", "setproduct", "setunion", "sha1", "sha256", "sha512",
    "signum", "slice", "sort", "split", "startswith", "strcontains", "strrev", "substr", "sum",
    "templatefile", "textdecodebase64", "textencodebase64", "timestamp", "timeadd", "title",
    "trim", "trimprefix", "trimspace", "trimsuffix", "try", "unix_timestamp_parse", "upper",
    "urlencode", "uuidv4", "uuidv5", "values", "vault", "yamldecode", "yamlencode", "zipmap",
];

/// What expressions may refer to at one point of the template.
#[derive(Clone)]
pub(crate) struct Scope {
    ctx: Context<'static>,
    /// Declared variable and local names; `None` where no references are allowed at all
    /// (variable defaults).
    names: Option<(BTreeSet<String>, BTreeSet<String>)>,
    /// `var.x` / `local.x` whose value failed: expressions using them are skipped silently,
    /// since the failure was already reported.
    poisoned: HashSet<String>,
    /// Objects such as `build` and `source` inside a build: root name → attribute names.
    objects: std::collections::BTreeMap<String, BTreeSet<String>>,
    /// `path.root`: file functions resolve relative paths against it.
    root: Option<PathBuf>,
    /// Declared `data "TYPE" "NAME"` blocks, with whether kiln has their type (the attributes
    /// of one it has not have no value: using them is an error that `try` / `can` catch).
    data: BTreeMap<(String, String), bool>,
}

impl Scope {
    /// A scope where expressions may not refer to anything (variable defaults).
    pub fn constants() -> Self {
        let mut ctx = Context::new();
        functions::declare_env(&mut ctx);
        Self {
            ctx,
            names: None,
            poisoned: HashSet::new(),
            objects: Default::default(),
            root: None,
            data: BTreeMap::new(),
        }
    }

    /// A scope with the declared variable and local names, and `path.root` / `path.cwd`.
    pub fn new(
        vars: BTreeSet<String>,
        locals: BTreeSet<String>,
        path: hcl::Map<String, Value>,
    ) -> Self {
        let mut ctx = Context::new();
        functions::declare(&mut ctx);
        let root = path.get("root").and_then(Value::as_str).map(PathBuf::from);
        ctx.declare_var("path", Value::Object(path));
        Self {
            ctx,
            names: Some((vars, locals)),
            poisoned: HashSet::new(),
            objects: Default::default(),
            root,
            data: BTreeMap::new(),
        }
    }

    /// Declares the `data` blocks: `(type, name)` with whether kiln has the type. Their values
    /// are [`set`](Self::set) under `data` as they are read.
    pub fn declare_data(&mut self, data: BTreeMap<(String, String), bool>) {
        self.data = data;
    }

    /// Makes `var.*` (or `local.*`, per `root`) hold `values`.
    pub fn set(&mut self, root: &str, values: hcl::Map<String, Value>) {
        self.ctx.declare_var(root.to_owned(), Value::Object(values));
    }

    /// A copy where `root.KEY` refers to the entries of `object` (e.g. `build.name`).
    pub fn with_object(&self, root: &str, object: hcl::Map<String, Value>) -> Self {
        let mut scope = self.clone();
        scope
            .objects
            .insert(root.to_owned(), object.keys().cloned().collect());
        scope
            .ctx
            .declare_var(root.to_owned(), Value::Object(object));
        scope
    }

    /// Marks `root.name` as failed.
    pub fn poison(&mut self, root: &str, name: &str) {
        self.poisoned.insert(format!("{root}.{name}"));
    }

    /// Evaluates `expr` from `file`, or records why it cannot be and returns `None`.
    pub fn eval(
        &self,
        file: &SourceFile,
        expr: &Expression,
        diags: &mut Vec<Diagnostic>,
    ) -> Option<Value> {
        let mut ok = true;
        let mut valueless = None;
        for r in references(expr) {
            if let Some(d) = self.check(file, &r) {
                diags.extend(d);
                ok = false;
            }
            if let RefKind::Name {
                root,
                attr: Some(kind),
                next: Some(name),
            } = &r.kind
                && root == "data"
                && self.data.get(&(kind.clone(), name.clone())) == Some(&false)
            {
                valueless.get_or_insert((file.at(r.span.clone()), kind.clone(), name.clone()));
            }
        }
        if !ok {
            return None;
        }
        let failed = match functions::evaluate(expr, &self.ctx, self.root.as_deref()) {
            Ok(v) => return Some(v),
            Err(functions::Failure::Eval(e)) => {
                Diagnostic::new(file.at(expr.span()), describe(e.kind()))
            }
            Err(functions::Failure::At(span, message)) => {
                Diagnostic::new(file.at(span.or(expr.span())), message)
            }
        };
        // A use of a data source kiln does not have fails for that reason, whatever the
        // evaluator says (a missing key).
        diags.push(match valueless {
            Some((at, kind, name)) => Diagnostic::new(
                at,
                format!(
                    "`data.{kind}.{name}` has no value: kiln does not have the `{kind}` data \
                     source"
                ),
            )
            .with_hint("write the use as `try(data.…, FALLBACK)` so that it has a fallback"),
            None => failed,
        });
        None
    }

    /// `Some` when reference `r` cannot be evaluated: with a diagnostic, or empty when it uses a
    /// value whose failure was already reported.
    fn check(&self, file: &SourceFile, r: &Reference) -> Option<Option<Diagnostic>> {
        let at = file.at(r.span.clone());
        let (root, attr, next) = match &r.kind {
            RefKind::Func(name) => {
                match functions::availability(name, self.names.is_none()) {
                    Availability::Yes => return None,
                    Availability::NotHere(message, hint) => {
                        return Some(Some(Diagnostic::new(at, message).with_hint(hint)));
                    }
                    Availability::Unknown => {}
                }
                let d = if PACKER_FUNCTIONS.contains(&name.as_str()) {
                    Diagnostic::new(
                        at,
                        format!("function `{name}` is not supported by kiln yet"),
                    )
                } else {
                    let d = Diagnostic::new(at, format!("unknown function `{name}`"));
                    let all = PACKER_FUNCTIONS.iter().chain(functions::KILN_ONLY);
                    match did_you_mean(name, all.copied()) {
                        Some(h) => d.with_hint(h),
                        None => d,
                    }
                };
                return Some(Some(d));
            }
            RefKind::Name { root, attr, next } => (root.as_str(), attr.as_deref(), next.as_deref()),
        };
        let Some((vars, locals)) = &self.names else {
            return Some(Some(Diagnostic::new(
                at,
                format!("`{root}` cannot be used here: a variable default must be a constant"),
            )));
        };
        if let Some(keys) = self.objects.get(root) {
            return match attr {
                Some(a) if keys.contains(a) => None,
                _ => {
                    let d = Diagnostic::new(at, format!("unknown `{}`", show(root, attr)));
                    let hint = attr
                        .and_then(|a| suggest(a, keys.iter().map(String::as_str)))
                        .map(|s| format!("did you mean `{root}.{s}`?"));
                    Some(Some(match hint {
                        Some(h) => d.with_hint(h),
                        None => d,
                    }))
                }
            };
        }
        let declared = match root {
            "var" => vars,
            "local" => locals,
            "path" => {
                return match attr {
                    Some("root" | "cwd") => None,
                    _ => Some(Some(
                        Diagnostic::new(at, format!("unknown `{}`", show(root, attr)))
                            .with_hint("`path.root` and `path.cwd` are available"),
                    )),
                };
            }
            "build" | "source" => {
                return Some(Some(Diagnostic::new(
                    at,
                    format!(
                        "`{}` can only be used inside a `build` block (its provisioners and \
                         post-processors for `build.*`)",
                        show(root, attr)
                    ),
                )));
            }
            "data" => return self.check_data(at, attr, next),
            _ => {
                return Some(Some(
                    Diagnostic::new(at, format!("unknown name `{root}`"))
                        .with_hint("variables are written `var.NAME`, locals `local.NAME`"),
                ));
            }
        };
        let Some(name) = attr else {
            return Some(Some(Diagnostic::new(
                at,
                format!("`{root}` must be followed by a name, as in `{root}.NAME`"),
            )));
        };
        if !declared.contains(name) {
            let what = if root == "var" { "variable" } else { "local" };
            let d = Diagnostic::new(at, format!("undeclared {what} `{root}.{name}`"));
            let hint = suggest(name, declared.iter().map(String::as_str))
                .map(|s| format!("did you mean `{root}.{s}`?"));
            return Some(Some(match hint {
                Some(h) => d.with_hint(h),
                None => d,
            }));
        }
        if self.poisoned.contains(&format!("{root}.{name}")) {
            return Some(None);
        }
        None
    }
}

impl Scope {
    /// [`check`](Self::check) for `data.TYPE.NAME`.
    fn check_data(
        &self,
        at: super::Location,
        kind: Option<&str>,
        name: Option<&str>,
    ) -> Option<Option<Diagnostic>> {
        let (Some(kind), Some(name)) = (kind, name) else {
            return Some(Some(Diagnostic::new(
                at,
                "`data` must be followed by a type and a name, as in `data.TYPE.NAME`",
            )));
        };
        if !self.data.contains_key(&(kind.to_owned(), name.to_owned())) {
            let declared: Vec<String> = self
                .data
                .keys()
                .map(|(t, n)| format!("data.{t}.{n}"))
                .collect();
            let d = Diagnostic::new(at, format!("undeclared data source `data.{kind}.{name}`"));
            let wanted = format!("data.{kind}.{name}");
            return Some(Some(
                match suggest(&wanted, declared.iter().map(String::as_str)) {
                    Some(s) => d.with_hint(format!("did you mean `{s}`?")),
                    None => d.with_hint(format!(
                        "declare it with `data \"{kind}\" \"{name}\" {{ … }}`"
                    )),
                },
            ));
        }
        if self.poisoned.contains(&format!("data.{kind}.{name}")) {
            return Some(None);
        }
        None
    }
}

fn show(root: &str, attr: Option<&str>) -> String {
    match attr {
        Some(a) => format!("{root}.{a}"),
        None => root.to_owned(),
    }
}

/// An evaluation error in words, without the values involved (they may be sensitive).
pub(super) fn describe(kind: &ErrorKind) -> String {
    match kind {
        ErrorKind::UndefinedVar(name) => format!("undefined name `{name}`"),
        ErrorKind::UndefinedFunc(name) => format!("unknown function `{name}`"),
        ErrorKind::Unexpected(found, expected) => {
            format!("expected {expected}, found {}", type_name(found))
        }
        ErrorKind::Index(i) => format!("index {i} is out of range"),
        ErrorKind::NoSuchKey(key) => format!("no such key `{key}`"),
        ErrorKind::KeyExists(key) => format!("key `{key}` appears twice in a `for` expression"),
        ErrorKind::UnaryOp(op, v) => {
            format!("operator `{op}` cannot be applied to a {}", type_name(v))
        }
        ErrorKind::BinaryOp(l, op, r) => format!(
            "operator `{op}` cannot be applied to a {} and a {}",
            type_name(l),
            type_name(r)
        ),
        ErrorKind::FuncCall(name, msg)
            if [functions::COERCE_BOOL, functions::COERCE_NUMBER]
                .contains(&name.to_string().as_str()) =>
        {
            msg.clone()
        }
        ErrorKind::FuncCall(name, msg) => format!("function `{name}` failed: {msg}"),
        ErrorKind::Message(msg) => format!("cannot evaluate this expression: {msg}"),
        _ => "cannot evaluate this expression".to_owned(),
    }
}

/// The HCL type of a value, for messages.
pub(crate) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "object",
    }
}

/// HCL's conversion to string: strings, numbers and bools convert.
pub(crate) fn to_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// HCL's conversion to number: numbers, and strings that spell one.
pub(crate) fn to_number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok().filter(|f: &f64| f.is_finite()),
        _ => None,
    }
}

/// HCL's conversion to bool: bools, and the strings `true` / `false`.
pub(crate) fn to_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s == "true" => Some(true),
        Value::String(s) if s == "false" => Some(false),
        _ => None,
    }
}

/// A number as an HCL value, integral when it is one.
pub(crate) fn number_value(f: f64) -> Value {
    if f.fract() == 0.0 && f.abs() < 9.0e15 {
        Value::Number(hcl::Number::from(f as i64))
    } else {
        hcl::Number::from_f64(f).map_or(Value::Null, Value::Number)
    }
}

/// Something an expression refers to.
#[derive(Debug, PartialEq)]
enum RefKind {
    /// `root` or `root.attr...`; for `data.TYPE.NAME` also the name (`next`).
    Name {
        root: String,
        attr: Option<String>,
        next: Option<String>,
    },
    /// A function call.
    Func(String),
}

#[derive(Debug)]
struct Reference {
    kind: RefKind,
    span: Option<Range<usize>>,
}

/// The locals and data sources `expr` refers to, as `local.NAME` and `data.TYPE.NAME` (for
/// evaluating them in dependency order).
pub(crate) fn node_refs(expr: &Expression) -> BTreeSet<String> {
    references(expr)
        .into_iter()
        .filter_map(|r| match r.kind {
            RefKind::Name {
                root,
                attr: Some(a),
                ..
            } if root == "local" => Some(format!("local.{a}")),
            RefKind::Name {
                root,
                attr: Some(t),
                next: Some(n),
            } if root == "data" => Some(format!("data.{t}.{n}")),
            _ => None,
        })
        .collect()
}

fn references(expr: &Expression) -> Vec<Reference> {
    let mut c = Collector::default();
    c.visit_expr(expr);
    c.refs
        .into_iter()
        .filter(|r| !matches!(&r.kind, RefKind::Name { root, .. } if c.bound.contains(root)))
        .collect()
}

/// Collects references; names bound by `for` expressions are remembered so they are not
/// mistaken for unknown names.
#[derive(Default)]
struct Collector {
    refs: Vec<Reference>,
    bound: HashSet<String>,
}

impl Visit for Collector {
    fn visit_expr(&mut self, expr: &Expression) {
        match expr {
            Expression::Variable(v) => self.refs.push(Reference {
                kind: RefKind::Name {
                    root: v.as_str().to_owned(),
                    attr: None,
                    next: None,
                },
                span: v.span(),
            }),
            Expression::Traversal(t) => {
                if let Expression::Variable(root) = &t.expr {
                    let get_attr = |i: usize| match t.operators.get(i).map(|op| &**op) {
                        Some(TraversalOperator::GetAttr(a)) => Some(a.as_str().to_owned()),
                        _ => None,
                    };
                    let attr = get_attr(0);
                    let next = if root.as_str() == "data" {
                        attr.as_ref().and_then(|_| get_attr(1))
                    } else {
                        None
                    };
                    self.refs.push(Reference {
                        kind: RefKind::Name {
                            root: root.as_str().to_owned(),
                            attr,
                            next,
                        },
                        span: t.span(),
                    });
                    for op in &t.operators {
                        self.visit_traversal_operator(op);
                    }
                } else {
                    visit::visit_traversal(self, t);
                }
            }
            _ => visit::visit_expr(self, expr),
        }
    }

    fn visit_func_call(&mut self, call: &FuncCall) {
        let mut name: Vec<&str> = call.name.namespace.iter().map(|n| n.as_str()).collect();
        name.push(call.name.name.as_str());
        self.refs.push(Reference {
            kind: RefKind::Func(name.join("::")),
            span: call.span(),
        });
        // `convert(value, list(string))`: the second argument is a type, not an expression.
        if call.name.namespace.is_empty() && call.name.name.as_str() == "convert" {
            if let Some(value) = call.args.iter().next() {
                self.visit_expr(value);
            }
            return;
        }
        visit::visit_func_call(self, call);
    }

    fn visit_for_expr(&mut self, f: &ForExpr) {
        self.bound
            .extend(f.intro.key_var.iter().map(|k| k.as_str().to_owned()));
        self.bound.insert(f.intro.value_var.as_str().to_owned());
        visit::visit_for_expr(self, f);
    }

    fn visit_for_template_expr(&mut self, f: &ForTemplateExpr) {
        self.bound
            .extend(f.key_var.iter().map(|k| k.as_str().to_owned()));
        self.bound.insert(f.value_var.as_str().to_owned());
        visit::visit_for_template_expr(self, f);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refs(src: &str) -> Vec<RefKind> {
        let expr = hcl::edit::parser::parse_expr(src).expect("test expression parses");
        references(&expr).into_iter().map(|r| r.kind).collect()
    }

    fn name(root: &str, attr: Option<&str>) -> RefKind {
        RefKind::Name {
            root: root.into(),
            attr: attr.map(Into::into),
            next: None,
        }
    }

    #[test]
    fn collects_references() {
        assert_eq!(refs("var.a"), [name("var", Some("a"))], "bare traversal");
        assert_eq!(
            refs(r#""x-${local.b}-{{ .HTTPIP }}""#),
            [name("local", Some("b"))],
            "interpolation; Go template text is not a reference"
        );
        assert_eq!(refs("foo"), [name("foo", None)], "bare name");
        assert_eq!(
            refs("upper(var.a)"),
            [RefKind::Func("upper".into()), name("var", Some("a"))],
            "function call and its argument"
        );
        assert_eq!(
            refs("[for s in var.l : s]"),
            [name("var", Some("l"))],
            "for-bound names are not references"
        );
        assert_eq!(
            refs("var.m[local.k]"),
            [name("var", Some("m")), name("local", Some("k"))],
            "index"
        );
        assert_eq!(
            refs("data.http.x.body"),
            [RefKind::Name {
                root: "data".into(),
                attr: Some("http".into()),
                next: Some("x".into()),
            }],
            "a data source reference keeps its name"
        );
    }

    #[test]
    fn conversions_follow_hcl() {
        let table = [
            (Value::from("512"), Some(512.0), "numeric string"),
            (Value::from(2), Some(2.0), "number"),
            (Value::from("lots"), None, "word"),
            (Value::Bool(true), None, "bool"),
        ];
        for (v, want, reason) in table {
            assert_eq!(to_number(&v), want, "{reason}");
        }
        assert_eq!(to_string(&Value::from(3)), Some("3".into()));
        assert_eq!(to_bool(&Value::from("true")), Some(true));
        assert_eq!(to_bool(&Value::from("yes")), None);
    }
}
