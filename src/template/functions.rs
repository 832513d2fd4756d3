//! Packer's HCL2 function library (`upper(…)`, `formatdate(…)`, `templatefile(…)`, …).
//!
//! `hcl-rs` evaluates calls but ships no functions, so each one is written here after the
//! behaviour Packer users know (Packer takes them from go-cty's stdlib and Terraform). Three
//! constraints shape this module:
//!
//! - `hcl-rs` functions are plain `fn` pointers, so they cannot capture the template
//!   directory that file functions resolve relative paths against. [`evaluate`] puts it in a
//!   thread-local for the duration of one synchronous evaluation (restored by a guard); this
//!   is the only mutable state here and nothing else reads it.
//! - Arguments are evaluated before a function runs, so `try` and `can` cannot be functions.
//!   [`evaluate`] rewrites each call into its value first, evaluating the arguments one by
//!   one. That is impossible when an argument uses a name bound by an enclosing `for`, which
//!   is reported as not supported.
//! - Messages never include argument values: a value may come from a sensitive variable.
//!   Every parameter is declared `Any` and checked here, because `hcl-rs`'s own type check
//!   prints the offending value.
//!
//! Evaluation has no side effects: files are read, never written; there is no network.

use std::cell::RefCell;
use std::collections::HashSet;
use std::fmt::Write as _;
use std::ops::Range;
use std::path::{Component, Path, PathBuf};
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use hcl::Value;
use hcl::edit::Span;
use hcl::edit::expr::{Expression, ForExpr, FuncCall};
use hcl::edit::template::ForDirective;
use hcl::edit::visit::{self, Visit};
use hcl::edit::visit_mut::{self, VisitMut};
use hcl::eval::{Context, Evaluate, FuncArgs, FuncDef, ParamType};
use sha1::Digest as _;

use super::eval::{number_value, to_bool, to_number, to_string, type_name};
use crate::types::civil_from_days;

mod datetime;
mod decode;
mod net;

type Func = fn(FuncArgs) -> Result<Value, String>;

/// Every function kiln offers: name, implementation, fewest and most arguments (`None`: any
/// number). `env` is only declared where variable defaults are evaluated.
#[rustfmt::skip]
const FUNCTIONS: &[(&str, Func, usize, Option<usize>)] = &[
    // Time and identity.
    ("timestamp", timestamp, 0, Some(0)),
    ("formatdate", formatdate, 2, Some(2)),
    ("timeadd", timeadd, 2, Some(2)),
    ("uuidv4", uuidv4, 0, Some(0)),
    ("uuidv5", uuidv5, 2, Some(2)),
    ("legacy_isotime", datetime::legacy_isotime, 1, Some(1)),
    ("legacy_strftime", datetime::legacy_strftime, 1, Some(1)),
    ("rfc3339_parse", datetime::rfc3339_parse, 1, Some(1)),
    ("unix_timestamp_parse", datetime::unix_timestamp_parse, 1, Some(1)),
    // Files and paths.
    ("file", file, 1, Some(1)),
    ("filebase64", filebase64, 1, Some(1)),
    ("fileexists", fileexists, 1, Some(1)),
    ("fileset", fileset, 2, Some(2)),
    ("templatefile", templatefile, 2, Some(2)),
    ("abspath", abspath, 1, Some(1)),
    ("basename", basename, 1, Some(1)),
    ("dirname", dirname, 1, Some(1)),
    ("pathexpand", pathexpand, 1, Some(1)),
    // Strings.
    ("join", join, 1, None),
    ("split", split, 2, Some(2)),
    ("format", format, 1, None),
    ("formatlist", formatlist, 1, None),
    ("lower", lower, 1, Some(1)),
    ("upper", upper, 1, Some(1)),
    ("title", title, 1, Some(1)),
    ("replace", replace, 3, Some(3)),
    ("regex_replace", regex_replace, 3, Some(3)),
    ("regex", regex, 2, Some(2)),
    ("regexall", regexall, 2, Some(2)),
    ("trim", trim, 2, Some(2)),
    ("trimspace", trimspace, 1, Some(1)),
    ("trimprefix", trimprefix, 2, Some(2)),
    ("trimsuffix", trimsuffix, 2, Some(2)),
    ("chomp", chomp, 1, Some(1)),
    ("indent", indent, 2, Some(2)),
    ("substr", substr, 3, Some(3)),
    ("strrev", strrev, 1, Some(1)),
    ("startswith", startswith, 2, Some(2)),
    ("endswith", endswith, 2, Some(2)),
    ("strcontains", strcontains, 2, Some(2)),
    // Collections.
    ("length", length, 1, Some(1)),
    ("concat", concat, 0, None),
    ("merge", merge, 0, None),
    ("lookup", lookup, 2, Some(3)),
    ("contains", contains, 2, Some(2)),
    ("coalesce", coalesce, 1, None),
    ("coalescelist", coalescelist, 1, None),
    ("compact", compact, 1, Some(1)),
    ("distinct", distinct, 1, Some(1)),
    ("element", element, 2, Some(2)),
    ("flatten", flatten, 1, Some(1)),
    ("index", index, 2, Some(2)),
    ("keys", keys, 1, Some(1)),
    ("values", values, 1, Some(1)),
    ("reverse", reverse, 1, Some(1)),
    ("slice", slice, 3, Some(3)),
    ("sort", sort, 1, Some(1)),
    ("zipmap", zipmap, 2, Some(2)),
    ("range", range, 1, Some(3)),
    ("chunklist", chunklist, 2, Some(2)),
    ("setunion", setunion, 1, None),
    ("setintersection", setintersection, 1, None),
    ("alltrue", alltrue, 1, Some(1)),
    ("anytrue", anytrue, 1, Some(1)),
    ("setproduct", setproduct, 1, None),
    // Numbers.
    ("min", min, 1, None),
    ("max", max, 1, None),
    ("sum", sum, 1, Some(1)),
    ("abs", abs, 1, Some(1)),
    ("ceil", ceil, 1, Some(1)),
    ("floor", floor, 1, Some(1)),
    ("pow", pow, 2, Some(2)),
    ("log", log, 2, Some(2)),
    ("signum", signum, 1, Some(1)),
    ("parseint", parseint, 2, Some(2)),
    // Networks.
    ("cidrhost", net::cidrhost, 2, Some(2)),
    ("cidrnetmask", net::cidrnetmask, 1, Some(1)),
    ("cidrsubnet", net::cidrsubnet, 3, Some(3)),
    ("cidrsubnets", net::cidrsubnets, 2, None),
    // Conversions (Terraform's; Packer converts implicitly, kiln offers both).
    ("tostring", tostring, 1, Some(1)),
    ("tonumber", tonumber, 1, Some(1)),
    ("tobool", tobool, 1, Some(1)),
    // HCL's automatic conversions where an operator or a condition needs a type (see Coerce).
    (COERCE_BOOL, coerce_bool, 1, Some(1)),
    (COERCE_NUMBER, coerce_number, 1, Some(1)),
    ("tolist", tolist, 1, Some(1)),
    ("toset", toset, 1, Some(1)),
    ("tomap", tomap, 1, Some(1)),
    // Encodings and hashes.
    ("jsonencode", jsonencode, 1, Some(1)),
    ("jsondecode", jsondecode, 1, Some(1)),
    ("yamlencode", yamlencode, 1, Some(1)),
    ("yamldecode", decode::yamldecode, 1, Some(1)),
    ("csvdecode", decode::csvdecode, 1, Some(1)),
    ("textencodebase64", decode::textencodebase64, 2, Some(2)),
    ("textdecodebase64", decode::textdecodebase64, 2, Some(2)),
    ("base64encode", base64encode, 1, Some(1)),
    ("base64decode", base64decode, 1, Some(1)),
    ("base64gzip", base64gzip, 1, Some(1)),
    ("urlencode", urlencode, 1, Some(1)),
    ("md5", md5, 1, Some(1)),
    ("sha1", sha1, 1, Some(1)),
    ("sha256", sha256, 1, Some(1)),
    ("sha512", sha512, 1, Some(1)),
    ("bcrypt", bcrypt, 1, Some(2)),
];

/// The hidden functions [`Coerce`] wraps operands in (not in Packer's list, so a template that
/// calls one by name is told it is unknown).
pub(super) const COERCE_BOOL: &str = "__kiln_bool";
pub(super) const COERCE_NUMBER: &str = "__kiln_number";

/// A condition or a `!` / `&&` / `||` operand: a bool, or a string that spells one (an
/// untyped `-var x=false`), as HCL converts.
fn coerce_bool(args: FuncArgs) -> Result<Value, String> {
    let v = arg(&args, 0);
    to_bool(v)
        .map(Value::Bool)
        .ok_or_else(|| format!("expected a bool, found {}", type_name(v)))
}

/// An arithmetic or comparison operand: a number, or a string that spells one.
fn coerce_number(args: FuncArgs) -> Result<Value, String> {
    let v = arg(&args, 0);
    to_number(v)
        .map(number_value)
        .ok_or_else(|| format!("expected a number, found {}", type_name(v)))
}

/// Wraps conditions and operator operands in [`COERCE_BOOL`] / [`COERCE_NUMBER`], so that
/// values convert as HCL converts them (`hcl-rs` only takes exact types): `var.x ? a : b`
/// with `-var x=false` on an untyped variable, `var.n + 1` with `-var n=2`.
struct Coerce;

impl Coerce {
    fn wrap(func: &str, expr: &mut Expression) {
        use hcl::edit::expr::{FuncArgs as Args, FuncName};
        let inner = std::mem::replace(expr, Expression::null());
        let mut args = Args::new();
        args.push(inner);
        *expr = Expression::FuncCall(Box::new(FuncCall::new(
            FuncName::new(hcl::edit::Ident::new(func)),
            args,
        )));
    }
}

impl VisitMut for Coerce {
    fn visit_conditional_mut(&mut self, node: &mut hcl::edit::expr::Conditional) {
        visit_mut::visit_conditional_mut(self, node);
        Self::wrap(COERCE_BOOL, &mut node.cond_expr);
    }

    fn visit_unary_op_mut(&mut self, node: &mut hcl::edit::expr::UnaryOp) {
        use hcl::expr::UnaryOperator;
        visit_mut::visit_unary_op_mut(self, node);
        match node.operator.value() {
            UnaryOperator::Not => Self::wrap(COERCE_BOOL, &mut node.expr),
            UnaryOperator::Neg => Self::wrap(COERCE_NUMBER, &mut node.expr),
        }
    }

    fn visit_binary_op_mut(&mut self, node: &mut hcl::edit::expr::BinaryOp) {
        use hcl::expr::BinaryOperator as Op;
        visit_mut::visit_binary_op_mut(self, node);
        let func = match node.operator.value() {
            Op::Eq | Op::NotEq => return,
            Op::And | Op::Or => COERCE_BOOL,
            _ => COERCE_NUMBER,
        };
        Self::wrap(func, &mut node.lhs_expr);
        Self::wrap(func, &mut node.rhs_expr);
    }
}

/// Names evaluated by [`evaluate`] itself rather than declared in the context: `try` and
/// `can` look at their arguments' failures, `convert`'s second argument is a type.
const LAZY: &[&str] = &["try", "can", "convert"];

/// Names kiln offers that are not in Packer's list (Terraform's conversions).
pub(super) const KILN_ONLY: &[&str] =
    &["tostring", "tonumber", "tobool", "tolist", "toset", "tomap"];

/// Declares every function except `env` in `ctx`.
pub(super) fn declare(ctx: &mut Context<'_>) {
    for &(name, func, min, max) in FUNCTIONS {
        ctx.declare_func(name, def(func, min, max));
    }
}

/// Declares `env`, the one function Packer allows in variable defaults.
pub(super) fn declare_env(ctx: &mut Context<'_>) {
    ctx.declare_func("env", def(env, 1, Some(1)));
}

fn def(func: Func, min: usize, max: Option<usize>) -> FuncDef {
    let b = FuncDef::builder().params(std::iter::repeat_n(ParamType::Any, min));
    if max == Some(min) {
        b.build(func)
    } else {
        b.variadic_param(ParamType::Any).build(func)
    }
}

/// Whether a call to `name` may appear where variable defaults are evaluated
/// (`in_default`) or elsewhere.
pub(super) enum Availability {
    /// kiln evaluates it here.
    Yes,
    /// kiln knows it but it cannot be used here: message and hint.
    NotHere(String, &'static str),
    /// Not one of kiln's functions.
    Unknown,
}

/// See [`Availability`].
pub(super) fn availability(name: &str, in_default: bool) -> Availability {
    let hidden = [COERCE_BOOL, COERCE_NUMBER].contains(&name);
    let offered =
        name == "env" || LAZY.contains(&name) || (!hidden && FUNCTIONS.iter().any(|f| f.0 == name));
    match (offered, name == "env", in_default) {
        (false, ..) => Availability::Unknown,
        (true, true, true) => Availability::Yes,
        (true, true, false) => Availability::NotHere(
            "function `env` can only be used in a variable's `default`".to_owned(),
            "declare `variable \"x\" { default = env(\"NAME\") }` and use `var.x`",
        ),
        (true, false, true) => Availability::NotHere(
            format!("function `{name}` cannot be used in a variable's `default`"),
            "a default must be a constant or `env(\"NAME\")`; compute values in `locals`",
        ),
        (true, false, false) => Availability::Yes,
    }
}

/// Why [`evaluate`] failed.
pub(super) enum Failure {
    /// `hcl-rs` reported this (the caller words it without values).
    Eval(hcl::eval::Error),
    /// A `try` / `can` call could not be evaluated: where and why.
    At(Option<Range<usize>>, String),
}

/// Evaluates `expr` in `ctx`, with relative paths in file functions resolved against
/// `base_dir` and `try` / `can` calls evaluated lazily.
pub(super) fn evaluate(
    expr: &Expression,
    ctx: &Context<'_>,
    base_dir: Option<&Path>,
) -> Result<Value, Failure> {
    let _guard = BaseDirGuard::set(base_dir);
    let mut expr = expr.clone();
    Coerce.visit_expr_mut(&mut expr);
    let mut lazy = Lazy {
        ctx,
        for_depth: 0,
        failure: None,
    };
    lazy.visit_expr_mut(&mut expr);
    if let Some(f) = lazy.failure {
        return Err(f);
    }
    let owned: hcl::Expression = expr.into();
    owned.evaluate(ctx).map_err(Failure::Eval)
}

thread_local! {
    /// The template directory during one [`evaluate`] call on this thread.
    static BASE_DIR: RefCell<Option<PathBuf>> = const { RefCell::new(None) };
}

/// Sets [`BASE_DIR`] and restores the previous value when dropped (also on panic).
struct BaseDirGuard(Option<PathBuf>);

impl BaseDirGuard {
    fn set(dir: Option<&Path>) -> Self {
        Self(BASE_DIR.replace(dir.map(Path::to_path_buf)))
    }
}

impl Drop for BaseDirGuard {
    fn drop(&mut self) {
        BASE_DIR.set(self.0.take());
    }
}

/// `path` with `~` expanded and, when relative, joined to the template directory.
fn resolve(path: &str) -> PathBuf {
    let p = expand_home(path);
    if p.is_absolute() {
        return p;
    }
    match BASE_DIR.with_borrow(Clone::clone) {
        Some(base) => base.join(p),
        None => p,
    }
}

fn expand_home(path: &str) -> PathBuf {
    let home = std::env::var_os("HOME").map(PathBuf::from);
    match (path, home) {
        ("~", Some(h)) => h,
        (p, Some(h)) if p.starts_with("~/") => h.join(&p[2..]),
        (p, _) => PathBuf::from(p),
    }
}

/// Replaces `try(…)` and `can(…)` calls by their values, innermost first.
struct Lazy<'a, 'c> {
    ctx: &'a Context<'c>,
    for_depth: usize,
    failure: Option<Failure>,
}

impl Lazy<'_, '_> {
    fn call(&self, call: &FuncCall) -> Result<Value, Failure> {
        let name = call.name.name.as_str();
        let at = call.span();
        if self.for_depth > 0 && uses_unbound_names(call, self.ctx) {
            return Err(Failure::At(
                at,
                format!("`{name}` on a `for` variable is not supported by kiln yet"),
            ));
        }
        let args: Vec<&Expression> = call.args.iter().collect();
        let attempt = |e: &Expression| {
            let owned: hcl::Expression = e.clone().into();
            owned.evaluate(self.ctx)
        };
        if name == "convert" {
            let [value, ty] = args.as_slice() else {
                return Err(Failure::At(
                    at,
                    format!("function `convert` takes 2 arguments, got {}", args.len()),
                ));
            };
            let ty = super::vartype::VarType::parse(ty)
                .map_err(|bad| Failure::At(bad.span.or(ty.span()), bad.message))?;
            let value = attempt(value).map_err(Failure::Eval)?;
            return ty.convert(&value).map_err(|why| {
                Failure::At(at, format!("cannot convert the value to `{ty}`: {why}"))
            });
        }
        if name == "can" {
            let [arg] = args.as_slice() else {
                return Err(Failure::At(
                    at,
                    format!("function `can` takes 1 argument, got {}", args.len()),
                ));
            };
            return Ok(Value::Bool(attempt(arg).is_ok()));
        }
        let mut last = None;
        for arg in &args {
            match attempt(arg) {
                Ok(v) => return Ok(v),
                Err(e) => last = Some(e),
            }
        }
        match last {
            None => Err(Failure::At(
                at,
                "function `try` needs at least 1 argument".to_owned(),
            )),
            Some(e) => Err(Failure::At(
                at,
                format!(
                    "no argument of `try` could be evaluated; the last one failed with: {}",
                    super::eval::describe(e.kind())
                ),
            )),
        }
    }
}

impl VisitMut for Lazy<'_, '_> {
    fn visit_expr_mut(&mut self, expr: &mut Expression) {
        if self.failure.is_some() {
            return;
        }
        visit_mut::visit_expr_mut(self, expr);
        if let Expression::FuncCall(call) = expr
            && call.name.namespace.is_empty()
            && LAZY.contains(&call.name.name.as_str())
            && self.failure.is_none()
        {
            match self.call(call) {
                Ok(v) => *expr = hcl::Expression::from(v).into(),
                Err(f) => self.failure = Some(f),
            }
        }
    }

    fn visit_for_expr_mut(&mut self, node: &mut ForExpr) {
        self.for_depth += 1;
        visit_mut::visit_for_expr_mut(self, node);
        self.for_depth -= 1;
    }

    fn visit_for_directive_mut(&mut self, node: &mut ForDirective) {
        self.for_depth += 1;
        visit_mut::visit_for_directive_mut(self, node);
        self.for_depth -= 1;
    }
}

/// Whether `call` uses a bare name the context does not define (a `for` variable).
fn uses_unbound_names(call: &FuncCall, ctx: &Context<'_>) -> bool {
    #[derive(Default)]
    struct Roots(HashSet<String>);
    impl Visit for Roots {
        fn visit_expr(&mut self, expr: &Expression) {
            if let Expression::Variable(v) = expr {
                self.0.insert(v.as_str().to_owned());
            }
            visit::visit_expr(self, expr);
        }
    }
    let mut roots = Roots::default();
    roots.visit_func_call(call);
    roots.0.iter().any(|r| {
        let probe = hcl::Expression::Variable(hcl::expr::Variable::unchecked(r.as_str()));
        probe.evaluate(ctx).is_err()
    })
}

// ---------------------------------------------------------------------------------------------
// Argument helpers. Messages name the argument by position and type, never by value.

fn arity(args: &FuncArgs, max: usize) -> Result<(), String> {
    if args.len() > max {
        return Err(format!("takes at most {max} arguments, got {}", args.len()));
    }
    Ok(())
}

fn wrong(i: usize, want: &str, v: &Value) -> String {
    format!("argument {} must be {want}, found {}", i + 1, type_name(v))
}

fn arg(args: &FuncArgs, i: usize) -> &Value {
    args.get(i).unwrap_or(&Value::Null)
}

fn str_arg(args: &FuncArgs, i: usize) -> Result<String, String> {
    let v = arg(args, i);
    to_string(v).ok_or_else(|| wrong(i, "a string", v))
}

fn num_arg(args: &FuncArgs, i: usize) -> Result<f64, String> {
    let v = arg(args, i);
    to_number(v).ok_or_else(|| wrong(i, "a number", v))
}

fn int_arg(args: &FuncArgs, i: usize) -> Result<i64, String> {
    let f = num_arg(args, i)?;
    if f.fract() != 0.0 || f.abs() > 9.0e15 {
        return Err(format!("argument {} must be a whole number", i + 1));
    }
    Ok(f as i64)
}

fn list_arg(args: &FuncArgs, i: usize) -> Result<&Vec<Value>, String> {
    match arg(args, i) {
        Value::Array(a) => Ok(a),
        v => Err(wrong(i, "a list", v)),
    }
}

fn map_arg(args: &FuncArgs, i: usize) -> Result<&hcl::Map<String, Value>, String> {
    match arg(args, i) {
        Value::Object(o) => Ok(o),
        v => Err(wrong(i, "a map or object", v)),
    }
}

fn string_list(list: &[Value], i: usize) -> Result<Vec<String>, String> {
    list.iter()
        .map(|v| {
            to_string(v).ok_or_else(|| {
                format!(
                    "argument {} must be a list of strings, found a {} in it",
                    i + 1,
                    type_name(v)
                )
            })
        })
        .collect()
}

fn s(v: impl Into<String>) -> Value {
    Value::String(v.into())
}

// ---------------------------------------------------------------------------------------------
// Time. Timestamps are RFC 3339; dates are computed with the proleptic Gregorian calendar.

/// The time of the first `timestamp()` call: the same value for the whole run, so
/// `vm_name` and `output_directory` built from it agree.
fn now() -> i64 {
    static START: OnceLock<i64> = OnceLock::new();
    *START.get_or_init(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64)
    })
}

fn timestamp(_: FuncArgs) -> Result<Value, String> {
    Ok(s(Time::utc(now()).rfc3339()))
}

/// A point in time with the UTC offset it was written with.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Time {
    /// Seconds since the Unix epoch.
    unix: i64,
    /// Offset from UTC in seconds; `None` for UTC written as `Z`.
    offset: Option<i32>,
}

impl Time {
    fn utc(unix: i64) -> Self {
        Self { unix, offset: None }
    }

    fn parse(text: &str) -> Result<Self, String> {
        let bad = || "not an RFC 3339 timestamp, like `2024-01-31T08:00:00Z`".to_owned();
        let b = text.as_bytes();
        let num = |r: Range<usize>| -> Result<i64, String> {
            let part = text.get(r).ok_or_else(bad)?;
            if part.bytes().all(|c| c.is_ascii_digit()) {
                part.parse().map_err(|_| bad())
            } else {
                Err(bad())
            }
        };
        if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't') {
            return Err(bad());
        }
        if b[13] != b':' || b[16] != b':' {
            return Err(bad());
        }
        let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
        let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
        let mut rest = &text[19..];
        if let Some(frac) = rest.strip_prefix('.') {
            let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                return Err(bad());
            }
            rest = &frac[digits..];
        }
        let offset = match rest {
            "Z" | "z" => None,
            o if o.len() == 6 && matches!(&o[..1], "+" | "-") && &o[3..4] == ":" => {
                let oh = num(text.len() - 5..text.len() - 3)?;
                let om = num(text.len() - 2..text.len())?;
                let sign = if o.starts_with('-') { -1 } else { 1 };
                Some(sign * (oh * 3600 + om * 60) as i32)
            }
            _ => return Err(bad()),
        };
        if !(1..=12).contains(&mo)
            || d < 1
            || d > days_in_month(y, mo)
            || h > 23
            || mi > 59
            || sec > 60
        {
            return Err(bad());
        }
        let local = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec;
        Ok(Self {
            unix: local - i64::from(offset.unwrap_or(0)),
            offset,
        })
    }

    /// The local date and time: (year, month, day, hour, minute, second, weekday 0=Sunday).
    fn fields(&self) -> (i64, i64, i64, i64, i64, i64, i64) {
        let local = self.unix + i64::from(self.offset.unwrap_or(0));
        let days = local.div_euclid(86400);
        let secs = local.rem_euclid(86400);
        let (y, m, d) = civil_from_days(days);
        let weekday = (days + 4).rem_euclid(7);
        (y, m, d, secs / 3600, secs / 60 % 60, secs % 60, weekday)
    }

    fn offset_text(&self, colon: bool) -> String {
        let o = self.offset.unwrap_or(0);
        let sign = if o < 0 { '-' } else { '+' };
        let (h, m) = (o.abs() / 3600, o.abs() / 60 % 60);
        if colon {
            format!("{sign}{h:02}:{m:02}")
        } else {
            format!("{sign}{h:02}{m:02}")
        }
    }

    fn rfc3339(&self) -> String {
        let (y, mo, d, h, mi, sec, _) = self.fields();
        let zone = match self.offset {
            None => "Z".to_owned(),
            Some(_) => self.offset_text(true),
        };
        format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{sec:02}{zone}")
    }
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const WEEKDAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

fn formatdate(args: FuncArgs) -> Result<Value, String> {
    let spec = str_arg(&args, 0)?;
    let t = Time::parse(&str_arg(&args, 1)?)?;
    format_time(&spec, &t).map(s)
}

/// Terraform's date format: runs of one letter are fields (`YYYY`, `MM`, `hh`, …), text in
/// single quotes is literal (`''` is a quote), other characters are copied.
fn format_time(spec: &str, t: &Time) -> Result<String, String> {
    let (y, mo, d, h, mi, sec, wd) = t.fields();
    let h12 = if h % 12 == 0 { 12 } else { h % 12 };
    let chars: Vec<char> = spec.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' {
            if chars.get(i + 1) == Some(&'\'') {
                out.push('\'');
                i += 2;
                continue;
            }
            // Quoted text, where `''` stands for a quote.
            i += 1;
            loop {
                match (chars.get(i), chars.get(i + 1)) {
                    (None, _) => {
                        return Err("unterminated literal text: a `'` has no closing `'`".into());
                    }
                    (Some('\''), Some('\'')) => {
                        out.push('\'');
                        i += 2;
                    }
                    (Some('\''), _) => {
                        i += 1;
                        break;
                    }
                    (Some(&c), _) => {
                        out.push(c);
                        i += 1;
                    }
                }
            }
            continue;
        }
        if !c.is_ascii_alphabetic() {
            out.push(c);
            i += 1;
            continue;
        }
        let run = chars[i..].iter().take_while(|&&x| x == c).count();
        let token: String = chars[i..i + run].iter().collect();
        let month = MONTHS[(mo - 1) as usize];
        let day = WEEKDAYS[wd as usize];
        let text = match token.as_str() {
            "YYYY" => format!("{y:04}"),
            "YY" => format!("{:02}", y.rem_euclid(100)),
            "MMMM" => month.to_owned(),
            "MMM" => month[..3].to_owned(),
            "MM" => format!("{mo:02}"),
            "M" => mo.to_string(),
            "DD" => format!("{d:02}"),
            "D" => d.to_string(),
            "EEEE" => day.to_owned(),
            "EEE" => day[..3].to_owned(),
            "hh" => format!("{h:02}"),
            "h" => h.to_string(),
            "HH" => format!("{h12:02}"),
            "H" => h12.to_string(),
            "AA" => (if h < 12 { "AM" } else { "PM" }).to_owned(),
            "aa" => (if h < 12 { "am" } else { "pm" }).to_owned(),
            "mm" => format!("{mi:02}"),
            "m" => mi.to_string(),
            "ss" => format!("{sec:02}"),
            "s" => sec.to_string(),
            "ZZZZZ" => t.offset_text(true),
            "ZZZZ" => t.offset_text(false),
            "ZZZ" if t.offset.unwrap_or(0) == 0 => "UTC".to_owned(),
            "ZZZ" => t.offset_text(false),
            "Z" if t.offset.unwrap_or(0) == 0 => "Z".to_owned(),
            "Z" => t.offset_text(true),
            other => {
                return Err(format!(
                    "invalid date format verb `{other}`; put literal text in single quotes"
                ));
            }
        };
        out.push_str(&text);
        i += run;
    }
    Ok(out)
}

fn timeadd(args: FuncArgs) -> Result<Value, String> {
    let t = Time::parse(&str_arg(&args, 0)?)?;
    let secs = parse_duration(&str_arg(&args, 1)?)?;
    Ok(s(Time {
        unix: t.unix + secs,
        offset: t.offset,
    }
    .rfc3339()))
}

/// A Go duration (`1h30m`, `-10s`, `1.5h`) in whole seconds.
fn parse_duration(text: &str) -> Result<i64, String> {
    let bad = || "not a duration like `1h30m` or `-10s`".to_owned();
    let (sign, mut rest) = match text.as_bytes().first() {
        Some(b'-') => (-1.0, &text[1..]),
        Some(b'+') => (1.0, &text[1..]),
        _ => (1.0, text),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total = 0.0;
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let value: f64 = rest[..n].parse().map_err(|_| bad())?;
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..u] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 1e-3,
            "us" | "µs" => 1e-6,
            "ns" => 1e-9,
            _ => return Err(bad()),
        };
        total += value * scale;
        rest = &rest[u..];
    }
    Ok((sign * total).trunc() as i64)
}

fn uuidv4(_: FuncArgs) -> Result<Value, String> {
    Ok(s(crate::postprocessor::manifest::new_run_uuid()))
}

/// A name-based (version 5, SHA-1) UUID in namespace `dns`, `url`, `oid`, `x500` or a UUID.
fn uuidv5(args: FuncArgs) -> Result<Value, String> {
    let ns = str_arg(&args, 0)?;
    let name = str_arg(&args, 1)?;
    let ns_text = match ns.as_str() {
        "dns" => "6ba7b810-9dad-11d1-80b4-00c04fd430c8",
        "url" => "6ba7b811-9dad-11d1-80b4-00c04fd430c8",
        "oid" => "6ba7b812-9dad-11d1-80b4-00c04fd430c8",
        "x500" => "6ba7b814-9dad-11d1-80b4-00c04fd430c8",
        other => other,
    };
    let hex: String = ns_text.chars().filter(|&c| c != '-').collect();
    if hex.len() != 32 || ns_text.len() != 36 {
        return Err("the namespace must be dns, url, oid, x500 or a UUID".to_owned());
    }
    let mut ns_bytes = [0u8; 16];
    for (i, b) in ns_bytes.iter_mut().enumerate() {
        *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16)
            .map_err(|_| "the namespace must be dns, url, oid, x500 or a UUID".to_owned())?;
    }
    let digest = sha1::Sha1::new()
        .chain_update(ns_bytes)
        .chain_update(name.as_bytes())
        .finalize();
    let mut b = [0u8; 16];
    b.copy_from_slice(&digest[..16]);
    Ok(s(crate::types::uuid_text(b, 5)))
}

fn env(args: FuncArgs) -> Result<Value, String> {
    let name = str_arg(&args, 0)?;
    Ok(s(std::env::var(name).unwrap_or_default()))
}

// ---------------------------------------------------------------------------------------------
// Files and paths.

fn read(path: &str) -> Result<Vec<u8>, String> {
    let full = resolve(path);
    std::fs::read(&full).map_err(|e| format!("cannot read `{}`: {e}", full.display()))
}

fn read_text(path: &str) -> Result<String, String> {
    String::from_utf8(read(path)?)
        .map_err(|_| format!("`{path}` is not UTF-8 text; use `filebase64` for binary files"))
}

fn file(args: FuncArgs) -> Result<Value, String> {
    read_text(&str_arg(&args, 0)?).map(s)
}

fn filebase64(args: FuncArgs) -> Result<Value, String> {
    let bytes = read(&str_arg(&args, 0)?)?;
    Ok(s(base64::engine::general_purpose::STANDARD.encode(bytes)))
}

fn fileexists(args: FuncArgs) -> Result<Value, String> {
    let full = resolve(&str_arg(&args, 0)?);
    match std::fs::metadata(&full) {
        Ok(m) if m.is_file() => Ok(Value::Bool(true)),
        Ok(_) => Err(format!("`{}` exists but is not a file", full.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Value::Bool(false)),
        Err(e) => Err(format!("cannot read `{}`: {e}", full.display())),
    }
}

fn fileset(args: FuncArgs) -> Result<Value, String> {
    let dir = str_arg(&args, 0)?;
    let pattern = str_arg(&args, 1)?;
    let base = resolve(&dir);
    let full = base.join(&pattern);
    let paths =
        glob::glob(&full.to_string_lossy()).map_err(|e| format!("invalid pattern: {}", e.msg))?;
    let mut found = Vec::new();
    for entry in paths {
        let p = entry.map_err(|e| format!("cannot read `{}`", e.path().display()))?;
        if p.is_file()
            && let Ok(rel) = p.strip_prefix(&base)
        {
            found.push(rel.to_string_lossy().into_owned());
        }
    }
    found.sort();
    Ok(Value::Array(found.into_iter().map(s).collect()))
}

fn templatefile(args: FuncArgs) -> Result<Value, String> {
    let path = str_arg(&args, 0)?;
    let vars = map_arg(&args, 1)?;
    let text = read_text(&path)?;
    let template: hcl::Template = text
        .parse()
        .map_err(|e: hcl::Error| format!("cannot parse template `{path}`: {e}"))?;
    let mut ctx = Context::new();
    declare(&mut ctx);
    ctx.declare_func(
        "templatefile",
        def(
            |_| Err("cannot be called from a template file".to_owned()),
            2,
            Some(2),
        ),
    );
    for (k, v) in vars {
        if hcl::Identifier::new(k.as_str()).is_err() {
            return Err(format!(
                "template variable name `{k}` is not a valid identifier"
            ));
        }
        ctx.declare_var(k.as_str(), v.clone());
    }
    template
        .evaluate(&ctx)
        .map(s)
        .map_err(|e| format!("in template `{path}`: {}", super::eval::describe(e.kind())))
}

/// Go's `filepath.Clean`: lexical `.` and `..` removal.
fn clean(path: &Path) -> PathBuf {
    let mut out: Vec<Component> = Vec::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => match out.last() {
                Some(Component::Normal(_)) => {
                    out.pop();
                }
                Some(Component::RootDir) => {}
                _ => out.push(c),
            },
            c => out.push(c),
        }
    }
    if out.is_empty() {
        return PathBuf::from(".");
    }
    out.iter().collect()
}

fn abspath(args: FuncArgs) -> Result<Value, String> {
    let p = str_arg(&args, 0)?;
    let abs = std::path::absolute(&p).map_err(|e| format!("cannot make the path absolute: {e}"))?;
    Ok(s(clean(&abs).to_string_lossy()))
}

fn basename(args: FuncArgs) -> Result<Value, String> {
    let p = str_arg(&args, 0)?;
    if p.is_empty() {
        return Ok(s("."));
    }
    let trimmed = p.trim_end_matches('/');
    if trimmed.is_empty() {
        return Ok(s("/"));
    }
    Ok(s(trimmed.rsplit('/').next().unwrap_or(trimmed)))
}

fn dirname(args: FuncArgs) -> Result<Value, String> {
    let p = str_arg(&args, 0)?;
    let dir = match p.rfind('/') {
        Some(i) => &p[..=i],
        None => "",
    };
    Ok(s(clean(Path::new(dir)).to_string_lossy()))
}

fn pathexpand(args: FuncArgs) -> Result<Value, String> {
    Ok(s(expand_home(&str_arg(&args, 0)?).to_string_lossy()))
}

// ---------------------------------------------------------------------------------------------
// Strings.

fn join(args: FuncArgs) -> Result<Value, String> {
    let sep = str_arg(&args, 0)?;
    if args.len() < 2 {
        return Err("needs at least one list to join".to_owned());
    }
    let mut parts = Vec::new();
    for i in 1..args.len() {
        parts.extend(string_list(list_arg(&args, i)?, i)?);
    }
    Ok(s(parts.join(&sep)))
}

fn split(args: FuncArgs) -> Result<Value, String> {
    let sep = str_arg(&args, 0)?;
    let text = str_arg(&args, 1)?;
    let parts: Vec<Value> = if sep.is_empty() {
        text.chars().map(|c| s(c.to_string())).collect()
    } else {
        text.split(sep.as_str()).map(s).collect()
    };
    Ok(Value::Array(parts))
}

fn lower(args: FuncArgs) -> Result<Value, String> {
    Ok(s(str_arg(&args, 0)?.to_lowercase()))
}

fn upper(args: FuncArgs) -> Result<Value, String> {
    Ok(s(str_arg(&args, 0)?.to_uppercase()))
}

fn title(args: FuncArgs) -> Result<Value, String> {
    let text = str_arg(&args, 0)?;
    let mut out = String::with_capacity(text.len());
    let mut at_start = true;
    for c in text.chars() {
        if at_start && c.is_alphabetic() {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        at_start = !(c.is_alphanumeric() || c == '_' || c == '\'');
    }
    Ok(s(out))
}

fn compile(pattern: &str) -> Result<regex::Regex, String> {
    regex::Regex::new(pattern).map_err(|e| match e {
        regex::Error::Syntax(msg) => format!("invalid regular expression:\n{msg}"),
        _ => "invalid regular expression: too large".to_owned(),
    })
}

fn replace(args: FuncArgs) -> Result<Value, String> {
    let text = str_arg(&args, 0)?;
    let find = str_arg(&args, 1)?;
    let with = str_arg(&args, 2)?;
    if find.len() > 1
        && let Some(pattern) = find.strip_prefix('/').and_then(|f| f.strip_suffix('/'))
    {
        return Ok(s(compile(pattern)?.replace_all(&text, with.as_str())));
    }
    Ok(s(text.replace(&find, &with)))
}

fn regex_replace(args: FuncArgs) -> Result<Value, String> {
    let text = str_arg(&args, 0)?;
    let re = compile(&str_arg(&args, 1)?)?;
    let with = str_arg(&args, 2)?;
    Ok(s(re.replace_all(&text, with.as_str())))
}

/// What one match of `re` yields: the match, the list of groups, or the object of named
/// groups (Terraform's `regex`).
fn captures_value(re: &regex::Regex, caps: &regex::Captures<'_>) -> Result<Value, String> {
    let groups = re.captures_len() - 1;
    let named = re.capture_names().flatten().count();
    let text = |m: Option<regex::Match<'_>>| m.map_or(Value::Null, |m| s(m.as_str()));
    if groups == 0 {
        return Ok(text(caps.get(0)));
    }
    if named == 0 {
        return Ok(Value::Array(
            (1..=groups).map(|i| text(caps.get(i))).collect(),
        ));
    }
    if named != groups {
        return Err("a pattern cannot mix named and unnamed capture groups".to_owned());
    }
    Ok(Value::Object(
        re.capture_names()
            .flatten()
            .map(|n| (n.to_owned(), text(caps.name(n))))
            .collect(),
    ))
}

fn regex(args: FuncArgs) -> Result<Value, String> {
    let re = compile(&str_arg(&args, 0)?)?;
    let text = str_arg(&args, 1)?;
    let caps = re
        .captures(&text)
        .ok_or("the pattern did not match any part of the string")?;
    captures_value(&re, &caps)
}

fn regexall(args: FuncArgs) -> Result<Value, String> {
    let re = compile(&str_arg(&args, 0)?)?;
    let text = str_arg(&args, 1)?;
    re.captures_iter(&text)
        .map(|c| captures_value(&re, &c))
        .collect::<Result<_, _>>()
        .map(Value::Array)
}

fn trim(args: FuncArgs) -> Result<Value, String> {
    let text = str_arg(&args, 0)?;
    let cut: Vec<char> = str_arg(&args, 1)?.chars().collect();
    Ok(s(text.trim_matches(cut.as_slice())))
}

fn trimspace(args: FuncArgs) -> Result<Value, String> {
    Ok(s(str_arg(&args, 0)?.trim()))
}

fn trimprefix(args: FuncArgs) -> Result<Value, String> {
    let text = str_arg(&args, 0)?;
    let prefix = str_arg(&args, 1)?;
    Ok(s(text.strip_prefix(prefix.as_str()).unwrap_or(&text)))
}

fn trimsuffix(args: FuncArgs) -> Result<Value, String> {
    let text = str_arg(&args, 0)?;
    let suffix = str_arg(&args, 1)?;
    Ok(s(text.strip_suffix(suffix.as_str()).unwrap_or(&text)))
}

fn chomp(args: FuncArgs) -> Result<Value, String> {
    Ok(s(str_arg(&args, 0)?.trim_end_matches(['\n', '\r'])))
}

fn indent(args: FuncArgs) -> Result<Value, String> {
    let n = int_arg(&args, 0)?;
    let text = str_arg(&args, 1)?;
    let pad = " ".repeat(usize::try_from(n).map_err(|_| "argument 1 must not be negative")?);
    Ok(s(text.replace('\n', &format!("\n{pad}"))))
}

fn substr(args: FuncArgs) -> Result<Value, String> {
    let chars: Vec<char> = str_arg(&args, 0)?.chars().collect();
    let len = chars.len() as i64;
    let mut offset = int_arg(&args, 1)?;
    let length = int_arg(&args, 2)?;
    if offset < 0 {
        offset = (offset + len).max(0);
    }
    if offset >= len {
        return Ok(s(""));
    }
    let end = if length < 0 {
        len
    } else {
        (offset + length).min(len)
    };
    Ok(s(chars[offset as usize..end as usize]
        .iter()
        .collect::<String>()))
}

fn strrev(args: FuncArgs) -> Result<Value, String> {
    Ok(s(str_arg(&args, 0)?.chars().rev().collect::<String>()))
}

fn startswith(args: FuncArgs) -> Result<Value, String> {
    Ok(Value::Bool(
        str_arg(&args, 0)?.starts_with(&str_arg(&args, 1)?),
    ))
}

fn endswith(args: FuncArgs) -> Result<Value, String> {
    Ok(Value::Bool(
        str_arg(&args, 0)?.ends_with(&str_arg(&args, 1)?),
    ))
}

fn strcontains(args: FuncArgs) -> Result<Value, String> {
    Ok(Value::Bool(
        str_arg(&args, 0)?.contains(&str_arg(&args, 1)?),
    ))
}

// `format` and `formatlist`: Go's verbs as go-cty implements them.

struct Verb {
    minus: bool,
    plus: bool,
    space: bool,
    zero: bool,
    sharp: bool,
    width: Option<usize>,
    precision: Option<usize>,
    verb: char,
}

fn format(args: FuncArgs) -> Result<Value, String> {
    let spec = str_arg(&args, 0)?;
    format_values(&spec, &args[1..]).map(s)
}

fn format_values(spec: &str, values: &[Value]) -> Result<String, String> {
    let chars: Vec<char> = spec.chars().collect();
    let mut out = String::new();
    let mut next = 0;
    let mut used = 0;
    let mut i = 0;
    while i < chars.len() {
        if chars[i] != '%' {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        let start = i;
        i += 1;
        if chars.get(i) == Some(&'%') {
            out.push('%');
            i += 1;
            continue;
        }
        let mut v = Verb {
            minus: false,
            plus: false,
            space: false,
            zero: false,
            sharp: false,
            width: None,
            precision: None,
            verb: ' ',
        };
        while let Some(&c) = chars.get(i) {
            match c {
                '-' => v.minus = true,
                '+' => v.plus = true,
                ' ' => v.space = true,
                '0' => v.zero = true,
                '#' => v.sharp = true,
                _ => break,
            }
            i += 1;
        }
        if chars.get(i) == Some(&'[') {
            let close = chars[i..]
                .iter()
                .position(|&c| c == ']')
                .ok_or("unterminated `[` in a format verb")?;
            let n: usize = chars[i + 1..i + close]
                .iter()
                .collect::<String>()
                .parse()
                .map_err(|_| "an argument index `[n]` must be a number")?;
            if n == 0 {
                return Err("argument indexes `[n]` start at 1".to_owned());
            }
            next = n - 1;
            i += close + 1;
        }
        let digits = |i: &mut usize| -> Option<usize> {
            let n = chars[*i..]
                .iter()
                .take_while(|c| c.is_ascii_digit())
                .count();
            let text: String = chars[*i..*i + n].iter().collect();
            *i += n;
            text.parse().ok()
        };
        v.width = digits(&mut i);
        if chars.get(i) == Some(&'.') {
            i += 1;
            v.precision = Some(digits(&mut i).unwrap_or(0));
        }
        v.verb = *chars
            .get(i)
            .ok_or("the format string ends inside a `%` verb")?;
        i += 1;
        let at = chars[..start].len() + 1;
        let value = values.get(next).ok_or_else(|| {
            format!(
                "not enough arguments for the verb at character {at}: it needs argument {}, there are {}",
                next + 1,
                values.len()
            )
        })?;
        next += 1;
        used = used.max(next);
        out.push_str(&format_one(&v, value, next)?);
    }
    if used < values.len() {
        return Err(format!(
            "too many arguments: the format string uses {used} of {}",
            values.len()
        ));
    }
    Ok(out)
}

fn format_one(v: &Verb, value: &Value, n: usize) -> Result<String, String> {
    let bad = |want: &str| {
        format!(
            "`%{}` needs {want} for argument {n}, found {}",
            v.verb,
            type_name(value)
        )
    };
    let body = match v.verb {
        'v' if v.sharp => json(value),
        'v' => match value {
            Value::Array(_) | Value::Object(_) => json(value),
            Value::Null => "null".to_owned(),
            other => to_string(other).unwrap_or_default(),
        },
        's' => to_string(value).ok_or_else(|| bad("a string"))?,
        'q' => json_string(&to_string(value).ok_or_else(|| bad("a string"))?),
        't' => to_bool(value).ok_or_else(|| bad("a bool"))?.to_string(),
        'd' | 'b' | 'o' | 'x' | 'X' if matches!(value, Value::String(_)) && v.verb != 'd' => {
            let text = to_string(value).unwrap_or_default();
            match v.verb {
                'x' => text.bytes().map(|b| format!("{b:02x}")).collect(),
                'X' => text.bytes().map(|b| format!("{b:02X}")).collect(),
                _ => return Err(bad("a number")),
            }
        }
        'd' | 'b' | 'o' | 'x' | 'X' => {
            let f = to_number(value).ok_or_else(|| bad("a number"))?;
            if f.fract() != 0.0 {
                return Err(bad("a whole number"));
            }
            let i = f as i64;
            let mag = i.unsigned_abs();
            let digits = match v.verb {
                'b' => format!("{mag:b}"),
                'o' => format!("{mag:o}"),
                'x' => format!("{mag:x}"),
                'X' => format!("{mag:X}"),
                _ => mag.to_string(),
            };
            sign(v, i < 0) + &digits
        }
        'e' | 'E' | 'f' | 'F' | 'g' | 'G' => {
            let f = to_number(value).ok_or_else(|| bad("a number"))?;
            let text = match v.verb {
                'e' | 'E' => go_exp(f.abs(), v.precision.unwrap_or(6)),
                'f' | 'F' => format!("{:.*}", v.precision.unwrap_or(6), f.abs()),
                _ => match v.precision {
                    Some(p) => format!("{:.*}", p, f.abs()),
                    None => number_value(f.abs()).to_string(),
                },
            };
            let text = if v.verb.is_ascii_uppercase() {
                text.to_uppercase()
            } else {
                text
            };
            sign(v, f < 0.0) + &text
        }
        other => return Err(format!("unsupported format verb `%{other}`")),
    };
    let body = match (v.precision, v.verb) {
        (Some(p), 's' | 'v') => body.chars().take(p).collect(),
        _ => body,
    };
    Ok(pad(v, body))
}

fn sign(v: &Verb, negative: bool) -> String {
    match (negative, v.plus, v.space) {
        (true, ..) => "-".to_owned(),
        (false, true, _) => "+".to_owned(),
        (false, false, true) => " ".to_owned(),
        _ => String::new(),
    }
}

/// Go's `%e`: mantissa, `e`, sign, at least two exponent digits.
fn go_exp(f: f64, precision: usize) -> String {
    let text = format!("{f:.precision$e}");
    match text.split_once('e') {
        Some((m, e)) => {
            let (sign, digits) = match e.strip_prefix('-') {
                Some(d) => ('-', d),
                None => ('+', e),
            };
            format!("{m}e{sign}{digits:0>2}")
        }
        None => text,
    }
}

fn pad(v: &Verb, body: String) -> String {
    let width = v.width.unwrap_or(0);
    let len = body.chars().count();
    if len >= width {
        return body;
    }
    let fill = width - len;
    if v.minus {
        return body + &" ".repeat(fill);
    }
    let numeric = matches!(
        v.verb,
        'd' | 'b' | 'o' | 'x' | 'X' | 'e' | 'E' | 'f' | 'F' | 'g' | 'G'
    );
    if v.zero && numeric {
        let split = body.find(|c: char| c.is_ascii_digit()).unwrap_or(0);
        return format!("{}{}{}", &body[..split], "0".repeat(fill), &body[split..]);
    }
    " ".repeat(fill) + &body
}

fn formatlist(args: FuncArgs) -> Result<Value, String> {
    let spec = str_arg(&args, 0)?;
    let mut rows = None;
    for (i, v) in args.iter().enumerate().skip(1) {
        if let Value::Array(a) = v {
            match rows {
                Some(n) if n != a.len() => {
                    return Err(format!(
                        "argument {} has {} elements, an earlier list has {n}; lists must be as long",
                        i + 1,
                        a.len()
                    ));
                }
                _ => rows = Some(a.len()),
            }
        }
    }
    let mut out = Vec::new();
    for row in 0..rows.unwrap_or(1) {
        let values: Vec<Value> = args[1..]
            .iter()
            .map(|v| match v {
                Value::Array(a) => a[row].clone(),
                other => other.clone(),
            })
            .collect();
        out.push(s(format_values(&spec, &values)?));
    }
    Ok(Value::Array(out))
}

// ---------------------------------------------------------------------------------------------
// Collections. Lists, sets and tuples are all `Value::Array`; maps and objects `Value::Object`.

fn length(args: FuncArgs) -> Result<Value, String> {
    let n = match arg(&args, 0) {
        Value::String(t) => t.chars().count(),
        Value::Array(a) => a.len(),
        Value::Object(o) => o.len(),
        v => return Err(wrong(0, "a string, list or map", v)),
    };
    Ok(Value::from(n as u64))
}

fn concat(args: FuncArgs) -> Result<Value, String> {
    let mut out = Vec::new();
    for i in 0..args.len() {
        out.extend(list_arg(&args, i)?.iter().cloned());
    }
    Ok(Value::Array(out))
}

fn merge(args: FuncArgs) -> Result<Value, String> {
    let mut out = hcl::Map::new();
    for i in 0..args.len() {
        if args[i].is_null() {
            continue;
        }
        for (k, v) in map_arg(&args, i)? {
            out.insert(k.clone(), v.clone());
        }
    }
    Ok(Value::Object(out))
}

fn lookup(args: FuncArgs) -> Result<Value, String> {
    arity(&args, 3)?;
    let map = map_arg(&args, 0)?;
    let key = str_arg(&args, 1)?;
    match (map.get(&key), args.get(2)) {
        (Some(v), _) => Ok(v.clone()),
        (None, Some(default)) => Ok(default.clone()),
        (None, None) => Err("the key is not in the map, and no default was given".to_owned()),
    }
}

/// HCL equality, where a number equals the number a string spells only if types agree.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

fn contains(args: FuncArgs) -> Result<Value, String> {
    let list = list_arg(&args, 0)?;
    let needle = arg(&args, 1);
    Ok(Value::Bool(list.iter().any(|v| same(v, needle))))
}

fn coalesce(args: FuncArgs) -> Result<Value, String> {
    args.iter()
        .find(|v| !v.is_null() && !matches!(v, Value::String(t) if t.is_empty()))
        .cloned()
        .ok_or_else(|| "every argument is null or an empty string".to_owned())
}

fn coalescelist(args: FuncArgs) -> Result<Value, String> {
    for i in 0..args.len() {
        if !list_arg(&args, i)?.is_empty() {
            return Ok(args[i].clone());
        }
    }
    Ok(Value::Array(Vec::new()))
}

fn compact(args: FuncArgs) -> Result<Value, String> {
    let list = list_arg(&args, 0)?;
    Ok(Value::Array(
        list.iter()
            .filter(|v| !v.is_null() && !matches!(v, Value::String(t) if t.is_empty()))
            .cloned()
            .collect(),
    ))
}

fn dedup(list: &[Value]) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    for v in list {
        if !out.iter().any(|o| same(o, v)) {
            out.push(v.clone());
        }
    }
    out
}

fn distinct(args: FuncArgs) -> Result<Value, String> {
    Ok(Value::Array(dedup(list_arg(&args, 0)?)))
}

fn element(args: FuncArgs) -> Result<Value, String> {
    let list = list_arg(&args, 0)?;
    let i = int_arg(&args, 1)?;
    if list.is_empty() {
        return Err("cannot take an element of an empty list".to_owned());
    }
    if i < 0 {
        return Err("the index must not be negative".to_owned());
    }
    Ok(list[i as usize % list.len()].clone())
}

fn flatten_into(list: &[Value], out: &mut Vec<Value>) {
    for v in list {
        match v {
            Value::Array(inner) => flatten_into(inner, out),
            other => out.push(other.clone()),
        }
    }
}

fn flatten(args: FuncArgs) -> Result<Value, String> {
    let mut out = Vec::new();
    flatten_into(list_arg(&args, 0)?, &mut out);
    Ok(Value::Array(out))
}

fn index(args: FuncArgs) -> Result<Value, String> {
    let list = list_arg(&args, 0)?;
    let needle = arg(&args, 1);
    list.iter()
        .position(|v| same(v, needle))
        .map(|i| Value::from(i as u64))
        .ok_or_else(|| "the item is not in the list".to_owned())
}

fn sorted(map: &hcl::Map<String, Value>) -> Vec<(&String, &Value)> {
    let mut entries: Vec<_> = map.iter().collect();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    entries
}

fn keys(args: FuncArgs) -> Result<Value, String> {
    let map = map_arg(&args, 0)?;
    Ok(Value::Array(
        sorted(map)
            .into_iter()
            .map(|(k, _)| s(k.as_str()))
            .collect(),
    ))
}

fn values(args: FuncArgs) -> Result<Value, String> {
    let map = map_arg(&args, 0)?;
    Ok(Value::Array(
        sorted(map).into_iter().map(|(_, v)| v.clone()).collect(),
    ))
}

fn reverse(args: FuncArgs) -> Result<Value, String> {
    let mut list = list_arg(&args, 0)?.clone();
    list.reverse();
    Ok(Value::Array(list))
}

fn slice(args: FuncArgs) -> Result<Value, String> {
    let list = list_arg(&args, 0)?;
    let start = int_arg(&args, 1)?;
    let end = int_arg(&args, 2)?;
    if start < 0 || end < start || end as usize > list.len() {
        return Err(format!(
            "the range {start}..{end} is not within a list of {} elements",
            list.len()
        ));
    }
    Ok(Value::Array(list[start as usize..end as usize].to_vec()))
}

fn sort(args: FuncArgs) -> Result<Value, String> {
    let mut list = string_list(list_arg(&args, 0)?, 0)?;
    list.sort();
    Ok(Value::Array(list.into_iter().map(s).collect()))
}

fn zipmap(args: FuncArgs) -> Result<Value, String> {
    let keys = string_list(list_arg(&args, 0)?, 0)?;
    let values = list_arg(&args, 1)?;
    if keys.len() != values.len() {
        return Err(format!(
            "{} keys but {} values; the lists must be as long",
            keys.len(),
            values.len()
        ));
    }
    Ok(Value::Object(
        keys.into_iter().zip(values.iter().cloned()).collect(),
    ))
}

fn range(args: FuncArgs) -> Result<Value, String> {
    arity(&args, 3)?;
    let (start, limit) = match args.len() {
        1 => (0.0, num_arg(&args, 0)?),
        _ => (num_arg(&args, 0)?, num_arg(&args, 1)?),
    };
    let step = match args.len() {
        3 => num_arg(&args, 2)?,
        _ if limit < start => -1.0,
        _ => 1.0,
    };
    if step == 0.0 {
        return Err("the step must not be zero".to_owned());
    }
    if (step > 0.0 && limit < start) || (step < 0.0 && limit > start) {
        return Err("the step goes away from the limit".to_owned());
    }
    let count = ((limit - start) / step).ceil();
    if count > 1024.0 {
        return Err("more than 1024 elements".to_owned());
    }
    Ok(Value::Array(
        (0..count as usize)
            .map(|i| number_value(start + step * i as f64))
            .collect(),
    ))
}

fn chunklist(args: FuncArgs) -> Result<Value, String> {
    let list = list_arg(&args, 0)?;
    let size = int_arg(&args, 1)?;
    if size < 0 {
        return Err("the chunk size must not be negative".to_owned());
    }
    if size == 0 {
        return Ok(Value::Array(vec![Value::Array(list.clone())]));
    }
    Ok(Value::Array(
        list.chunks(size as usize)
            .map(|c| Value::Array(c.to_vec()))
            .collect(),
    ))
}

fn setunion(args: FuncArgs) -> Result<Value, String> {
    let mut all = Vec::new();
    for i in 0..args.len() {
        all.extend(list_arg(&args, i)?.iter().cloned());
    }
    Ok(Value::Array(dedup(&all)))
}

fn setintersection(args: FuncArgs) -> Result<Value, String> {
    let first = dedup(list_arg(&args, 0)?);
    let mut rest = Vec::new();
    for i in 1..args.len() {
        rest.push(list_arg(&args, i)?);
    }
    Ok(Value::Array(
        first
            .into_iter()
            .filter(|v| rest.iter().all(|l| l.iter().any(|o| same(o, v))))
            .collect(),
    ))
}

/// Every combination of one element from each list, in order.
fn setproduct(args: FuncArgs) -> Result<Value, String> {
    let mut product: Vec<Vec<Value>> = vec![Vec::new()];
    for i in 0..args.len() {
        let list = list_arg(&args, i)?;
        product = product
            .iter()
            .flat_map(|prefix| {
                list.iter().map(move |v| {
                    let mut p = prefix.clone();
                    p.push(v.clone());
                    p
                })
            })
            .collect();
    }
    Ok(Value::Array(
        product.into_iter().map(Value::Array).collect(),
    ))
}

fn bools(args: &FuncArgs) -> Result<Vec<bool>, String> {
    list_arg(args, 0)?
        .iter()
        .map(|v| to_bool(v).ok_or_else(|| "argument 1 must be a list of bools".to_owned()))
        .collect()
}

fn alltrue(args: FuncArgs) -> Result<Value, String> {
    Ok(Value::Bool(bools(&args)?.into_iter().all(|b| b)))
}

fn anytrue(args: FuncArgs) -> Result<Value, String> {
    Ok(Value::Bool(bools(&args)?.into_iter().any(|b| b)))
}

// ---------------------------------------------------------------------------------------------
// Numbers.

fn numbers(args: &FuncArgs) -> Result<Vec<f64>, String> {
    (0..args.len()).map(|i| num_arg(args, i)).collect()
}

fn min(args: FuncArgs) -> Result<Value, String> {
    Ok(number_value(
        numbers(&args)?.into_iter().fold(f64::INFINITY, f64::min),
    ))
}

fn max(args: FuncArgs) -> Result<Value, String> {
    Ok(number_value(
        numbers(&args)?
            .into_iter()
            .fold(f64::NEG_INFINITY, f64::max),
    ))
}

fn sum(args: FuncArgs) -> Result<Value, String> {
    let list = list_arg(&args, 0)?;
    if list.is_empty() {
        return Err("cannot sum an empty list".to_owned());
    }
    let mut total = 0.0;
    for v in list {
        total += to_number(v).ok_or("argument 1 must be a list of numbers")?;
    }
    Ok(number_value(total))
}

fn abs(args: FuncArgs) -> Result<Value, String> {
    Ok(number_value(num_arg(&args, 0)?.abs()))
}

fn ceil(args: FuncArgs) -> Result<Value, String> {
    Ok(number_value(num_arg(&args, 0)?.ceil()))
}

fn floor(args: FuncArgs) -> Result<Value, String> {
    Ok(number_value(num_arg(&args, 0)?.floor()))
}

fn finite(f: f64) -> Result<Value, String> {
    if f.is_finite() {
        Ok(number_value(f))
    } else {
        Err("the result is not a finite number".to_owned())
    }
}

fn pow(args: FuncArgs) -> Result<Value, String> {
    finite(num_arg(&args, 0)?.powf(num_arg(&args, 1)?))
}

fn log(args: FuncArgs) -> Result<Value, String> {
    finite(num_arg(&args, 0)?.log(num_arg(&args, 1)?))
}

fn signum(args: FuncArgs) -> Result<Value, String> {
    let f = num_arg(&args, 0)?;
    Ok(Value::from(if f > 0.0 {
        1
    } else if f < 0.0 {
        -1
    } else {
        0
    }))
}

fn parseint(args: FuncArgs) -> Result<Value, String> {
    let text = str_arg(&args, 0)?;
    let base = int_arg(&args, 1)?;
    if !(2..=62).contains(&base) {
        return Err("the base must be between 2 and 62".to_owned());
    }
    let (negative, digits) = match text.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, text.strip_prefix('+').unwrap_or(&text)),
    };
    if digits.is_empty() {
        return Err("the string holds no digits".to_owned());
    }
    let mut n: i64 = 0;
    for c in digits.chars() {
        let d = match c {
            '0'..='9' => c as i64 - '0' as i64,
            'a'..='z' => c as i64 - 'a' as i64 + 10,
            'A'..='Z' if base <= 36 => c as i64 - 'A' as i64 + 10,
            'A'..='Z' => c as i64 - 'A' as i64 + 36,
            _ => 99,
        };
        if d >= base {
            return Err(format!("the string is not a number in base {base}"));
        }
        n = n
            .checked_mul(base)
            .and_then(|n| n.checked_add(d))
            .ok_or("the number is too large")?;
    }
    Ok(Value::from(if negative { -n } else { n }))
}

// ---------------------------------------------------------------------------------------------
// Conversions.

fn tostring(args: FuncArgs) -> Result<Value, String> {
    match arg(&args, 0) {
        Value::Null => Ok(Value::Null),
        v => to_string(v)
            .map(s)
            .ok_or_else(|| wrong(0, "a string, number or bool", v)),
    }
}

fn tonumber(args: FuncArgs) -> Result<Value, String> {
    match arg(&args, 0) {
        Value::Null => Ok(Value::Null),
        v => to_number(v)
            .map(number_value)
            .ok_or_else(|| "argument 1 cannot be converted to a number".to_owned()),
    }
}

fn tobool(args: FuncArgs) -> Result<Value, String> {
    match arg(&args, 0) {
        Value::Null => Ok(Value::Null),
        v => to_bool(v)
            .map(Value::Bool)
            .ok_or_else(|| "argument 1 cannot be converted to a bool".to_owned()),
    }
}

fn tolist(args: FuncArgs) -> Result<Value, String> {
    list_arg(&args, 0).map(|l| Value::Array(l.clone()))
}

fn toset(args: FuncArgs) -> Result<Value, String> {
    distinct(args)
}

fn tomap(args: FuncArgs) -> Result<Value, String> {
    map_arg(&args, 0).map(|m| Value::Object(m.clone()))
}

// ---------------------------------------------------------------------------------------------
// Encodings and hashes.

/// A JSON string as Go's encoder writes it (`<`, `>` and `&` escaped too).
fn json_string(text: &str) -> String {
    let quoted = serde_json::to_string(text).unwrap_or_else(|_| "\"\"".to_owned());
    quoted
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
}

/// Compact JSON with object keys sorted, as Terraform's `jsonencode` writes it.
fn json(v: &Value) -> String {
    match v {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(t) => json_string(t),
        Value::Array(a) => format!("[{}]", a.iter().map(json).collect::<Vec<_>>().join(",")),
        Value::Object(o) => format!(
            "{{{}}}",
            sorted(o)
                .into_iter()
                .map(|(k, v)| format!("{}:{}", json_string(k), json(v)))
                .collect::<Vec<_>>()
                .join(",")
        ),
    }
}

fn jsonencode(args: FuncArgs) -> Result<Value, String> {
    Ok(s(json(arg(&args, 0))))
}

fn jsondecode(args: FuncArgs) -> Result<Value, String> {
    let text = str_arg(&args, 0)?;
    let parsed: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| format!("invalid JSON at line {}, column {}", e.line(), e.column()))?;
    Ok(from_json(parsed))
}

fn from_json(v: serde_json::Value) -> Value {
    match v {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(b) => Value::Bool(b),
        serde_json::Value::Number(n) => n.as_f64().map_or(Value::Null, number_value),
        serde_json::Value::String(t) => s(t),
        serde_json::Value::Array(a) => Value::Array(a.into_iter().map(from_json).collect()),
        serde_json::Value::Object(o) => {
            Value::Object(o.into_iter().map(|(k, v)| (k, from_json(v))).collect())
        }
    }
}

fn yamlencode(args: FuncArgs) -> Result<Value, String> {
    let mut out = String::new();
    yaml(arg(&args, 0), 0, &mut out);
    if !out.ends_with('\n') {
        out.push('\n');
    }
    Ok(s(out))
}

/// Block-style YAML: strings double-quoted, maps indented by two, list items at their
/// key's indentation (the go-yaml style Terraform's `yamlencode` writes).
fn yaml(v: &Value, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match v {
        Value::Array(a) if !a.is_empty() => {
            for (i, item) in a.iter().enumerate() {
                if i > 0 {
                    out.push_str(&pad);
                }
                out.push_str("- ");
                yaml(item, indent + 2, out);
            }
        }
        Value::Object(o) if !o.is_empty() => {
            for (i, (k, item)) in sorted(o).into_iter().enumerate() {
                if i > 0 {
                    out.push_str(&pad);
                }
                let _ = write!(out, "{}:", json_string(k));
                match item {
                    Value::Array(a) if !a.is_empty() => {
                        out.push('\n');
                        out.push_str(&pad);
                        yaml(item, indent, out);
                    }
                    Value::Object(m) if !m.is_empty() => {
                        out.push('\n');
                        out.push_str(&pad);
                        out.push_str("  ");
                        yaml(item, indent + 2, out);
                    }
                    _ => {
                        out.push(' ');
                        yaml(item, indent + 2, out);
                    }
                }
            }
        }
        Value::Array(_) => out.push_str("[]\n"),
        Value::Object(_) => out.push_str("{}\n"),
        Value::String(t) => {
            out.push_str(&json_string(t));
            out.push('\n');
        }
        other => {
            out.push_str(&json(other));
            out.push('\n');
        }
    }
}

fn base64encode(args: FuncArgs) -> Result<Value, String> {
    Ok(s(
        base64::engine::general_purpose::STANDARD.encode(str_arg(&args, 0)?)
    ))
}

fn base64decode(args: FuncArgs) -> Result<Value, String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(str_arg(&args, 0)?)
        .map_err(|_| "argument 1 is not valid base64".to_owned())?;
    String::from_utf8(bytes)
        .map(s)
        .map_err(|_| "the decoded bytes are not UTF-8 text".to_owned())
}

fn base64gzip(args: FuncArgs) -> Result<Value, String> {
    use std::io::Write as _;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(str_arg(&args, 0)?.as_bytes())
        .and_then(|()| gz.finish())
        .map(|bytes| s(base64::engine::general_purpose::STANDARD.encode(bytes)))
        .map_err(|e| format!("cannot compress: {e}"))
}

/// Go's `url.QueryEscape`: unreserved characters kept, space as `+`, the rest `%XX`.
fn urlencode(args: FuncArgs) -> Result<Value, String> {
    let mut out = String::new();
    for b in str_arg(&args, 0)?.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char);
            }
            b' ' => out.push('+'),
            _ => {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
    Ok(s(out))
}

fn hex(bytes: &[u8]) -> Value {
    s(bytes.iter().map(|b| format!("{b:02x}")).collect::<String>())
}

fn md5(args: FuncArgs) -> Result<Value, String> {
    Ok(hex(&md5::Md5::digest(str_arg(&args, 0)?)))
}

fn sha1(args: FuncArgs) -> Result<Value, String> {
    Ok(hex(&sha1::Sha1::digest(str_arg(&args, 0)?)))
}

fn sha256(args: FuncArgs) -> Result<Value, String> {
    Ok(hex(&sha2::Sha256::digest(str_arg(&args, 0)?)))
}

fn sha512(args: FuncArgs) -> Result<Value, String> {
    Ok(hex(&sha2::Sha512::digest(str_arg(&args, 0)?)))
}

/// `bcrypt(password, cost = 10)`: a `$2a$` hash with a random salt, as Go's `bcrypt`.
fn bcrypt(args: FuncArgs) -> Result<Value, String> {
    let password = str_arg(&args, 0)?;
    let cost = match args.len() {
        1 => 10,
        _ => int_arg(&args, 1)?,
    };
    if !(4..=31).contains(&cost) {
        return Err("the cost must be between 4 and 31".to_owned());
    }
    if password.len() > 72 {
        return Err("bcrypt cannot hash a password longer than 72 bytes".to_owned());
    }
    Ok(s(bcrypt_hash(
        password.as_bytes(),
        cost as u32,
        &rand::random(),
    )))
}

fn bcrypt_hash(password: &[u8], cost: u32, salt: &[u8; 16]) -> String {
    use base64::engine::{GeneralPurpose, general_purpose::NO_PAD};
    let mut key = password.to_vec();
    key.push(0);
    let mut state = blowfish::Blowfish::bc_init_state();
    state.salted_expand_key(salt, &key);
    for _ in 0..(1u64 << cost) {
        state.bc_expand_key(&key);
        state.bc_expand_key(salt);
    }
    // "OrpheanBeholderScryDoubt", encrypted 64 times.
    let mut text = [
        0x4f72_7068,
        0x6561_6e42,
        0x6568_6f6c,
        0x6465_7253,
        0x6372_7944,
        0x6f75_6274,
    ];
    for pair in text.chunks_exact_mut(2) {
        for _ in 0..64 {
            let lr = state.bc_encrypt([pair[0], pair[1]]);
            pair.copy_from_slice(&lr);
        }
    }
    let bytes: Vec<u8> = text.iter().flat_map(|w: &u32| w.to_be_bytes()).collect();
    let engine = GeneralPurpose::new(&base64::alphabet::BCRYPT, NO_PAD);
    format!(
        "$2a${cost:02}${}{}",
        engine.encode(salt),
        engine.encode(&bytes[..23])
    )
}

#[cfg(test)]
mod tests;
