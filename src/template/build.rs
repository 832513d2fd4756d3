//! `build { ... }` blocks: which sources to build, their `shell` provisioners and their
//! post-processors (single blocks and `post-processors` chains).

use std::collections::BTreeMap;

use hcl::Value;
use std::path::{Path, PathBuf};

use hcl::edit::Span;
use hcl::edit::expr::Expression;
use hcl::edit::structure::Block;

use crate::postprocessor::{checksum, compress, manifest, vagrant};
use crate::provisioner::shell::{self, ShellSource};
use crate::provisioner::shell_local;
use crate::provisioner::{breakpoint, file};

use super::ansible;
use super::diag::{SourceFile, suggest};
use super::eval::{Scope, to_string, type_name};
use super::load::SourceTable;
use super::options::{Options, list, reject_blocks, unknown};
use super::sources::{self, non_negative, read_source, resolve};
use super::{Build, Diagnostic, Location};
use crate::builder::SourceConfig;
use crate::postprocessor::{PostProcessor, PostProcessorBlock};
use crate::provisioner::{Provisioner, ProvisionerBlock};

/// Declared sources as `(type, name)`, each with whether kiln supports its type (references to
/// unsupported ones are not reported again).
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

/// Reads one `build` block.
pub(crate) fn build(
    file: &SourceFile,
    scope: &Scope,
    block: &Block,
    table: &SourceTable,
    d: &mut Vec<Diagnostic>,
) -> Build {
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
    let name = o.string("name", d);
    let mut b = Build {
        description: o.string("description", d),
        sources: sources(file, scope, block, table, d),
        name,
        provisioners: Vec::new(),
        error_cleanup: None,
        post_processors: Vec::new(),
    };
    for inner in block.body.blocks().filter(|i| i.ident.as_str() == "source") {
        if let Some(s) = source_block(file, scope, inner, table, d) {
            let (kind, name) = s.key();
            if b.sources.iter().any(|o| o.key() == (kind, name)) {
                d.push(
                    Diagnostic::new(
                        file.at(inner.ident.span()),
                        format!("source `{kind}.{name}` is built twice by this build"),
                    )
                    .with_hint("give one of them another `name`"),
                );
                continue;
            }
            b.sources.push(s);
        }
    }
    if b.sources.is_empty() && !block.body.has_attribute("sources") {
        o.missing("sources", "", d);
    }
    let mut build_obj = hcl::Map::new();
    build_obj.insert(
        "name".to_owned(),
        Value::String(b.name.clone().unwrap_or_default()),
    );
    for v in BUILD_VARIABLES {
        build_obj.insert((*v).to_owned(), Value::String(format!("{{{{ .{v} }}}}")));
    }
    let mut source_obj = hcl::Map::new();
    source_obj.insert("name".to_owned(), Value::String("{{ .SourceName }}".into()));
    source_obj.insert(
        "type".to_owned(),
        Value::String("{{ .BuilderType }}".into()),
    );
    let scope = &scope
        .with_object("build", build_obj)
        .with_object("source", source_obj);
    let keys: Vec<(String, String)> = b
        .sources
        .iter()
        .map(|s| {
            let (k, n) = s.key();
            (k.to_owned(), n.to_owned())
        })
        .collect();
    let template_dir = table.template_dir;
    for inner in block.body.blocks() {
        let ident = inner.ident.as_str();
        let at = file.at(inner.ident.span());
        match (ident, inner.labels.as_slice()) {
            ("source", _) => {} // read above
            ("provisioner", [_]) => {
                let p = provisioner(file, scope, inner, template_dir, &keys, d);
                b.provisioners.extend(p);
            }
            ("error-cleanup-provisioner", [_]) => {
                let p = provisioner(file, scope, inner, template_dir, &keys, d);
                if b.error_cleanup.is_some() {
                    d.push(Diagnostic::new(
                        at,
                        "only one `error-cleanup-provisioner` may be set",
                    ));
                }
                b.error_cleanup = p;
            }
            ("post-processor", [_]) => {
                let pp = post_processor(file, scope, inner, template_dir, &keys, d);
                b.post_processors.extend(pp.map(|pp| vec![pp]));
            }
            ("post-processors", []) => {
                let chain = chain(file, scope, inner, template_dir, &keys, d);
                if !chain.is_empty() {
                    b.post_processors.push(chain);
                }
            }
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
                d.push(unknown(
                    at,
                    "block",
                    ident,
                    &[
                        "source",
                        "provisioner",
                        "error-cleanup-provisioner",
                        "post-processor",
                        "post-processors",
                    ],
                    &known,
                ));
            }
        }
    }
    b
}

/// Looks up `source.TYPE.NAME` (or `TYPE.NAME`) among the declared sources; `None` when it is
/// not one (reported at `at`, unless its type was already reported as unsupported).
fn lookup(
    reference: &str,
    at: Location,
    table: &SourceTable,
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
    match table.declared.get(&key) {
        Some(true) => Some(key),
        Some(false) => None, // its block was already reported as unsupported
        None => {
            let names: Vec<String> = table
                .declared
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
    }
}

/// `sources = ["source.TYPE.NAME", ...]`, each checked against the declared sources.
fn sources(
    file: &SourceFile,
    scope: &Scope,
    block: &Block,
    table: &SourceTable,
    d: &mut Vec<Diagnostic>,
) -> Vec<SourceConfig> {
    let Some(attr) = block.body.get_attribute("sources") else {
        return Vec::new();
    };
    let Expression::Array(items) = &attr.value else {
        d.push(Diagnostic::new(
            file.at(attr.value.span()),
            "`sources` expects a list such as `[\"source.qemu.NAME\"]`",
        ));
        return Vec::new();
    };
    let mut out: Vec<SourceConfig> = Vec::new();
    for item in items.iter() {
        let at = file.at(item.span());
        let Some(v) = scope.eval(file, item, d) else {
            continue;
        };
        let Some(s) = to_string(&v) else {
            let found = type_name(&v);
            d.push(Diagnostic::new(
                at,
                format!("expected a string such as `\"source.qemu.NAME\"`, found {found}"),
            ));
            continue;
        };
        if let Some(key) = lookup(&s, at.clone(), table, d)
            && let Some(source) = table.read.get(&key)
        {
            if out
                .iter()
                .any(|o| o.key() == (key.0.as_str(), key.1.as_str()))
            {
                d.push(Diagnostic::new(at, format!("`{s}` is listed twice")));
                continue;
            }
            out.push(source.clone());
        }
    }
    out
}

/// A `source "TYPE.NAME" { name = "…", … }` block inside `build`: the declared source with
/// these options replacing or adding to its own, renamed by `name`.
fn source_block(
    file: &SourceFile,
    scope: &Scope,
    block: &Block,
    table: &SourceTable,
    d: &mut Vec<Diagnostic>,
) -> Option<SourceConfig> {
    let at = file.at(block.ident.span());
    let [label] = block.labels.as_slice() else {
        d.push(Diagnostic::new(
            at,
            "a `source` block inside `build` takes one label, as in `source \"qemu.NAME\"`",
        ));
        return None;
    };
    let key = lookup(label.as_str(), at.clone(), table, d)?;
    let (src_file, src_block) = *table.blocks.get(&key)?;
    reject_blocks(file, &block.body, &[], d);
    let mut name = key.1.clone();
    let mut values = BTreeMap::new();
    let kind = sources::kind(&key.0)?;
    let supported = kind.supported;
    for attr in block.body.attributes() {
        let option = attr.key.as_str();
        let Some(v) = scope.eval(file, &attr.value, d) else {
            continue;
        };
        if option == "name" {
            match to_string(&v) {
                Some(n) => name = n,
                None => d.push(Diagnostic::new(
                    file.at(attr.value.span()),
                    format!("`name` expects a string, found {}", type_name(&v)),
                )),
            }
        } else if supported.contains(&option) {
            values.insert(option.to_owned(), v);
        } else {
            d.push(unknown(
                file.at(attr.key.span()),
                "option",
                option,
                supported,
                kind.known,
            ));
        }
    }
    // Problems of the declared block itself were reported when it was read: keep only new ones.
    let mut fresh = Vec::new();
    let source = read_source(
        kind,
        src_file,
        src_block,
        &name,
        scope,
        Some((values, at)),
        table.template_dir,
        &mut fresh,
    );
    for diag in fresh {
        if !d.contains(&diag) {
            d.push(diag);
        }
    }
    Some(source)
}

/// One `provisioner "TYPE"` (or `error-cleanup-provisioner "TYPE"`) block.
fn provisioner(
    file: &SourceFile,
    scope: &Scope,
    block: &Block,
    template_dir: &Path,
    sources: &[(String, String)],
    d: &mut Vec<Diagnostic>,
) -> Option<ProvisionerBlock> {
    let at = file.at(block.ident.span());
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
            ],
            &[
                "env_var_format",
                "use_env_var_file",
                "binary",
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
            let supported = [
                "shell",
                "file",
                "shell-local",
                "breakpoint",
                "ansible",
                "ansible-local",
            ];
            let packer = [
                "powershell",
                "windows-shell",
                "windows-restart",
                "sleep",
                "chef-solo",
                "puppet-masterless",
                "salt-masterless",
                "inspec",
                "hcp-sbom",
            ];
            d.push(unknown_type(at, "provisioner", kind, &supported, &packer));
            return None;
        }
    };
    let (o, only, except) = read_with_filters(
        file,
        scope,
        block,
        own,
        &PROVISIONER_COMMON,
        known,
        sources,
        d,
    );
    let parse = |o: &Options, d: &mut Vec<Diagnostic>| match kind {
        "shell" => Provisioner::Shell(shell(o, template_dir, d)),
        "file" => Provisioner::File(file_provisioner(o, template_dir, d)),
        "shell-local" => Provisioner::ShellLocal(shell_local_pp(o, template_dir, d)),
        "ansible" => Provisioner::Ansible(Box::new(ansible::ansible(o, template_dir, d))),
        "ansible-local" => {
            Provisioner::AnsibleLocal(Box::new(ansible::ansible_local(o, template_dir, d)))
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
            if !sources.iter().any(|(_, n)| *n == source) {
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

fn shell(o: &Options, template_dir: &Path, d: &mut Vec<Diagnostic>) -> shell::Config {
    let script_path = |s: &str, key: &str, d: &mut Vec<Diagnostic>| {
        let path = resolve(template_dir, Path::new(s));
        if !path.is_file() {
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
    c
}

fn file_provisioner(o: &Options, template_dir: &Path, d: &mut Vec<Diagnostic>) -> file::Config {
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
            // Local paths resolve against the template directory, keeping a trailing `/`.
            file::Direction::Upload => paths
                .iter()
                .map(|p| {
                    let slash = if p.ends_with('/') { "/" } else { "" };
                    let path = resolve(template_dir, Path::new(p));
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

/// A `post-processors { post-processor "TYPE" { … } … }` chain.
fn chain(
    file: &SourceFile,
    scope: &Scope,
    block: &Block,
    template_dir: &Path,
    sources: &[(String, String)],
    d: &mut Vec<Diagnostic>,
) -> Vec<PostProcessorBlock> {
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
                chain.extend(post_processor(file, scope, inner, template_dir, sources, d));
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

/// One `post-processor "TYPE"` block (its one label was checked by the caller).
fn post_processor(
    file: &SourceFile,
    scope: &Scope,
    block: &Block,
    template_dir: &Path,
    sources: &[(String, String)],
    d: &mut Vec<Diagnostic>,
) -> Option<PostProcessorBlock> {
    let at = file.at(block.ident.span());
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
            ],
            &["provider_override", "override"],
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
        _ => {
            let supported = [
                "vagrant",
                "checksum",
                "manifest",
                "compress",
                "shell-local",
                "docker-import",
                "docker-tag",
                "docker-push",
                "docker-save",
            ];
            let packer = [
                "artifice",
                "vagrant-cloud",
                "vagrant-registry",
                "vsphere",
                "vsphere-template",
                "amazon-import",
                "googlecompute-import",
                "ucloud-import",
                "digitalocean-import",
                "exoscale-import",
                "yandex-export",
                "yandex-import",
                "hcp-sbom",
            ];
            d.push(unknown_type(
                at,
                "post-processor",
                kind,
                &supported,
                &packer,
            ));
            return None;
        }
    };
    let (o, only, except) =
        read_with_filters(file, scope, block, own, &PP_COMMON, known, sources, d);
    let kind = match kind {
        "vagrant" => PostProcessor::Vagrant(vagrant(&o, template_dir, d)),
        "checksum" => PostProcessor::Checksum(checksum_pp(&o, d)),
        "manifest" => PostProcessor::Manifest(manifest_pp(&o, d)),
        "compress" => PostProcessor::Compress(compress_pp(&o, d)),
        "docker-import" => PostProcessor::DockerImport(sources::docker::import(&o, d)),
        "docker-tag" => PostProcessor::DockerTag(sources::docker::tag(&o, d)),
        "docker-push" => PostProcessor::DockerPush(sources::docker::push(&o, d)),
        "docker-save" => PostProcessor::DockerSave(sources::docker::save(&o, d)),
        _ => PostProcessor::ShellLocal(shell_local_pp(&o, template_dir, d)),
    };
    Some(PostProcessorBlock {
        name: o.string("name", d),
        only,
        except,
        keep_input_artifact: o.bool("keep_input_artifact", d),
        kind,
    })
}

/// A diagnostic for a provisioner or post-processor type kiln does not run: "not supported
/// yet" for Packer's own (`packer`), else "unknown" with a suggestion or kiln's list.
fn unknown_type(
    at: super::Location,
    what: &str,
    kind: &str,
    supported: &[&str],
    packer: &[&str],
) -> Diagnostic {
    let diag = unknown(at, &format!("{what} type"), kind, supported, packer);
    if diag.hint.is_none() && !packer.contains(&kind) {
        return diag.with_hint(format!("kiln's {what}s are {}", list(supported)));
    }
    diag
}

/// Reads a provisioner's or post-processor's options (`own` plus the `common` ones every type
/// has), and its `only` / `except`, which may not both be set.
#[allow(clippy::too_many_arguments)]
fn read_with_filters<'a>(
    file: &'a SourceFile,
    scope: &'a Scope,
    block: &'a Block,
    own: &[&'static str],
    common: &[&'static str],
    known: &[&str],
    sources: &[(String, String)],
    d: &mut Vec<Diagnostic>,
) -> (Options<'a>, Vec<String>, Vec<String>) {
    let at = file.at(block.ident.span());
    let supported: Vec<&'static str> = own.iter().chain(common).copied().collect();
    let o = Options::read(file, scope, &block.body, at, &supported, known, d);
    reject_blocks(file, &block.body, known, d);
    let only = source_filter(&o, "only", sources, d);
    let except = source_filter(&o, "except", sources, d);
    if o.has("only") && o.has("except") {
        o.error("except", "only one of `only` or `except` may be set", d);
    }
    (o, only, except)
}

/// `only` / `except`: sources of this build, as `TYPE.NAME`.
fn source_filter(
    o: &Options,
    option: &str,
    sources: &[(String, String)],
    d: &mut Vec<Diagnostic>,
) -> Vec<String> {
    let names: Vec<String> = sources.iter().map(|(t, n)| format!("{t}.{n}")).collect();
    let given = o.string_list(option, d).unwrap_or_default();
    for s in &given {
        if !names.contains(s) {
            let mut msg = format!("`{option}` names `{s}`, which this build does not build");
            if let Some(h) = suggest(s, names.iter().map(String::as_str)) {
                msg.push_str(&format!(" (did you mean `{h}`?)"));
            } else if !names.is_empty() {
                msg.push_str(&format!(" (it builds `{}`)", names.join("`, `")));
            }
            o.error(option, msg, d);
        }
    }
    given
}

/// A path option resolved against the template directory, which must name an existing file.
fn existing_file(
    o: &Options,
    option: &str,
    value: &str,
    template_dir: &Path,
    d: &mut Vec<Diagnostic>,
) -> PathBuf {
    let path = resolve(template_dir, Path::new(value));
    if !path.is_file() {
        o.error(
            option,
            format!("`{option}`: file `{}` does not exist", path.display()),
            d,
        );
    }
    path
}

fn vagrant(o: &Options, template_dir: &Path, d: &mut Vec<Diagnostic>) -> vagrant::Config {
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
    for f in o.string_list("include", d).unwrap_or_default() {
        c.include
            .push(existing_file(o, "include", &f, template_dir, d));
    }
    // A generated template is written during the build: it need not exist yet.
    let generated = o.bool("vagrantfile_template_generated", d).unwrap_or(false);
    c.vagrantfile_template = o.string("vagrantfile_template", d).map(|f| {
        if generated {
            resolve(template_dir, Path::new(&f))
        } else {
            existing_file(o, "vagrantfile_template", &f, template_dir, d)
        }
    });
    c
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

fn shell_local_pp(
    o: &Options,
    template_dir: &Path,
    d: &mut Vec<Diagnostic>,
) -> shell_local::Config {
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
                    existing_file(o, key, s, template_dir, d)
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
