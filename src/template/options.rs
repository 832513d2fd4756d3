//! Reading the attributes of one block as typed options.
//!
//! [`Options::read`] sorts a block's attributes into supported, known-but-unsupported (Packer
//! has them, kiln not yet) and unknown (with a "did you mean"), and reports nested blocks and
//! duplicates. The typed getters evaluate an attribute, convert it the way HCL does
//! (`"512"` is a number, `2` is a string) and report a wrong type naming the expected one.
//! Each getter returns `None` when the option is absent, null, or wrong (then reported).

use std::collections::{BTreeMap, BTreeSet};

use hcl::Value;
use hcl::edit::Span;
use hcl::edit::structure::{Attribute, Block, Body};

use super::diag::{SourceFile, did_you_mean, suggest};
use super::eval::{Scope, to_bool, to_number, to_string, type_name};
use super::{Diagnostic, Location};

/// The options of one block, ready to be read by name.
#[derive(Clone)]
pub(crate) struct Options<'a> {
    file: &'a SourceFile,
    scope: &'a Scope,
    body: &'a Body,
    attrs: BTreeMap<String, &'a Attribute>,
    /// Options suggested for misspelt names: a "missing" report for them would repeat it.
    suggested: BTreeSet<&'static str>,
    /// Where the block starts, for "missing option" diagnostics.
    pub block_at: Location,
    /// Values that replace the block's own (a provisioner's `override` for one source), and
    /// where they were written.
    overrides: BTreeMap<String, Value>,
    overrides_at: Option<Location>,
}

impl<'a> Options<'a> {
    /// Sorts the attributes of `body`; `supported` may be read, `known` are Packer options kiln
    /// lacks. Nested blocks are left to the caller (see [`reject_blocks`]).
    pub fn read(
        file: &'a SourceFile,
        scope: &'a Scope,
        body: &'a Body,
        block_at: Location,
        supported: &[&'static str],
        known: &[&str],
        diags: &mut Vec<Diagnostic>,
    ) -> Self {
        let mut attrs = BTreeMap::new();
        let mut suggested = BTreeSet::new();
        for attr in body.attributes() {
            let name = attr.key.as_str();
            let at = file.at(attr.key.span());
            if supported.contains(&name) {
                if let Some(first) = attrs.insert(name.to_owned(), attr) {
                    let line = file.at(first.key.span()).line;
                    diags.push(
                        Diagnostic::new(at, format!("option `{name}` is set twice"))
                            .with_hint(format!("it was first set on line {line}")),
                    );
                }
            } else {
                // As in Packer, an option set to null is not set: a template may pass
                // `floppy_files = var.floppy_files` where the variable is null.
                if known.contains(&name) && is_null(file, scope, attr) {
                    continue;
                }
                if !known.contains(&name) {
                    suggested.extend(suggest(name, supported.iter().copied()));
                }
                diags.push(unknown(at, "option", name, supported, known));
            }
        }
        Self {
            file,
            scope,
            body,
            attrs,
            suggested,
            block_at,
            overrides: BTreeMap::new(),
            overrides_at: None,
        }
    }

    /// The same options with `values` replacing (or adding to) the block's own, all reported
    /// at `at`.
    pub fn with_overrides(&self, values: BTreeMap<String, Value>, at: Location) -> Self {
        Self {
            overrides: values,
            overrides_at: Some(at),
            ..self.clone()
        }
    }

    /// The nested blocks `name { … }` of the block, in order (for a reader that takes blocks
    /// named in its `supported` list; see [`reject_blocks_except`]).
    pub fn blocks(&self, name: &str) -> Vec<&'a Block> {
        self.body
            .blocks()
            .filter(|b| b.ident.as_str() == name)
            .collect()
    }

    /// The options of nested `block`, read like the outer block's; its own nested blocks are
    /// reported.
    pub fn nested(
        &self,
        block: &'a Block,
        supported: &[&'static str],
        known: &[&str],
        diags: &mut Vec<Diagnostic>,
    ) -> Options<'a> {
        let at = self.file.at(block.ident.span());
        let o = Options::read(
            self.file,
            self.scope,
            &block.body,
            at,
            supported,
            known,
            diags,
        );
        reject_blocks(self.file, &block.body, &[], diags);
        o
    }

    /// Whether the option is written in the block (even if its value is wrong).
    pub fn has(&self, name: &str) -> bool {
        self.attrs.contains_key(name) || self.overrides.contains_key(name)
    }

    /// Where the option's value starts (the block, when the option is absent).
    pub fn at(&self, name: &str) -> Location {
        if let (true, Some(at)) = (self.overrides.contains_key(name), &self.overrides_at) {
            return at.clone();
        }
        self.attrs
            .get(name)
            .map_or_else(|| self.block_at.clone(), |a| self.file.at(a.value.span()))
    }

    /// Where byte `offset` of the string element `index` of list option `name` (or of element
    /// `index` of element `row`, for a list of lists) is written. Exact when the element is a
    /// plain string literal; its start, or the option's, otherwise.
    pub fn element_at(&self, name: &str, path: &[usize], offset: usize) -> Location {
        use hcl::edit::expr::Expression;
        let Some(attr) = self
            .attrs
            .get(name)
            .filter(|_| !self.overrides.contains_key(name))
        else {
            return self.at(name);
        };
        let mut expr = &attr.value;
        for &i in path {
            match expr {
                Expression::Array(items) => match items.iter().nth(i) {
                    Some(item) => expr = item,
                    None => return self.at(name),
                },
                _ => return self.at(name),
            }
        }
        let Some(span) = expr.span() else {
            return self.at(name);
        };
        if let Expression::String(value) = expr {
            // Offsets map one to one onto the source only while no escape came before.
            let text_start = span.start + 1;
            let written = self.file.text.get(text_start..text_start + offset);
            if written.is_some() && written == value.value().get(..offset) {
                return self.file.location(text_start + offset);
            }
        }
        self.file.location(span.start)
    }

    /// Where element `index` of list option `name` starts; where the option's value starts when
    /// it is not written as a list.
    pub fn item_at(&self, name: &str, index: usize) -> Location {
        use hcl::edit::expr::Expression;
        let item = self
            .attrs
            .get(name)
            .filter(|_| !self.overrides.contains_key(name))
            .and_then(|attr| match &attr.value {
                Expression::Array(items) => items.iter().nth(index),
                _ => None,
            });
        match item.and_then(|e| e.span()) {
            Some(span) => self.file.location(span.start),
            None => self.at(name),
        }
    }

    /// The options of the nested block `name` (Packer's struct-typed options, e.g.
    /// `qemu_img_args { … }`), which may hold `supported`; `None` when the block is absent.
    /// Written twice, the second is reported and the first read.
    pub fn block(
        &self,
        name: &str,
        supported: &[&'static str],
        diags: &mut Vec<Diagnostic>,
    ) -> Option<Options<'a>> {
        let mut found = self.body.blocks().filter(|b| b.ident.as_str() == name);
        let first = found.next()?;
        let first_line = self.file.at(first.ident.span()).line;
        for again in found {
            diags.push(
                Diagnostic::new(
                    self.file.at(again.ident.span()),
                    format!("block `{name}` is given twice"),
                )
                .with_hint(format!("it was first given on line {first_line}")),
            );
        }
        if !first.labels.is_empty() {
            diags.push(Diagnostic::new(
                self.file.at(first.ident.span()),
                format!("block `{name}` takes no labels"),
            ));
        }
        let at = self.file.at(first.ident.span());
        reject_blocks(self.file, &first.body, &[], diags);
        Some(Options::read(
            self.file,
            self.scope,
            &first.body,
            at,
            supported,
            &[],
            diags,
        ))
    }

    /// Records a problem with the value of `name`.
    pub fn error(&self, name: &str, message: impl Into<String>, diags: &mut Vec<Diagnostic>) {
        diags.push(Diagnostic::new(self.at(name), message));
    }

    /// Whether a misspelt option was taken to mean `name` (and reported so).
    pub fn was_suggested(&self, name: &str) -> bool {
        self.suggested.contains(name)
    }

    /// Records that required option `name` is missing (`why` says when it is required).
    pub fn missing(&self, name: &str, why: &str, diags: &mut Vec<Diagnostic>) {
        if self.was_suggested(name) {
            return;
        }
        diags.push(Diagnostic::new(
            self.block_at.clone(),
            format!("missing required option `{name}`{why}"),
        ));
    }

    /// The evaluated value; `None` when absent, null, or not evaluable (reported).
    pub fn value(&self, name: &str, diags: &mut Vec<Diagnostic>) -> Option<Value> {
        if let Some(v) = self.overrides.get(name) {
            return Some(v.clone()).filter(|v| !v.is_null());
        }
        let attr = self.attrs.get(name)?;
        self.scope
            .eval(self.file, &attr.value, diags)
            .filter(|v| !v.is_null())
    }

    fn typed<T>(
        &self,
        name: &str,
        expected: &str,
        convert: impl Fn(&Value) -> Option<T>,
        diags: &mut Vec<Diagnostic>,
    ) -> Option<T> {
        let v = self.value(name, diags)?;
        let out = convert(&v);
        if out.is_none() {
            self.error(
                name,
                format!("`{name}` expects {expected}, found {}", type_name(&v)),
                diags,
            );
        }
        out
    }

    /// A string option.
    pub fn string(&self, name: &str, diags: &mut Vec<Diagnostic>) -> Option<String> {
        self.typed(name, "a string", to_string, diags)
    }

    /// A bool option.
    pub fn bool(&self, name: &str, diags: &mut Vec<Diagnostic>) -> Option<bool> {
        if self.weak() {
            return self.typed(name, "a bool", weak_bool, diags);
        }
        self.typed(name, "a bool", to_bool, diags)
    }

    /// Whether values are read as Packer reads legacy JSON templates (mapstructure's weak
    /// typing): `""` is a false bool, a lone string a list of one.
    fn weak(&self) -> bool {
        self.file.origin.as_ref().is_some_and(|o| o.legacy)
    }

    /// A whole-number option within `min..=max`.
    pub fn uint(&self, name: &str, min: u64, max: u64, diags: &mut Vec<Diagnostic>) -> Option<u64> {
        let n = self.typed(name, "a number", to_number, diags)?;
        if n.fract() != 0.0 || n < min as f64 || n > max as f64 {
            self.error(
                name,
                format!("`{name}` must be a whole number from {min} to {max}"),
                diags,
            );
            return None;
        }
        Some(n as u64)
    }

    /// A list-of-strings option.
    pub fn string_list(&self, name: &str, diags: &mut Vec<Diagnostic>) -> Option<Vec<String>> {
        let v = self.value(name, diags)?;
        if let Value::String(s) = &v
            && self.weak()
        {
            return Some(vec![s.clone()]);
        }
        let Value::Array(items) = &v else {
            self.error(
                name,
                format!(
                    "`{name}` expects a list of strings, found {}",
                    type_name(&v)
                ),
                diags,
            );
            return None;
        };
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            match to_string(item) {
                Some(s) => out.push(s),
                None => {
                    self.error(
                        name,
                        format!(
                            "`{name}` expects a list of strings, but element {} is a {}",
                            i + 1,
                            type_name(item)
                        ),
                        diags,
                    );
                    return None;
                }
            }
        }
        Some(out)
    }

    /// A map-of-strings option (`{ "a" = "x" }`), in key order.
    pub fn string_map(
        &self,
        name: &str,
        diags: &mut Vec<Diagnostic>,
    ) -> Option<BTreeMap<String, String>> {
        let v = self.value(name, diags)?;
        let Value::Object(items) = &v else {
            self.error(
                name,
                format!("`{name}` expects a map of strings, found {}", type_name(&v)),
                diags,
            );
            return None;
        };
        let mut out = BTreeMap::new();
        for (k, item) in items {
            match to_string(item) {
                Some(s) => {
                    out.insert(k.clone(), s);
                }
                None => {
                    self.error(
                        name,
                        format!(
                            "`{name}` expects a map of strings, but `{k}` is a {}",
                            type_name(item)
                        ),
                        diags,
                    );
                    return None;
                }
            }
        }
        Some(out)
    }

    /// A string option that must be one of `allowed`; `unsupported` are values Packer accepts
    /// that kiln does not yet.
    pub fn one_of(
        &self,
        name: &str,
        allowed: &[&str],
        unsupported: &[&str],
        diags: &mut Vec<Diagnostic>,
    ) -> Option<String> {
        let s = self.string(name, diags)?;
        if allowed.contains(&s.as_str()) {
            return Some(s);
        }
        let d = if unsupported.contains(&s.as_str()) {
            let message = format!("`{name} = \"{s}\"` is not supported by kiln yet");
            Diagnostic::new(self.at(name), message)
                .with_hint(format!("kiln supports {}", list(allowed)))
        } else {
            let d = Diagnostic::new(
                self.at(name),
                format!("`{name}` must be one of {}", list(allowed)),
            );
            match did_you_mean(&s, allowed.iter().copied()) {
                Some(h) => d.with_hint(h),
                None => d,
            }
        };
        diags.push(d);
        None
    }
}

/// Whether `attr` evaluates to null (problems evaluating it are left to the caller's report).
fn is_null(file: &SourceFile, scope: &Scope, attr: &Attribute) -> bool {
    let mut ignored = Vec::new();
    matches!(
        scope.eval(file, &attr.value, &mut ignored),
        Some(Value::Null)
    )
}

/// `` `a`, `b` or `c` ``.
/// A bool as Packer's legacy JSON decoding takes it: Go's `strconv.ParseBool` spellings, `""`
/// as false, and numbers (non-zero is true).
fn weak_bool(v: &Value) -> Option<bool> {
    match v {
        Value::String(s) => match s.as_str() {
            "" | "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
            "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
            _ => None,
        },
        Value::Number(n) => n.as_f64().map(|f| f != 0.0),
        other => to_bool(other),
    }
}

pub(crate) fn list(items: &[&str]) -> String {
    let quoted: Vec<String> = items.iter().map(|i| format!("`{i}`")).collect();
    match quoted.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        _ => quoted.join(""),
    }
}

/// A diagnostic for an option or block `name` kiln does not read here.
pub(crate) fn unknown(
    at: Location,
    what: &str,
    name: &str,
    supported: &[&str],
    known: &[&str],
) -> Diagnostic {
    if known.contains(&name) {
        return Diagnostic::new(at, format!("`{name}` is not supported by kiln yet"));
    }
    let d = Diagnostic::new(at, format!("unknown {what} `{name}`"));
    match did_you_mean(name, supported.iter().chain(known).copied()) {
        Some(h) => d.with_hint(h),
        None => d,
    }
}

/// Reports every nested block of `body`: kiln reads none there (`known` are Packer's).
pub(crate) fn reject_blocks(
    file: &SourceFile,
    body: &Body,
    known: &[&str],
    diags: &mut Vec<Diagnostic>,
) {
    reject_blocks_except(file, body, known, &[], diags);
}

/// Reports every nested block of `body` but those named in `read` (the reader takes them
/// through [`Options::blocks`]).
pub(crate) fn reject_blocks_except(
    file: &SourceFile,
    body: &Body,
    known: &[&str],
    read: &[&str],
    diags: &mut Vec<Diagnostic>,
) {
    for block in body.blocks() {
        let name = block.ident.as_str();
        if read.contains(&name) {
            continue;
        }
        diags.push(unknown(
            file.at(block.ident.span()),
            "block",
            name,
            &[],
            known,
        ));
    }
}
