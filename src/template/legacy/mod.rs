//! Packer's legacy JSON templates (`"builders": [...]`), turned into the HCL2 text
//! `packer hcl2_upgrade` writes, which kiln then loads like any `*.pkr.hcl` file: a JSON
//! template builds and validates exactly as its upgrade does.
//!
//! The text comes with a position map (an offset in the HCL text → the offset in the JSON text
//! of the key or value it came from), so every problem found later names the JSON file's
//! `line:col`.

mod gotmpl;
mod hcljson;
mod json;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use gotmpl::{Place, is_identifier, quote};
use json::{Json, Key, Spanned};

use super::diag::{SourceFile, did_you_mean};
use super::{Diagnostic, Location};

/// A JSON template as HCL2 text.
#[derive(Debug, Clone)]
pub(crate) struct Upgraded {
    pub text: String,
    /// `(hcl_offset, json_offset)` in increasing `hcl_offset` order.
    pub map: Vec<(usize, usize)>,
}

/// Whether `path` names a legacy JSON template: a `.json` file that is not HCL's JSON syntax
/// (`.pkr.json`) nor a var file (`.pkrvars.json`).
pub(crate) fn is_legacy(path: &Path) -> bool {
    let name = path.to_string_lossy();
    name.ends_with(".json") && !name.ends_with(".pkr.json") && !name.ends_with(".pkrvars.json")
}

/// The top-level keys of a legacy template.
const TOP: &[&str] = &[
    "builders",
    "description",
    "error-cleanup-provisioner",
    "min_packer_version",
    "post-processors",
    "provisioners",
    "sensitive-variables",
    "variables",
];

/// Keys of a provisioner that are not its type's options.
const PROVISIONER_KEYS: &[&str] = &[
    "type",
    "only",
    "except",
    "override",
    "pause_before",
    "max_retries",
    "timeout",
];

/// Keys of a post-processor that are not its type's options.
const POST_PROCESSOR_KEYS: &[&str] = &["type", "name", "only", "except", "keep_input_artifact"];

/// Translates the JSON template `text` (read from `path`), with every problem found. The text
/// is there unless the JSON cannot be read at all; a part with a problem is left out or
/// written as plain text, so that loading it finds the template's other problems too.
pub(crate) fn upgrade(path: &Path, text: &str) -> (Option<Upgraded>, Vec<Diagnostic>) {
    convert(path, text, |w, root| w.template(root))
}

/// Parses `text` and writes it with `write` (false: nothing usable was written).
fn convert(
    path: &Path,
    text: &str,
    write: impl FnOnce(&mut Writer, &Spanned) -> bool,
) -> (Option<Upgraded>, Vec<Diagnostic>) {
    let file = SourceFile {
        path: path.to_owned(),
        text: text.to_owned(),
        origin: None,
    };
    let root = match json::parse(text) {
        Ok(root) => root,
        Err(e) => {
            let at = file.location(e.at);
            return (
                None,
                vec![Diagnostic::new(at, format!("syntax error: {}", e.message))],
            );
        }
    };
    let mut w = Writer {
        file: &file,
        out: String::new(),
        map: Vec::new(),
        d: Vec::new(),
        locals: BTreeSet::new(),
        timestamp: false,
        users: BTreeMap::new(),
        builders: BTreeMap::new(),
        depth: 0,
    };
    if !write(&mut w, &root) {
        return (None, w.d);
    }
    let up = Upgraded {
        text: w.out,
        map: w.map,
    };
    (Some(up), w.d)
}

/// Whether `path` is in HCL's JSON syntax (`*.pkr.json`).
pub(crate) fn is_hcl_json(path: &Path) -> bool {
    path.to_string_lossy().ends_with(".pkr.json")
}

/// A `*.pkr.json` file (HCL's JSON syntax) as HCL native text, with every problem found.
pub(crate) fn from_hcl_json(path: &Path, text: &str) -> (Option<Upgraded>, Vec<Diagnostic>) {
    convert(path, text, |w, root| w.hcl_json(root))
}

/// The location in the JSON text of an offset in the upgraded text.
pub(crate) fn json_offset(map: &[(usize, usize)], offset: usize) -> usize {
    let i = map.partition_point(|(hcl, _)| *hcl <= offset);
    if i == 0 { 0 } else { map[i - 1].1 }
}

struct Writer<'a> {
    file: &'a SourceFile,
    out: String,
    map: Vec<(usize, usize)>,
    d: Vec<Diagnostic>,
    /// Variables whose values use template functions: `locals` in HCL2, as in Packer.
    locals: BTreeSet<String>,
    /// `{{timestamp}}` was used.
    timestamp: bool,
    /// Every `{{user `x`}}` name, with the string where it is first used.
    users: BTreeMap<String, usize>,
    /// Builder name → `TYPE.NAME` of its source (for `only`/`except`).
    builders: BTreeMap<String, String>,
    depth: usize,
}

impl Writer<'_> {
    fn at(&self, offset: usize) -> Location {
        self.file.location(offset)
    }

    fn error(&mut self, offset: usize, message: impl Into<String>) {
        let at = self.at(offset);
        self.d.push(Diagnostic::new(at, message));
    }

    /// The HCL text that follows comes from JSON offset `at`.
    fn mark(&mut self, at: usize) {
        self.map.push((self.out.len(), at));
    }

    fn indent(&mut self) {
        for _ in 0..self.depth {
            self.out.push_str("  ");
        }
    }

    fn open(&mut self, at: usize, head: &str) {
        self.indent();
        self.mark(at);
        self.out.push_str(head);
        self.out.push_str(" {\n");
        self.depth += 1;
    }

    fn close(&mut self) {
        self.depth -= 1;
        self.indent();
        self.out.push_str("}\n");
    }

    /// `name = VALUE` from JSON.
    fn attr(&mut self, key: &Key, value: &Spanned, place: Place) {
        if !is_identifier(&key.name) {
            self.error(key.at, format!("`{}` is not a valid option name", key.name));
            return;
        }
        self.indent();
        self.mark(key.at);
        self.out.push_str(&key.name);
        self.out.push_str(" = ");
        self.value(value, place);
        self.out.push('\n');
    }

    /// `name = TEXT` where TEXT is already HCL.
    fn raw_attr(&mut self, at: usize, name: &str, text: &str) {
        self.indent();
        self.mark(at);
        self.out.push_str(name);
        self.out.push_str(" = ");
        self.out.push_str(text);
        self.out.push('\n');
    }

    fn string(&mut self, at: usize, s: &str, place: Place) -> String {
        match gotmpl::translate(s, place, &self.locals) {
            Ok(t) => {
                self.timestamp |= t.timestamp;
                for name in t.users {
                    self.users.entry(name).or_insert(at);
                }
                format!("\"{}\"", t.hcl)
            }
            Err(e) => {
                self.error(at, e);
                quote(s)
            }
        }
    }

    fn value(&mut self, v: &Spanned, place: Place) {
        self.mark(v.at);
        match &v.value {
            Json::Null => self.out.push_str("null"),
            Json::Bool(b) => self.out.push_str(if *b { "true" } else { "false" }),
            Json::Number(n) => self.out.push_str(n),
            Json::String(s) => {
                let text = self.string(v.at, s, place);
                self.out.push_str(&text);
            }
            Json::Array(items) => {
                self.out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        self.out.push_str(", ");
                    }
                    self.value(item, place);
                }
                self.out.push(']');
            }
            Json::Object(members) => {
                self.out.push('{');
                self.check_repeats(members);
                for (i, (k, item)) in members.iter().enumerate() {
                    self.out.push_str(if i > 0 { ", " } else { " " });
                    self.mark(k.at);
                    let key = self.string(k.at, &k.name, place);
                    self.out.push_str(&key);
                    self.out.push_str(" = ");
                    self.value(item, place);
                }
                self.out
                    .push_str(if members.is_empty() { "}" } else { " }" });
            }
        }
    }

    /// Reports keys given twice in one object (Go's decoder would keep the last silently).
    fn check_repeats(&mut self, members: &[(Key, Spanned)]) {
        let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
        for (k, _) in members {
            if let Some(first) = seen.insert(&k.name, k.at) {
                let line = self.at(first).line;
                let at = self.at(k.at);
                self.d.push(
                    Diagnostic::new(at, format!("`{}` is given twice", k.name))
                        .with_hint(format!("it was first given on line {line}")),
                );
            }
        }
    }

    /// A builder's, provisioner's or post-processor's options, in name order, as Packer's
    /// upgrade writes them: an object holding objects or arrays, or an array of objects,
    /// becomes nested blocks; empty arrays and nulls are left out.
    fn body(&mut self, members: &[(Key, Spanned)], skip: &[&str]) {
        self.check_repeats(members);
        let mut sorted: Vec<&(Key, Spanned)> = members
            .iter()
            .filter(|(k, _)| !skip.contains(&k.name.as_str()))
            .collect();
        sorted.sort_by(|a, b| a.0.name.cmp(&b.0.name));
        for (k, v) in sorted {
            let complex = |v: &Spanned| matches!(v.value, Json::Object(_) | Json::Array(_));
            match &v.value {
                Json::Null => {}
                Json::Array(items) if items.is_empty() => {}
                Json::Object(inner) if inner.iter().any(|(_, v)| complex(v)) => {
                    if !is_identifier(&k.name) {
                        self.error(k.at, format!("`{}` is not a valid option name", k.name));
                        continue;
                    }
                    self.open(k.at, &k.name);
                    self.body(inner, &[]);
                    self.close();
                }
                Json::Array(items) if items.iter().any(|i| matches!(i.value, Json::Object(_))) => {
                    for item in items {
                        let Json::Object(inner) = &item.value else {
                            self.error(
                                item.at,
                                format!("`{}` mixes objects with {}", k.name, item.value.kind()),
                            );
                            continue;
                        };
                        self.open(item.at, &k.name);
                        self.body(inner, &[]);
                        self.close();
                    }
                }
                _ => self.attr(k, v, Place::Elsewhere),
            }
        }
    }

    /// Writes the whole template; false when it is not an object.
    fn template(&mut self, root: &Spanned) -> bool {
        let Json::Object(top) = &root.value else {
            self.error(
                root.at,
                format!(
                    "a JSON template is an object with `builders`, found {}",
                    root.value.kind()
                ),
            );
            return false;
        };
        self.check_repeats(top);
        let get = |name: &str| top.iter().rev().find(|(k, _)| k.name == name);
        for (k, _) in top {
            // Keys starting with `_` are comments, as in Packer.
            if !TOP.contains(&k.name.as_str()) && !k.name.starts_with('_') {
                let mut d = Diagnostic::new(
                    self.at(k.at),
                    format!("unknown key `{}` in a JSON template", k.name),
                );
                if let Some(hint) = did_you_mean(&k.name, TOP.iter().copied()) {
                    d = d.with_hint(hint);
                }
                self.d.push(d);
            }
        }
        // The variables first: which ones become locals decides how `{{user}}` is written.
        let mut sensitive = BTreeSet::new();
        if let Some((_, v)) = get("sensitive-variables") {
            for name in self.strings(v, "sensitive-variables") {
                sensitive.insert(name.1);
            }
        }
        let mut vars: Vec<(&Key, &Spanned)> = Vec::new();
        if let Some((k, v)) = get("variables") {
            match &v.value {
                Json::Object(members) => {
                    self.check_repeats(members);
                    for (name, value) in members {
                        vars.push((name, value));
                    }
                }
                other => self.error(
                    k.at,
                    format!(
                        "`variables` is an object of names and values, found {}",
                        other.kind()
                    ),
                ),
            }
        }
        vars.sort_by(|a, b| a.0.name.cmp(&b.0.name));
        vars.dedup_by(|a, b| a.0.name == b.0.name);
        for (name, value) in &vars {
            if !is_identifier(&name.name) {
                self.error(
                    name.at,
                    format!("`{}` is not a valid variable name", name.name),
                );
            }
            if let Json::String(s) = &value.value
                && gotmpl::translate(s, Place::Variable, &BTreeSet::new())
                    .is_ok_and(|t| t.calls_non_env)
            {
                self.locals.insert(name.name.clone());
            }
        }

        // Everything else is written to `body` first: the `{{user}}` names it uses are
        // declared as variables too.
        let header_map = std::mem::take(&mut self.map);
        let header = std::mem::take(&mut self.out);
        self.sources_and_build(&get);
        let rest = std::mem::replace(&mut self.out, header);
        let rest_map = std::mem::replace(&mut self.map, header_map);

        if let Some((k, v)) = get("min_packer_version") {
            match &v.value {
                Json::String(s) => {
                    self.open(k.at, "packer");
                    let version = quote(&format!(">= {s}"));
                    self.raw_attr(v.at, "required_version", &version);
                    self.close();
                }
                other => self.error(
                    v.at,
                    format!(
                        "`min_packer_version` expects a string, found {}",
                        other.kind()
                    ),
                ),
            }
        }
        let mut declared = BTreeSet::new();
        let mut local_attrs = Vec::new();
        for (name, value) in &vars {
            declared.insert(name.name.clone());
            let secret = sensitive.contains(&name.name);
            let default = match &value.value {
                Json::String(s) => Some(s),
                Json::Null => None,
                other => {
                    self.error(
                        value.at,
                        format!(
                            "variable `{}` must be a string or null, found {}",
                            name.name,
                            other.kind()
                        ),
                    );
                    continue;
                }
            };
            if self.locals.contains(&name.name) {
                local_attrs.push((name, value, secret));
                continue;
            }
            self.out.push('\n');
            self.open(name.at, &format!("variable {}", quote(&name.name)));
            self.raw_attr(name.at, "type", "string");
            if let Some(s) = default {
                let text = self.string(value.at, s, Place::Variable);
                self.raw_attr(value.at, "default", &text);
            }
            if secret {
                self.raw_attr(name.at, "sensitive", "true");
            }
            self.close();
        }
        // Packer declares the `{{user}}` names the template does not (a var file may set them).
        let undeclared: Vec<(String, usize)> = self
            .users
            .iter()
            .filter(|(name, _)| !declared.contains(*name))
            .map(|(name, at)| (name.clone(), *at))
            .collect();
        for (name, at) in undeclared {
            self.out.push('\n');
            self.open(at, &format!("variable {}", quote(&name)));
            self.raw_attr(at, "type", "string");
            self.close();
        }
        for name in &sensitive {
            if !declared.contains(name) {
                let at = get("sensitive-variables").map_or(root.at, |(k, _)| k.at);
                self.error(
                    at,
                    format!("sensitive variable `{name}` is not declared in `variables`"),
                );
            }
        }
        let timestamp = self.timestamp
            || local_attrs.iter().any(|(_, v, _)| {
                matches!(&v.value, Json::String(s) if gotmpl::translate(s, Place::Variable, &self.locals).is_ok_and(|t| t.timestamp))
            });
        if timestamp {
            self.out.push_str(
                "\nlocals { timestamp = regex_replace(timestamp(), \"[- TZ:]\", \"\") }\n",
            );
        }
        let (plain, secret): (Vec<_>, Vec<_>) = local_attrs.iter().partition(|(_, _, s)| !s);
        if !plain.is_empty() {
            self.out.push('\n');
            self.open(root.at, "locals");
            for (name, value, _) in plain {
                self.attr(name, value, Place::Variable);
            }
            self.close();
        }
        for (name, value, _) in secret {
            self.out.push('\n');
            self.open(name.at, &format!("local {}", quote(&name.name)));
            self.raw_attr(name.at, "sensitive", "true");
            self.attr(
                &Key {
                    at: value.at,
                    name: "expression".to_owned(),
                },
                value,
                Place::Variable,
            );
            self.close();
        }
        let base = self.out.len();
        self.out.push_str(&rest);
        self.map
            .extend(rest_map.into_iter().map(|(hcl, json)| (hcl + base, json)));
        true
    }

    /// The strings of array `v` (named `what`), with their offsets.
    fn strings(&mut self, v: &Spanned, what: &str) -> Vec<(usize, String)> {
        let Json::Array(items) = &v.value else {
            self.error(
                v.at,
                format!(
                    "`{what}` expects an array of strings, found {}",
                    v.value.kind()
                ),
            );
            return Vec::new();
        };
        let mut out = Vec::new();
        for item in items {
            match &item.value {
                Json::String(s) => out.push((item.at, s.clone())),
                other => self.error(
                    item.at,
                    format!(
                        "`{what}` expects an array of strings, found {} in it",
                        other.kind()
                    ),
                ),
            }
        }
        out
    }

    fn sources_and_build<'t>(&mut self, get: &dyn Fn(&str) -> Option<&'t (Key, Spanned)>) {
        let Some((bk, bv)) = get("builders") else {
            self.error(0, "a JSON template needs `builders`: at least one builder");
            return;
        };
        let Json::Array(list) = &bv.value else {
            self.error(
                bv.at,
                format!(
                    "`builders` expects an array of objects, found {}",
                    bv.value.kind()
                ),
            );
            return;
        };
        if list.is_empty() {
            self.error(
                bv.at,
                "`builders` is empty: a template needs at least one builder",
            );
        }
        // Packer's upgrade writes the sources in type+name order.
        let mut builders = Vec::new();
        for b in list {
            let Json::Object(members) = &b.value else {
                self.error(
                    b.at,
                    format!("a builder is an object, found {}", b.value.kind()),
                );
                continue;
            };
            let field = |n: &str| {
                members
                    .iter()
                    .rev()
                    .find(|(k, _)| k.name == n)
                    .map(|(_, v)| v)
            };
            let kind = match field("type").map(|v| &v.value) {
                Some(Json::String(t)) if is_identifier(t) => t.clone(),
                Some(other) => {
                    self.error(
                        b.at,
                        format!(
                            "a builder's `type` is a name such as \"qemu\", found {}",
                            other.kind()
                        ),
                    );
                    continue;
                }
                None => {
                    self.error(b.at, "this builder has no `type`");
                    continue;
                }
            };
            let name = match field("name").map(|v| &v.value) {
                Some(Json::String(n)) => n.trim().replace(' ', "_"),
                Some(other) => {
                    self.error(
                        b.at,
                        format!("a builder's `name` is a string, found {}", other.kind()),
                    );
                    continue;
                }
                None => kind.clone(),
            };
            if name.is_empty() || name.contains(['.', '"', '\\']) {
                self.error(
                    b.at,
                    format!("builder name `{name}` cannot be a source name (no dots or quotes)"),
                );
                continue;
            }
            if self.builders.contains_key(&name) {
                self.error(
                    b.at,
                    format!("two builders are named `{name}`: give each a unique `name`"),
                );
                continue;
            }
            self.builders.insert(name.clone(), format!("{kind}.{name}"));
            builders.push((kind, name, b.at, members));
        }
        builders.sort_by_key(|b| b.0.clone() + &b.1);
        for (kind, name, at, members) in &builders {
            self.out.push('\n');
            self.open(*at, &format!("source {} {}", quote(kind), quote(name)));
            self.body(members, &["type", "name"]);
            self.close();
        }

        self.out.push('\n');
        self.open(bk.at, "build");
        if let Some((k, v)) = get("description") {
            match &v.value {
                Json::String(s) => {
                    let text = quote(s);
                    self.raw_attr(k.at, "description", &text);
                }
                other => self.error(
                    v.at,
                    format!("`description` expects a string, found {}", other.kind()),
                ),
            }
        }
        let sources: Vec<String> = builders
            .iter()
            .map(|(kind, name, ..)| quote(&format!("source.{kind}.{name}")))
            .collect();
        self.raw_attr(bk.at, "sources", &format!("[{}]", sources.join(", ")));
        if let Some((k, v)) = get("provisioners") {
            match &v.value {
                Json::Array(items) => {
                    for p in items {
                        self.provisioner("provisioner", p);
                    }
                }
                other => self.error(
                    k.at,
                    format!(
                        "`provisioners` expects an array of objects, found {}",
                        other.kind()
                    ),
                ),
            }
        }
        if let Some((_, v)) = get("error-cleanup-provisioner") {
            self.provisioner("error-cleanup-provisioner", v);
        }
        if let Some((k, v)) = get("post-processors") {
            match &v.value {
                Json::Array(items) => {
                    for item in items {
                        match &item.value {
                            Json::Array(chain) if chain.len() > 1 => {
                                self.open(item.at, "post-processors");
                                for pp in chain {
                                    self.post_processor(pp);
                                }
                                self.close();
                            }
                            Json::Array(chain) => {
                                for pp in chain {
                                    self.post_processor(pp);
                                }
                            }
                            _ => self.post_processor(item),
                        }
                    }
                }
                other => self.error(
                    k.at,
                    format!("`post-processors` expects an array, found {}", other.kind()),
                ),
            }
        }
        self.close();
    }

    fn provisioner(&mut self, block: &str, p: &Spanned) {
        let Json::Object(members) = &p.value else {
            self.error(
                p.at,
                format!("a provisioner is an object, found {}", p.value.kind()),
            );
            return;
        };
        let Some(kind) = self.kind_field(p.at, members, "provisioner") else {
            return;
        };
        self.open(p.at, &format!("{block} {}", quote(&kind)));
        self.common(members);
        if let Some((k, v)) = members.iter().rev().find(|(k, _)| k.name == "override") {
            self.attr(k, v, Place::Elsewhere);
        }
        for key in ["pause_before", "timeout"] {
            if let Some((k, v)) = members.iter().rev().find(|(k, _)| k.name == key) {
                self.attr(k, v, Place::Elsewhere);
            }
        }
        if let Some((k, v)) = members.iter().rev().find(|(k, _)| k.name == "max_retries") {
            // Packer's JSON takes a number or a string holding one.
            match &v.value {
                Json::String(s) if s.parse::<u64>().is_ok() => {
                    self.raw_attr(k.at, "max_retries", s)
                }
                _ => self.attr(k, v, Place::Elsewhere),
            }
        }
        self.body(members, PROVISIONER_KEYS);
        self.close();
    }

    fn post_processor(&mut self, pp: &Spanned) {
        let (kind, members): (String, &[(Key, Spanned)]) = match &pp.value {
            Json::String(t) => (t.clone(), &[]),
            Json::Object(members) => match self.kind_field(pp.at, members, "post-processor") {
                Some(kind) => (kind, members),
                None => return,
            },
            other => {
                self.error(
                    pp.at,
                    format!(
                        "a post-processor is an object or a type name, found {}",
                        other.kind()
                    ),
                );
                return;
            }
        };
        self.open(pp.at, &format!("post-processor {}", quote(&kind)));
        if let Some((k, v)) = members.iter().rev().find(|(k, _)| k.name == "name")
            && v.value != Json::String(kind.clone())
        {
            self.attr(k, v, Place::Elsewhere);
        }
        if let Some((k, v)) = members
            .iter()
            .rev()
            .find(|(k, _)| k.name == "keep_input_artifact")
        {
            self.attr(k, v, Place::Elsewhere);
        }
        self.common(members);
        self.body(members, POST_PROCESSOR_KEYS);
        self.close();
    }

    fn kind_field(&mut self, at: usize, members: &[(Key, Spanned)], what: &str) -> Option<String> {
        match members
            .iter()
            .rev()
            .find(|(k, _)| k.name == "type")
            .map(|(_, v)| &v.value)
        {
            Some(Json::String(t)) if is_identifier(t) => Some(t.clone()),
            Some(other) => {
                self.error(
                    at,
                    format!(
                        "a {what}'s `type` is a name such as \"shell\", found {}",
                        other.kind()
                    ),
                );
                None
            }
            None => {
                self.error(at, format!("this {what} has no `type`"));
                None
            }
        }
    }

    /// `only` / `except`: JSON names builders, HCL2 names sources as `TYPE.NAME`.
    fn common(&mut self, members: &[(Key, Spanned)]) {
        for key in ["except", "only"] {
            let Some((k, v)) = members.iter().rev().find(|(k, _)| k.name == key) else {
                continue;
            };
            let names: Vec<String> = self
                .strings(v, key)
                .into_iter()
                .map(|(at, n)| {
                    let full = self.builders.get(&n).cloned();
                    full.unwrap_or_else(|| {
                        self.error(
                            at,
                            format!("`{key}` names `{n}`, which is not a builder of this template"),
                        );
                        n
                    })
                })
                .map(|n| quote(&n))
                .collect();
            self.raw_attr(k.at, key, &format!("[{}]", names.join(", ")));
        }
    }
}

#[cfg(test)]
mod tests;
