//! `build { ... }` blocks: which sources to build, their provisioners and their
//! post-processors (single blocks and `post-processors` chains).
//!
//! A build block is read in two passes, as Packer does: [`plan`] finds the sources it names,
//! `-only` / `-except` select among them, then [`runs`] reads each selected source with its
//! provisioners and post-processors, evaluated with that source's `source.name` and
//! `source.type` (a block whose `only` / `except` leaves the source out is not read at all).
//! Blocks of types kiln does not have are kept as [`UnknownType`]s.

use std::collections::BTreeMap;

use hcl::Value;
use std::path::{Path, PathBuf};

use hcl::edit::Span;
use hcl::edit::structure::Block;

use crate::postprocessor::{checksum, compress, manifest, vagrant, vagrant_catalog};
use crate::provisioner::shell::{self, ShellSource};
use crate::provisioner::shell_local;
use crate::provisioner::{breakpoint, file};

use super::ansible;
use super::diag::{SourceFile, suggest};
use super::eval::{Scope, to_string, type_name};
use super::load::SourceTable;
use super::options::{Options, list, reject_blocks, unknown};
use super::select::Matcher;
use super::sources::{self, non_negative, read_source, resolve};
use super::{Build, Diagnostic, Location, Outline, Run};
use crate::builder::SourceConfig;
use crate::postprocessor::{PostProcessor, PostProcessorBlock};
use crate::provisioner::{Provisioner, ProvisionerBlock};
use crate::unknown::UnknownType;

/// Declared sources as `(type, name)`, each with whether kiln builds its type.
pub(crate) type Declared = BTreeMap<(String, String), bool>;

/// Options every provisioner has that kiln reads.
const PROVISIONER_COMMON: [&str; 7] = [
    "name",
    "pause_before",
    "max_retries",
    "timeout",
    "only",
    "except",
    "override",
];

/// The `build.*` variables Packer offers to provisioners and post-processors: known only
/// while the build runs, so they stand for `{{ .NAME }}` text that kiln fills in then (see
/// `crate::render`).
pub(crate) const BUILD_VARIABLES: &[&str] = &[
    "ID",
    "Host",
    "Port",
    "User",
    "Password",
    "ConnType",
    "PackerRunUUID",
    "PackerHTTPIP",
    "PackerHTTPPort",
    "PackerHTTPAddr",
    "SSHPublicKey",
    "SSHPrivateKey",
];

/// Options of `shell-local`, the same as a provisioner and as a post-processor.
const SHELL_LOCAL_OPTIONS: &[&str] = &[
    "inline",
    "command",
    "script",
    "scripts",
    "execute_command",
    "inline_shebang",
    "environment_vars",
    "env",
    "env_var_format",
    "only_on",
    "valid_exit_codes",
];

/// A `build` block before its sources are read: its name and the sources it names, each
/// marked by `-only` / `-except` (see [`super::select`]) before anything else is read.
pub(crate) struct Plan<'a> {
    pub file: &'a SourceFile,
    pub block: &'a Block,
    pub name: Option<String>,
    pub description: Option<String>,
    pub usages: Vec<Usage<'a>>,
}

/// One source a build builds.
pub(crate) struct Usage<'a> {
    /// The declared source, `(TYPE, NAME)`.
    pub declared: (String, String),
    /// Its name in this build: a build's `source` block may rename it.
    pub name: String,
    /// The build's own `source` block, whose options replace or add to the declared ones.
    pub overrides: Option<&'a Block>,
    /// Whether `-only` / `-except` keep it.
    pub selected: bool,
}

impl Usage<'_> {
    /// `TYPE.NAME`, as `only` / `except` and `-only` name it.
    pub fn full(&self) -> String {
        format!("{}.{}", self.declared.0, self.name)
    }
}

/// Blocks a `build` holds besides its options.
const BUILD_BLOCKS: &[&str] = &[
    "source",
    "provisioner",
    "error-cleanup-provisioner",
    "post-processor",
    "post-processors",
];

/// Reads a `build` block's options and the sources it names (the `sources` list, then its
/// `source` blocks), reporting wrong references and blocks.
pub(crate) fn plan<'a>(
    file: &'a SourceFile,
    scope: &Scope,
    block: &'a Block,
    declared: &Declared,
    d: &mut Vec<Diagnostic>,
) -> Plan<'a> {
    let at = file.at(block.ident.span());
    let o = Options::read(
        file,
        scope,
        &block.body,
        at,
        &["name", "description", "sources"],
        &[],
        d,
    );
    let mut usages: Vec<Usage> = Vec::new();
    match o.value("sources", d) {
        None => {}
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                let at = o.item_at("sources", i);
                let Some(s) = to_string(item) else {
                    let found = type_name(item);
                    d.push(Diagnostic::new(
                        at,
                        format!("expected a string such as `\"source.qemu.NAME\"`, found {found}"),
                    ));
                    continue;
                };
                let Some(key) = lookup(&s, at.clone(), declared, d) else {
                    continue;
                };
                if usages.iter().any(|u| u.declared == key) {
                    d.push(Diagnostic::new(at, format!("`{s}` is listed twice")));
                    continue;
                }
                usages.push(Usage {
                    name: key.1.clone(),
                    declared: key,
                    overrides: None,
                    selected: false,
                });
            }
        }
        Some(other) => o.error(
            "sources",
            format!(
                "`sources` expects a list such as `[\"source.qemu.NAME\"]`, found {}",
                type_name(&other)
            ),
            d,
        ),
    }
    for inner in block.body.blocks() {
        let ident = inner.ident.as_str();
        let at = file.at(inner.ident.span());
        match (ident, inner.labels.as_slice()) {
            ("source", _) => {
                let Some(u) = source_block(file, scope, inner, declared, d) else {
                    continue;
                };
                let (kind, name) = (&u.declared.0, &u.name);
                if usages
                    .iter()
                    .any(|o| o.declared.0 == *kind && o.name == *name)
                {
                    d.push(
                        Diagnostic::new(
                            at,
                            format!("source `{kind}.{name}` is built twice by this build"),
                        )
                        .with_hint("give one of them another `name`"),
                    );
                    continue;
                }
                usages.push(u);
            }
            ("provisioner" | "post-processor" | "error-cleanup-provisioner", [_]) => {}
            ("post-processors", []) => {}
            ("provisioner" | "post-processor" | "error-cleanup-provisioner", _) => {
                d.push(Diagnostic::new(
                    at,
                    format!("`{ident}` needs one label, its type, as in `{ident} \"TYPE\"`"),
                ))
            }
            ("post-processors", _) => d.push(Diagnostic::new(
                at,
                "`post-processors` takes no label: it holds `post-processor \"TYPE\"` blocks",
            )),
            _ => {
                let known = ["hcp_packer_registry", "dynamic"];
                d.push(unknown(at, "block", ident, BUILD_BLOCKS, &known));
            }
        }
    }
    let cleanups = block
        .body
        .blocks()
        .filter(|i| i.ident.as_str() == "error-cleanup-provisioner")
        .skip(1);
    for extra in cleanups {
        d.push(Diagnostic::new(
            file.at(extra.ident.span()),
            "only one `error-cleanup-provisioner` may be set",
        ));
    }
    let has_source_blocks = block.body.blocks().any(|i| i.ident.as_str() == "source");
    if usages.is_empty() && !block.body.has_attribute("sources") && !has_source_blocks {
        o.missing("sources", "", d);
    }
    Plan {
        file,
        block,
        name: o.string("name", d),
        description: o.string("description", d),
        usages,
    }
}

/// Looks up `source.TYPE.NAME` (or `TYPE.NAME`) among the declared sources; `None` when it is
/// not one (reported at `at`).
fn lookup(
    reference: &str,
    at: Location,
    declared: &Declared,
    d: &mut Vec<Diagnostic>,
) -> Option<(String, String)> {
    let parts: Vec<&str> = reference.split('.').collect();
    let (kind, name) = match parts.as_slice() {
        ["source", kind, name] | [kind, name] => (*kind, *name),
        _ => {
            d.push(Diagnostic::new(
                at,
                format!("`{reference}` is not a source reference (expected `source.TYPE.NAME`)"),
            ));
            return None;
        }
    };
    let key = (kind.to_owned(), name.to_owned());
    if declared.contains_key(&key) {
        return Some(key);
    }
    let names: Vec<String> = declared
        .keys()
        .map(|(t, n)| format!("source.{t}.{n}"))
        .collect();
    let mut diag = Diagnostic::new(at, format!("unknown source `{reference}`"));
    let full = if parts.len() == 2 {
        format!("source.{reference}")
    } else {
        reference.to_owned()
    };
    if let Some(h) = suggest(&full, names.iter().map(String::as_str)) {
        diag = diag.with_hint(format!("did you mean `{h}`?"));
    } else if !names.is_empty() {
        diag = diag.with_hint(format!("declared sources: `{}`", names.join("`, `")));
    }
    d.push(diag);
    None
}

/// `source` (`name`, `type`) as expressions see it while a source's options are read.
pub(crate) fn source_object(kind: &str, name: &str) -> hcl::Map<String, Value> {
    hcl::Map::from_iter([
        ("name".to_owned(), Value::String(name.to_owned())),
        ("type".to_owned(), Value::String(kind.to_owned())),
    ])
}

/// A `source "TYPE.NAME" { name = "…", … }` block inside `build`: which declared source it
/// builds and under which name (its other options are read with the source).
fn source_block<'a>(
    file: &SourceFile,
    scope: &Scope,
    block: &'a Block,
    declared: &Declared,
    d: &mut Vec<Diagnostic>,
) -> Option<Usage<'a>> {
    let at = file.at(block.ident.span());
    let [label] = block.labels.as_slice() else {
        d.push(Diagnostic::new(
            at,
            "a `source` block inside `build` takes one label, as in `source \"qemu.NAME\"`",
        ));
        return None;
    };
    let key = lookup(label.as_str(), at, declared, d)?;
    let mut name = key.1.clone();
    if let Some(attr) = block.body.get_attribute("name") {
        let scope = scope.with_object("source", source_object(&key.0, &key.1));
        if let Some(v) = scope.eval(file, &attr.value, d) {
            match to_string(&v) {
                Some(n) => name = n,
                None => d.push(Diagnostic::new(
                    file.at(attr.value.span()),
                    format!("`name` expects a string, found {}", type_name(&v)),
                )),
            }
        }
    }
    Some(Usage {
        declared: key,
        name,
        overrides: Some(block),
        selected: false,
    })
}

/// The source a build's usage builds: the declared block read under the usage's name, with the
/// build's `source` block applied. A type kiln does not have is kept as written.
fn read_usage(
    u: &Usage,
    scope: &Scope,
    plan_file: &SourceFile,
    table: &SourceTable,
    d: &mut Vec<Diagnostic>,
) -> Option<SourceConfig> {
    let (src_file, src_block) = *table.blocks.get(&u.declared)?;
    let scope = scope.with_object("source", source_object(&u.declared.0, &u.name));
    let Some(kind) = sources::kind(&u.declared.0) else {
        let mut block = unknown_block(src_file, &scope, src_block, "source");
        if let Some(over) = u.overrides {
            let more = unknown_block(plan_file, &scope, over, "source");
            block.attributes.extend(more.attributes);
            block.attributes.remove("name");
        }
        return Some(SourceConfig::Foreign {
            name: u.name.clone(),
            block,
        });
    };
    if u.overrides.is_none()
        && u.name == u.declared.1
        && let Some(read) = table.read.get(&u.declared)
    {
        return Some(read.clone());
    }
    let mut overrides = None;
    if let Some(over) = u.overrides {
        let at = plan_file.at(over.ident.span());
        reject_blocks(plan_file, &over.body, &[], d);
        let mut values = BTreeMap::new();
        for attr in over.body.attributes() {
            let option = attr.key.as_str();
            if option == "name" {
                continue;
            }
            if !kind.supported.contains(&option) {
                d.push(unknown(
                    plan_file.at(attr.key.span()),
                    "option",
                    option,
                    kind.supported,
                    kind.known,
                ));
                continue;
            }
            if let Some(v) = scope.eval(plan_file, &attr.value, d) {
                values.insert(option.to_owned(), v);
            }
        }
        overrides = Some((values, at));
    }
    Some(read_source(
        kind,
        src_file,
        src_block,
        &u.name,
        &scope,
        overrides,
        table.base_dir,
        d,
    ))
}

/// A block of a type kiln does not have, as [`UnknownType`]: the attributes that evaluate (as
/// JSON), nested blocks as lists of objects.
pub(crate) fn unknown_block(
    file: &SourceFile,
    scope: &Scope,
    block: &Block,
    what: &'static str,
) -> UnknownType {
    UnknownType {
        block: what,
        type_name: block
            .labels
            .first()
            .map(|l| l.as_str().to_owned())
            .unwrap_or_default(),
        attributes: body_json(file, scope, &block.body),
        at: file.at(block.ident.span()).to_string(),
    }
}

fn body_json(
    file: &SourceFile,
    scope: &Scope,
    body: &hcl::edit::structure::Body,
) -> serde_json::Map<String, serde_json::Value> {
    let mut out = serde_json::Map::new();
    for attr in body.attributes() {
        // What does not evaluate is left out: such a block is only validated.
        let mut ignored = Vec::new();
        if let Some(v) = scope.eval(file, &attr.value, &mut ignored)
            && let Ok(json) = serde_json::to_value(&v)
        {
            out.insert(attr.key.as_str().to_owned(), json);
        }
    }
    for inner in body.blocks() {
        let entry = out
            .entry(inner.ident.as_str().to_owned())
            .or_insert_with(|| serde_json::Value::Array(Vec::new()));
        if let serde_json::Value::Array(list) = entry {
            list.push(serde_json::Value::Object(body_json(
                file,
                scope,
                &inner.body,
            )));
        }
    }
    out
}

/// Things the selected builds would run that kiln does not have, each once with the builds
/// that would run it: `kiln validate` warns about them, `kiln build` refuses to start.
#[derive(Default)]
pub(crate) struct Unrunnable {
    entries: Vec<(Location, String, Option<String>, Vec<String>)>,
}

impl Unrunnable {
    fn add(&mut self, at: Location, what: String, hint: Option<String>, build: &str) {
        match self
            .entries
            .iter_mut()
            .find(|(a, w, ..)| *a == at && *w == what)
        {
            Some((.., builds)) => {
                if !builds.iter().any(|b| b == build) {
                    builds.push(build.to_owned());
                }
            }
            None => self.entries.push((at, what, hint, vec![build.to_owned()])),
        }
    }

    /// One diagnostic per block, naming the builds.
    pub fn diagnostics(self) -> Vec<Diagnostic> {
        self.entries
            .into_iter()
            .map(|(at, what, hint, builds)| {
                let s = if builds.len() == 1 { "" } else { "s" };
                let d = Diagnostic::new(
                    at,
                    format!("{what} (selected build{s} `{}`)", builds.join("`, `")),
                );
                match hint {
                    Some(h) => d.with_hint(h),
                    None => d,
                }
            })
            .collect()
    }
}

/// Reads what a build runs: for each selected source, the source and the provisioners and
/// post-processors that run for it, evaluated with its `source.name` and `source.type`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn runs(
    plan: &Plan,
    scope: &Scope,
    table: &SourceTable,
    matcher: &Matcher,
    kiln_example: &str,
    d: &mut Vec<Diagnostic>,
    warnings: &mut Vec<Diagnostic>,
    unrunnable: &mut Unrunnable,
) -> Build {
    let file = plan.file;
    let all: Vec<String> = plan.usages.iter().map(Usage::full).collect();
    let mut build_obj = hcl::Map::new();
    build_obj.insert(
        "name".to_owned(),
        Value::String(plan.name.clone().unwrap_or_default()),
    );
    for v in BUILD_VARIABLES {
        build_obj.insert((*v).to_owned(), Value::String(format!("{{{{ .{v} }}}}")));
    }
    let mut b = Build {
        name: plan.name.clone(),
        description: plan.description.clone(),
        source_names: all.clone(),
        outline: outline(plan.block),
        runs: Vec::new(),
    };
    let base_dir = table.base_dir;
    for u in plan.usages.iter().filter(|u| u.selected) {
        let full = u.full();
        let shown = match &plan.name {
            Some(n) => format!("{n}.{full}"),
            None => full.clone(),
        };
        let Some(source) = read_usage(u, scope, file, table, d) else {
            continue;
        };
        let foreign = matches!(source, SourceConfig::Foreign { .. });
        if let SourceConfig::Foreign { block, .. } = &source {
            let (src_file, src_block) = table.blocks[&u.declared];
            unrunnable.add(
                src_file.at(src_block.ident.span()),
                format!(
                    "source type `{}` is not built into kiln: its builds are only validated",
                    block.type_name
                ),
                Some(format!(
                    "kiln builds {} sources; run the builds it can with `-only`, e.g. \
                     `-only={kiln_example}`",
                    list(
                        &sources::KINDS
                            .iter()
                            .map(|k| k.type_name)
                            .collect::<Vec<_>>()
                    )
                )),
                &shown,
            );
        }
        let scope = &scope
            .with_object("build", build_obj.clone())
            .with_object("source", source_object(&u.declared.0, &u.name));
        let mut run = Run {
            name: shown.clone(),
            source,
            provisioners: Vec::new(),
            error_cleanup: None,
            post_processors: Vec::new(),
        };
        let mut unknown_in_run = |kind: &str, what: &str, at: Location| {
            if foreign {
                return; // the whole build is already named as one kiln cannot run
            }
            let kiln: &[&str] = if what == "provisioner" {
                &PROVISIONER_TYPES
            } else {
                &POST_PROCESSOR_TYPES
            };
            let hint = match suggest(kind, kiln.iter().copied()) {
                Some(s) => format!("did you mean `{s}`?"),
                None => format!(
                    "kiln's {what}s are {}; keep this one away from the builds kiln runs with \
                     `only` / `except`",
                    list(kiln)
                ),
            };
            unrunnable.add(
                at,
                format!("{what} type `{kind}` is not built into kiln"),
                Some(hint),
                &shown,
            );
        };
        for inner in plan.block.body.blocks() {
            let at = file.at(inner.ident.span());
            match (inner.ident.as_str(), inner.labels.as_slice()) {
                ("provisioner", [_]) => {
                    let p = provisioner(file, scope, inner, base_dir, &all, &full, d, warnings);
                    if let Some(p) = p {
                        if let Provisioner::Unknown(u) = &p.kind {
                            unknown_in_run(&u.type_name, "provisioner", at);
                        }
                        run.provisioners.push(p);
                    }
                }
                ("error-cleanup-provisioner", [_]) if run.error_cleanup.is_none() => {
                    let p = provisioner(file, scope, inner, base_dir, &all, &full, d, warnings);
                    if let Some(p) = &p
                        && let Provisioner::Unknown(u) = &p.kind
                    {
                        unknown_in_run(&u.type_name, "provisioner", at);
                    }
                    run.error_cleanup = p;
                }
                ("post-processor", [_]) => {
                    let pp = post_processor(
                        file, scope, inner, base_dir, &all, &full, matcher, d, warnings,
                    );
                    if let Some(pp) = pp {
                        if let PostProcessor::Unknown(u) = &pp.kind {
                            unknown_in_run(&u.type_name, "post-processor", at);
                        }
                        run.post_processors.push(vec![pp]);
                    }
                }
                ("post-processors", []) => {
                    let chain = chain(
                        file, scope, inner, base_dir, &all, &full, matcher, d, warnings,
                    );
                    for (at, pp) in &chain {
                        if let PostProcessor::Unknown(u) = &pp.kind {
                            unknown_in_run(&u.type_name, "post-processor", at.clone());
                        }
                    }
                    if !chain.is_empty() {
                        run.post_processors
                            .push(chain.into_iter().map(|(_, pp)| pp).collect());
                    }
                }
                _ => {}
            }
        }
        b.runs.push(run);
    }
    b
}

/// The types of a build's blocks, in template order, for `inspect`.
fn outline(block: &Block) -> Outline {
    let label = |b: &Block| {
        b.labels
            .first()
            .map(|l| l.as_str().to_owned())
            .unwrap_or_default()
    };
    let mut o = Outline::default();
    for inner in block.body.blocks() {
        match inner.ident.as_str() {
            "provisioner" => o.provisioners.push(label(inner)),
            "error-cleanup-provisioner" if o.error_cleanup.is_none() => {
                o.error_cleanup = Some(label(inner));
            }
            "post-processor" => o.post_processors.push(vec![label(inner)]),
            "post-processors" => {
                let chain: Vec<String> = inner
                    .body
                    .blocks()
                    .filter(|b| b.ident.as_str() == "post-processor")
                    .map(label)
                    .collect();
                if !chain.is_empty() {
                    o.post_processors.push(chain);
                }
            }
            _ => {}
        }
    }
    o
}

/// The provisioner types kiln runs.
const PROVISIONER_TYPES: [&str; 4] = ["shell", "file", "shell-local", "breakpoint"];
/// The post-processor types kiln runs.
const POST_PROCESSOR_TYPES: [&str; 6] = [
    "vagrant",
    "checksum",
    "manifest",
    "compress",
    "shell-local",
    "vagrant-catalog",
];

/// `only` / `except` of a provisioner or post-processor, read before anything else: whether
/// it runs for `source` (`TYPE.NAME`). A name the build does not build is a warning, as
/// real templates carry such entries (Packer never checks them).
#[allow(clippy::too_many_arguments)]
fn runs_for(
    file: &SourceFile,
    scope: &Scope,
    block: &Block,
    sources: &[String],
    source: &str,
    d: &mut Vec<Diagnostic>,
    warnings: &mut Vec<Diagnostic>,
) -> Option<(Vec<String>, Vec<String>)> {
    let mut lists = Vec::new();
    for option in ["only", "except"] {
        let mut list = Vec::new();
        if let Some(attr) = block.body.get_attribute(option) {
            let at = file.at(attr.value.span());
            match scope.eval(file, &attr.value, d)? {
                Value::Null => {}
                Value::Array(items) => {
                    for item in &items {
                        match to_string(item) {
                            Some(s) => list.push(s),
                            None => {
                                d.push(Diagnostic::new(
                                    at.clone(),
                                    format!(
                                        "`{option}` expects a list of strings, but an element is a {}",
                                        type_name(item)
                                    ),
                                ));
                                return None;
                            }
                        }
                    }
                }
                other => {
                    d.push(Diagnostic::new(
                        at,
                        format!(
                            "`{option}` expects a list of strings, found {}",
                            type_name(&other)
                        ),
                    ));
                    return None;
                }
            }
            for s in &list {
                if !sources.contains(s) {
                    let mut msg =
                        format!("`{option}` names `{s}`, which this build does not build");
                    if let Some(h) = suggest(s, sources.iter().map(String::as_str)) {
                        msg.push_str(&format!(" (did you mean `{h}`?)"));
                    } else if !sources.is_empty() {
                        msg.push_str(&format!(" (it builds `{}`)", sources.join("`, `")));
                    }
                    warnings.push(Diagnostic::new(at.clone(), msg));
                }
            }
        }
        lists.push(list);
    }
    let except = lists.pop().unwrap_or_default();
    let only = lists.pop().unwrap_or_default();
    if block.body.has_attribute("only") && block.body.has_attribute("except") {
        let at = block
            .body
            .get_attribute("except")
            .map_or_else(|| file.at(block.ident.span()), |a| file.at(a.value.span()));
        d.push(Diagnostic::new(
            at,
            "only one of `only` or `except` may be set",
        ));
        return None;
    }
    let runs = (only.is_empty() || only.iter().any(|s| s == source))
        && !except.iter().any(|s| s == source);
    runs.then_some((only, except))
}

/// One `provisioner "TYPE"` (or `error-cleanup-provisioner "TYPE"`) block.
/// `None` when it does not run for `source` (`only` / `except`) or is wrong (reported).
#[allow(clippy::too_many_arguments)]
fn provisioner(
    file: &SourceFile,
    scope: &Scope,
    block: &Block,
    base_dir: &Path,
    sources: &[String],
    source: &str,
    d: &mut Vec<Diagnostic>,
    warnings: &mut Vec<Diagnostic>,
) -> Option<ProvisionerBlock> {
    let (only, except) = runs_for(file, scope, block, sources, source, d, warnings)?;
    let kind = block.labels.first().map(|l| l.as_str()).unwrap_or_default();
    let (own, known): (&[&'static str], &[&str]) = match kind {
        "shell" => (
            &[
                "inline",
                "script",
                "scripts",
                "environment_vars",
                "env",
                "execute_command",
                "inline_shebang",
                "remote_folder",
                "remote_file",
                "remote_path",
                "valid_exit_codes",
                "expect_disconnect",
                "skip_clean",
                "start_retry_timeout",
                "pause_after",
                "binary",
            ],
            &[
                "env_var_format",
                "use_env_var_file",
                "override",
                "continue_on_error",
            ],
        ),
        "file" => (
            &[
                "source",
                "sources",
                "content",
                "destination",
                "direction",
                "generated",
            ],
            &["continue_on_error"],
        ),
        "shell-local" => (
            SHELL_LOCAL_OPTIONS,
            &[
                "tempfile_extension",
                "use_linux_pathing",
                "override",
                "continue_on_error",
            ],
        ),
        "breakpoint" => (&["note", "disable"], &["continue_on_error"]),
        "ansible" => (ansible::OPTIONS, ansible::KNOWN),
        "ansible-local" => (ansible::LOCAL_OPTIONS, ansible::LOCAL_KNOWN),
        _ => {
            let what = if block.ident.as_str() == "provisioner" {
                "provisioner"
            } else {
                "error-cleanup-provisioner"
            };
            let mut p = ProvisionerBlock::new(Provisioner::Unknown(unknown_block(
                file, scope, block, what,
            )));
            p.only = only;
            p.except = except;
            return Some(p);
        }
    };
    let o = read_options(file, scope, block, own, &PROVISIONER_COMMON, known, d);
    let parse = |o: &Options, d: &mut Vec<Diagnostic>| match kind {
        "shell" => Provisioner::Shell(shell(o, base_dir, d)),
        "file" => Provisioner::File(file_provisioner(o, base_dir, d)),
        "shell-local" => Provisioner::ShellLocal(shell_local_pp(o, base_dir, d)),
        "ansible" => Provisioner::Ansible(Box::new(ansible::ansible(o, base_dir, d))),
        "ansible-local" => {
            Provisioner::AnsibleLocal(Box::new(ansible::ansible_local(o, base_dir, d)))
        }
        _ => Provisioner::Breakpoint(breakpoint::Config {
            note: o.string("note", d).unwrap_or_default(),
            disable: o.bool("disable", d).unwrap_or(false),
        }),
    };
    let kind_name = kind;
    let kind = parse(&o, d);
    // `override = { NAME = { option = value } }`: the block re-read for the source NAME.
    let mut overrides = BTreeMap::new();
    if let Some(value) = o.value("override", d) {
        let at = o.at("override");
        let hcl::Value::Object(map) = value else {
            o.error(
                "override",
                "`override` expects a map of source names to options",
                d,
            );
            return None;
        };
        for (source, values) in map {
            if !sources
                .iter()
                .any(|full| full.split_once('.').is_some_and(|(_, n)| n == source))
            {
                o.error(
                    "override",
                    format!("`override` names `{source}`, which this build does not build"),
                    d,
                );
                continue;
            }
            let hcl::Value::Object(values) = values else {
                o.error(
                    "override",
                    format!("`override.{source}` expects a map of options"),
                    d,
                );
                continue;
            };
            for key in values.keys() {
                if !own.contains(&key.as_str()) {
                    o.error(
                        "override",
                        format!("`override.{source}.{key}` is not an option of provisioner `{kind_name}`"),
                        d,
                    );
                }
            }
            let values: BTreeMap<String, hcl::Value> = values.into_iter().collect();
            let variant = o.with_overrides(values, at.clone());
            // Only problems of the overriding values are new; the others were reported above.
            let mut scratch = Vec::new();
            let kind = parse(&variant, &mut scratch);
            d.extend(scratch.into_iter().filter(|x| x.location == at));
            overrides.insert(source, kind);
        }
    }
    let _ = o.string("name", d);
    Some(ProvisionerBlock {
        only,
        except,
        pause_before: non_negative(&o, "pause_before", d).unwrap_or_default(),
        max_retries: o.uint("max_retries", 0, 1000, d).unwrap_or(0) as u32,
        timeout: non_negative(&o, "timeout", d).filter(|t| !t.is_zero()),
        kind,
        overrides,
    })
}

/// `KEY=VALUE` strings of list option `option` (`environment_vars`).
pub(super) fn env_pairs(
    o: &Options,
    option: &str,
    d: &mut Vec<Diagnostic>,
) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (i, kv) in o
        .string_list(option, d)
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        match kv.split_once('=') {
            Some((k, v)) if !k.is_empty() => out.push((k.to_owned(), v.to_owned())),
            _ => o.error(
                option,
                format!(
                    "element {} of `{option}` is not in the form `KEY=VALUE`",
                    i + 1
                ),
                d,
            ),
        }
    }
    out
}

/// A list of whole numbers (`valid_exit_codes`).
fn int_list(o: &Options, option: &str, d: &mut Vec<Diagnostic>) -> Option<Vec<i64>> {
    if !o.has(option) {
        return None;
    }
    let bad = || format!("`{option}` expects a list of whole numbers");
    match o.value(option, d) {
        Some(hcl::Value::Array(items)) => {
            let codes: Option<Vec<i64>> = items
                .iter()
                .map(|v| match v {
                    hcl::Value::Number(n) => n.as_i64(),
                    _ => None,
                })
                .collect();
            if codes.is_none() {
                o.error(option, bad(), d);
            }
            codes
        }
        Some(_) => {
            o.error(option, bad(), d);
            None
        }
        None => None,
    }
}

fn shell(o: &Options, base_dir: &Path, d: &mut Vec<Diagnostic>) -> shell::Config {
    let script_path = |s: &str, key: &str, d: &mut Vec<Diagnostic>| {
        let path = resolve(base_dir, Path::new(s));
        if !readable_file(&path) {
            o.error(
                key,
                format!("script `{}` does not exist", path.display()),
                d,
            );
        }
        path
    };
    let inline = o.string_list("inline", d);
    let script = o.string("script", d).map(|s| script_path(&s, "script", d));
    let scripts = o.string_list("scripts", d).map(|list| {
        list.iter()
            .map(|s| script_path(s, "scripts", d))
            .collect::<Vec<_>>()
    });
    let given = [o.has("inline"), o.has("script"), o.has("scripts")];
    let source = match (inline, script, scripts) {
        (Some(lines), None, None) => ShellSource::Inline(lines),
        (None, Some(path), None) => ShellSource::Script(path),
        (None, None, Some(paths)) => ShellSource::Scripts(paths),
        _ => {
            match given.iter().filter(|g| **g).count() {
                0 => o.missing("inline", " (or `script`, `scripts`)", d),
                1 => {} // the one given had a wrong value, already reported
                _ => o.error(
                    "script",
                    "only one of `inline`, `script` or `scripts` may be set",
                    d,
                ),
            }
            ShellSource::Inline(Vec::new())
        }
    };
    let mut c = shell::Config::with_defaults(source);
    c.environment_vars = string_map(o, "env", d).into_iter().collect();
    c.environment_vars
        .extend(env_pairs(o, "environment_vars", d));
    if let Some(s) = o.string("execute_command", d) {
        c.execute_command = s;
    }
    if let Some(s) = o.string("inline_shebang", d) {
        c.inline_shebang = s;
    }
    if let Some(s) = o.string("remote_folder", d) {
        c.remote_folder = s;
    }
    c.remote_file = o.string("remote_file", d);
    c.remote_path = o.string("remote_path", d);
    if let Some(codes) = int_list(o, "valid_exit_codes", d) {
        c.valid_exit_codes = codes
            .into_iter()
            .filter_map(|n| u32::try_from(n).ok())
            .collect();
    }
    c.expect_disconnect = o.bool("expect_disconnect", d).unwrap_or(false);
    c.skip_clean = o.bool("skip_clean", d).unwrap_or(false);
    if let Some(t) = non_negative(o, "start_retry_timeout", d) {
        c.start_retry_timeout = t;
    }
    c.pause_after = non_negative(o, "pause_after", d).unwrap_or_default();
    c.binary = o.bool("binary", d).unwrap_or(false);
    c
}

fn file_provisioner(o: &Options, base_dir: &Path, d: &mut Vec<Diagnostic>) -> file::Config {
    let direction = match o
        .one_of("direction", &["upload", "download"], &[], d)
        .as_deref()
    {
        Some("download") => file::Direction::Download,
        _ => file::Direction::Upload,
    };
    let destination = o.string("destination", d).unwrap_or_else(|| {
        if !o.has("destination") {
            o.missing("destination", "", d);
        }
        String::new()
    });
    let generated = o.bool("generated", d).unwrap_or(false);
    let mut paths: Vec<String> = o.string("source", d).into_iter().collect();
    paths.extend(o.string_list("sources", d).unwrap_or_default());
    let content = o.string("content", d);
    let source = match (content, paths.is_empty()) {
        (Some(text), true) => file::FileSource::Content(text),
        (None, false) => file::FileSource::Paths(match direction {
            // Local paths resolve against the working directory, keeping a trailing `/`.
            file::Direction::Upload => paths
                .iter()
                .map(|p| {
                    let slash = if p.ends_with('/') { "/" } else { "" };
                    let path = resolve(base_dir, Path::new(p));
                    if !generated && !path.exists() {
                        o.error(
                            if o.has("source") { "source" } else { "sources" },
                            format!("`{}` does not exist", path.display()),
                            d,
                        );
                    }
                    format!(
                        "{}{slash}",
                        path.display().to_string().trim_end_matches('/')
                    )
                })
                .collect(),
            file::Direction::Download => paths,
        }),
        (Some(_), false) => {
            o.error(
                "content",
                "only one of `content` or `source`/`sources` may be set",
                d,
            );
            file::FileSource::Paths(paths)
        }
        (None, true) => {
            if !o.has("source") && !o.has("sources") {
                o.missing("source", " (or `sources`, `content`)", d);
            }
            file::FileSource::Paths(Vec::new())
        }
    };
    file::Config {
        source,
        destination,
        direction,
    }
}

/// Options every post-processor has.
const PP_COMMON: [&str; 4] = ["name", "only", "except", "keep_input_artifact"];

/// A `post-processors { post-processor "TYPE" { … } … }` chain: the post-processors that run
/// for `source`, each with where it is written.
#[allow(clippy::too_many_arguments)]
fn chain(
    file: &SourceFile,
    scope: &Scope,
    block: &Block,
    base_dir: &Path,
    sources: &[String],
    source: &str,
    matcher: &Matcher,
    d: &mut Vec<Diagnostic>,
    warnings: &mut Vec<Diagnostic>,
) -> Vec<(Location, PostProcessorBlock)> {
    for attr in block.body.attributes() {
        d.push(Diagnostic::new(
            file.at(attr.key.span()),
            format!(
                "`post-processors` holds only `post-processor` blocks, not the option `{}`",
                attr.key.as_str()
            ),
        ));
    }
    let mut chain = Vec::new();
    for inner in block.body.blocks() {
        let at = file.at(inner.ident.span());
        match (inner.ident.as_str(), inner.labels.as_slice()) {
            ("post-processor", [_]) => {
                let pp = post_processor(
                    file, scope, inner, base_dir, sources, source, matcher, d, warnings,
                );
                chain.extend(pp.map(|pp| (at, pp)));
            }
            ("post-processor", _) => d.push(Diagnostic::new(
                at,
                "`post-processor` needs one label, its type, as in `post-processor \"TYPE\"`",
            )),
            (other, _) => d.push(unknown(at, "block", other, &["post-processor"], &[])),
        }
    }
    chain
}

/// One `post-processor "TYPE"` block (its one label was checked by the caller); `None` when it
/// does not run for `source` (`only` / `except`, or `-except` naming it) or is wrong
/// (reported).
#[allow(clippy::too_many_arguments)]
fn post_processor(
    file: &SourceFile,
    scope: &Scope,
    block: &Block,
    base_dir: &Path,
    sources: &[String],
    source: &str,
    matcher: &Matcher,
    d: &mut Vec<Diagnostic>,
    warnings: &mut Vec<Diagnostic>,
) -> Option<PostProcessorBlock> {
    let (only, except) = runs_for(file, scope, block, sources, source, d, warnings)?;
    if let Some(attr) = block.body.get_attribute("name")
        && let Some(name) = scope.eval(file, &attr.value, &mut Vec::new())
        && let Some(name) = to_string(&name)
        && matcher.skips_post_processor(&name)
    {
        return None;
    }
    let kind = block.labels.first().map(|l| l.as_str()).unwrap_or_default();
    let (own, known): (&[&'static str], &[&str]) = match kind {
        "vagrant" => (
            &[
                "output",
                "compression_level",
                "compression",
                "architecture",
                "include",
                "vagrantfile_template",
                "vagrantfile_template_generated",
                "provider_override",
            ],
            &["override"],
        ),
        "checksum" => (&["checksum_types", "output"], &[]),
        "manifest" => (&["output", "strip_path", "strip_time", "custom_data"], &[]),
        "compress" => (&["output", "format", "compression_level"], &[]),
        "docker-import" => (sources::docker::IMPORT_OPTIONS, &[]),
        "docker-tag" => (sources::docker::TAG_OPTIONS, &[]),
        "docker-push" => (sources::docker::PUSH_OPTIONS, sources::docker::PUSH_KNOWN),
        "docker-save" => (sources::docker::SAVE_OPTIONS, &[]),
        "shell-local" => (
            SHELL_LOCAL_OPTIONS,
            &["tempfile_extension", "use_linux_pathing"],
        ),
        "vagrant-catalog" => (VAGRANT_CATALOG_OPTIONS, &[]),
        _ => {
            let name = block
                .body
                .get_attribute("name")
                .and_then(|a| scope.eval(file, &a.value, &mut Vec::new()))
                .as_ref()
                .and_then(to_string);
            return Some(PostProcessorBlock {
                name,
                only,
                except,
                keep_input_artifact: None,
                kind: PostProcessor::Unknown(unknown_block(file, scope, block, "post-processor")),
            });
        }
    };
    let o = read_options(file, scope, block, own, &PP_COMMON, known, d);
    let kind = match kind {
        "vagrant" => PostProcessor::Vagrant(vagrant(&o, base_dir, d)),
        "checksum" => PostProcessor::Checksum(checksum_pp(&o, d)),
        "manifest" => PostProcessor::Manifest(manifest_pp(&o, d)),
        "compress" => PostProcessor::Compress(compress_pp(&o, d)),
        "vagrant-catalog" => PostProcessor::VagrantCatalog(vagrant_catalog_pp(&o, d)),
        "docker-import" => PostProcessor::DockerImport(sources::docker::import(&o, d)),
        "docker-tag" => PostProcessor::DockerTag(sources::docker::tag(&o, d)),
        "docker-push" => PostProcessor::DockerPush(sources::docker::push(&o, d)),
        "docker-save" => PostProcessor::DockerSave(sources::docker::save(&o, d)),
        _ => PostProcessor::ShellLocal(shell_local_pp(&o, base_dir, d)),
    };
    Some(PostProcessorBlock {
        name: o.string("name", d),
        only,
        except,
        keep_input_artifact: o.bool("keep_input_artifact", d),
        kind,
    })
}

/// Reads a provisioner's or post-processor's options: `own` plus the `common` ones every type
/// has (`only` / `except` were read by [`runs_for`]).
fn read_options<'a>(
    file: &'a SourceFile,
    scope: &'a Scope,
    block: &'a Block,
    own: &[&'static str],
    common: &[&'static str],
    known: &[&str],
    d: &mut Vec<Diagnostic>,
) -> Options<'a> {
    let at = file.at(block.ident.span());
    let supported: Vec<&'static str> = own.iter().chain(common).copied().collect();
    let o = Options::read(file, scope, &block.body, at, &supported, known, d);
    reject_blocks(file, &block.body, known, d);
    o
}

/// Whether `path` can be read as a file: a regular file, or anything else readable that is not
/// a directory (`/dev/null`, a named pipe), as Packer accepts.
fn readable_file(path: &Path) -> bool {
    use std::os::unix::fs::OpenOptionsExt;
    // Non-blocking, so that opening a named pipe does not wait for a writer.
    let open = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK)
        .open(path);
    !path.is_dir() && open.is_ok()
}

/// A path option resolved against the working directory, which must name an existing file.
fn existing_file(
    o: &Options,
    option: &str,
    value: &str,
    base_dir: &Path,
    d: &mut Vec<Diagnostic>,
) -> PathBuf {
    let path = resolve(base_dir, Path::new(value));
    if !readable_file(&path) {
        o.error(
            option,
            format!("`{option}`: file `{}` does not exist", path.display()),
            d,
        );
    }
    path
}

fn vagrant(o: &Options, base_dir: &Path, d: &mut Vec<Diagnostic>) -> vagrant::Config {
    let mut c = vagrant::Config::default();
    if let Some(s) = o.string("output", d) {
        c.output = s;
    }
    if let Some(s) = o.one_of("compression", &["gzip", "zstd"], &[], d) {
        c.compression = if s == "zstd" {
            vagrant::Compression::Zstd
        } else {
            vagrant::Compression::Gzip
        };
    }
    if let Some(n) = o.uint("compression_level", 0, 9, d) {
        c.compression_level = n as u32;
    } else if c.compression == vagrant::Compression::Zstd {
        c.compression_level = vagrant::ZSTD_DEFAULT_LEVEL;
    }
    c.architecture = o.string("architecture", d);
    // kiln packs the disk of a qemu build, which is a libvirt box; Packer's other providers
    // need their own builders' artifacts.
    let _ = o.one_of(
        "provider_override",
        &["libvirt"],
        &[
            "virtualbox",
            "vmware",
            "hyperv",
            "parallels",
            "aws",
            "azure",
            "digitalocean",
            "google",
            "lxc",
            "docker",
            "scaleway",
        ],
        d,
    );
    for f in o.string_list("include", d).unwrap_or_default() {
        c.include.push(existing_file(o, "include", &f, base_dir, d));
    }
    // A generated template is written during the build: it need not exist yet.
    let generated = o.bool("vagrantfile_template_generated", d).unwrap_or(false);
    c.vagrantfile_template = o.string("vagrantfile_template", d).map(|f| {
        if generated {
            resolve(base_dir, Path::new(&f))
        } else {
            existing_file(o, "vagrantfile_template", &f, base_dir, d)
        }
    });
    c
}

/// The options of `post-processor "vagrant-catalog"`.
const VAGRANT_CATALOG_OPTIONS: &[&str] = &[
    "catalog",
    "url",
    "version",
    "box_name",
    "description",
    "architecture",
];

fn vagrant_catalog_pp(o: &Options, d: &mut Vec<Diagnostic>) -> vagrant_catalog::Config {
    let mut required = |option: &str| {
        if !o.has(option) {
            o.missing(option, "", d);
        }
        o.string(option, d).unwrap_or_default()
    };
    let (catalog, url, version) = (required("catalog"), required("url"), required("version"));
    if o.has("url") && !vagrant_catalog::absolute_url(&url) {
        o.error(
            "url",
            format!("`url` must be an https://, http:// or file:// URL, got `{url}`"),
            d,
        );
    }
    if o.has("version") && !vagrant_catalog::valid_version(&version) {
        o.error(
            "version",
            format!(
                "`version` `{version}` is not a version Vagrant accepts \
                 (numbers and letters separated by dots, e.g. `1.2.0` or `2026.06.01`)"
            ),
            d,
        );
    }
    vagrant_catalog::Config {
        catalog,
        url,
        version,
        box_name: o.string("box_name", d),
        description: o.string("description", d),
        architecture: o.string("architecture", d),
    }
}

fn checksum_pp(o: &Options, d: &mut Vec<Diagnostic>) -> checksum::Config {
    let mut c = checksum::Config::default();
    if let Some(types) = o.string_list("checksum_types", d) {
        let mut parsed = Vec::new();
        for t in types {
            match checksum::ChecksumType::parse(&t) {
                Some(ct) => parsed.push(ct),
                None => {
                    let names = checksum::ChecksumType::ALL.map(|(n, _)| n);
                    o.error(
                        "checksum_types",
                        format!(
                            "unknown checksum type `{t}` (expected one of {})",
                            names.join(", ")
                        ),
                        d,
                    );
                }
            }
        }
        c.checksum_types = parsed;
    }
    if let Some(s) = o.string("output", d) {
        c.output = s;
    }
    c
}

fn manifest_pp(o: &Options, d: &mut Vec<Diagnostic>) -> manifest::Config {
    let mut c = manifest::Config::default();
    if let Some(s) = o.string("output", d) {
        c.output = s;
    }
    if let Some(b) = o.bool("strip_path", d) {
        c.strip_path = b;
    }
    if let Some(b) = o.bool("strip_time", d) {
        c.strip_time = b;
    }
    c.custom_data = string_map(o, "custom_data", d);
    c
}

/// A map of strings (`custom_data`, `env`), keys sorted.
fn string_map(o: &Options, option: &str, d: &mut Vec<Diagnostic>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    match o.value(option, d) {
        None => {}
        Some(hcl::Value::Object(map)) => {
            for (k, val) in &map {
                match to_string(val) {
                    Some(s) => {
                        out.insert(k.clone(), s);
                    }
                    None => o.error(
                        option,
                        format!("`{option}.{k}` expects a string, found {}", type_name(val)),
                        d,
                    ),
                }
            }
        }
        Some(other) => o.error(
            option,
            format!(
                "`{option}` expects a map of strings, found {}",
                type_name(&other)
            ),
            d,
        ),
    }
    out
}

fn compress_pp(o: &Options, d: &mut Vec<Diagnostic>) -> compress::Config {
    let mut c = compress::Config::default();
    if let Some(s) = o.string("output", d) {
        c.output = s;
    }
    if let Some(f) = o.string("format", d) {
        c.format = compress::Format::parse(f.trim_start_matches('.'));
        if c.format.is_none() {
            let names: Vec<&str> = compress::Format::NAMES.iter().map(|(n, _)| *n).collect();
            o.error(
                "format",
                format!(
                    "kiln cannot write `{f}` archives (expected one of {})",
                    names.join(", ")
                ),
                d,
            );
        }
    } else if let Err(ext) = compress::Format::from_output(&c.output) {
        o.error(
            "output",
            format!("kiln cannot write `.{ext}` archives (it writes .tar.gz, .gz, .tar.zst, .zst, .tar and .zip)"),
            d,
        );
    }
    if o.has("compression_level") {
        c.compression_level = o.value("compression_level", d).and_then(|v| match v {
            hcl::Value::Number(n) => n.as_i64(),
            _ => None,
        });
        if c.compression_level.is_none() {
            o.error(
                "compression_level",
                "`compression_level` expects a whole number",
                d,
            );
        }
    }
    c
}

fn shell_local_pp(o: &Options, base_dir: &Path, d: &mut Vec<Diagnostic>) -> shell_local::Config {
    let inline = o.string_list("inline", d);
    let command = o.string("command", d);
    let mut scripts: Vec<String> = o.string("script", d).into_iter().collect();
    scripts.extend(o.string_list("scripts", d).unwrap_or_default());
    let given = [
        o.has("inline"),
        o.has("command"),
        o.has("script"),
        o.has("scripts"),
    ];
    match given.iter().filter(|g| **g).count() {
        0 => o.missing("inline", " (or `script`, `scripts`, `command`)", d),
        1 => {}
        _ => o.error(
            "inline",
            "only one of `inline`, `command`, `script` or `scripts` may be set",
            d,
        ),
    }
    let source = if !scripts.is_empty() {
        shell_local::Source::Scripts(
            scripts
                .iter()
                .map(|s| {
                    let key = if o.has("script") { "script" } else { "scripts" };
                    existing_file(o, key, s, base_dir, d)
                })
                .collect(),
        )
    } else {
        shell_local::Source::Inline(inline.or(command.map(|c| vec![c])).unwrap_or_default())
    };
    let mut c = shell_local::Config::with_defaults(source);
    if o.has("execute_command") {
        // A list is the argv; a single string is run by `/bin/sh -c`, as in Packer.
        match o.value("execute_command", d) {
            Some(hcl::Value::String(s)) => {
                c.execute_command = vec!["/bin/sh".into(), "-c".into(), s];
            }
            Some(_) => {
                if let Some(list) = o.string_list("execute_command", d) {
                    c.execute_command = list;
                }
            }
            None => {}
        }
    }
    if let Some(s) = o.string("inline_shebang", d) {
        c.inline_shebang = s;
    }
    c.environment_vars = string_map(o, "env", d).into_iter().collect();
    for (i, kv) in o
        .string_list("environment_vars", d)
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        match kv.split_once('=') {
            Some((k, v)) if !k.is_empty() => c.environment_vars.push((k.to_owned(), v.to_owned())),
            _ => o.error(
                "environment_vars",
                format!(
                    "element {} of `environment_vars` is not in the form `KEY=VALUE`",
                    i + 1
                ),
                d,
            ),
        }
    }
    if let Some(s) = o.string("env_var_format", d) {
        c.env_var_format = s;
    }
    if let Some(list) = o.string_list("only_on", d) {
        c.only_on = list;
    }
    if o.has("valid_exit_codes") {
        match o.value("valid_exit_codes", d) {
            Some(hcl::Value::Array(items)) => {
                let codes: Option<Vec<i64>> = items
                    .iter()
                    .map(|v| match v {
                        hcl::Value::Number(n) => n.as_i64(),
                        _ => None,
                    })
                    .collect();
                match codes {
                    Some(codes) => c.valid_exit_codes = codes,
                    None => o.error(
                        "valid_exit_codes",
                        "`valid_exit_codes` expects a list of whole numbers",
                        d,
                    ),
                }
            }
            Some(_) => o.error(
                "valid_exit_codes",
                "`valid_exit_codes` expects a list of whole numbers",
                d,
            ),
            None => {}
        }
    }
    c
}
