//! `build { ... }` blocks: which sources to build, their `shell` provisioners and `vagrant`
//! post-processors.

use std::collections::BTreeMap;
use std::path::Path;

use hcl::edit::Span;
use hcl::edit::expr::Expression;
use hcl::edit::structure::Block;

use crate::postprocessor::{checksum, manifest, vagrant};
use crate::provisioner::shell::{self, ShellSource};

use super::diag::{SourceFile, suggest};
use super::eval::{Scope, to_string, type_name};
use super::options::{Options, reject_blocks, unknown};
use super::qemu_source::resolve;
use super::{Build, Diagnostic, PostProcessor, Provisioner};

/// Declared sources as `(type, name)`, each with whether kiln supports its type (references to
/// unsupported ones are not reported again).
pub(crate) type Declared = BTreeMap<(String, String), bool>;

/// Common provisioner options Packer knows.
const PROVISIONER_COMMON: &[&str] = &[
    "name",
    "pause_before",
    "max_retries",
    "timeout",
    "only",
    "except",
    "override",
    "continue_on_error",
];

/// Reads one `build` block.
pub(crate) fn build(
    file: &SourceFile,
    scope: &Scope,
    block: &Block,
    declared: &Declared,
    template_dir: &Path,
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
    let mut b = Build {
        name: o.string("name", d),
        sources: sources(file, scope, block, declared, d),
        provisioners: Vec::new(),
        post_processors: Vec::new(),
    };
    if b.sources.is_empty() && !block.body.has_attribute("sources") {
        o.missing("sources", "", d);
    }
    for inner in block.body.blocks() {
        let ident = inner.ident.as_str();
        let at = file.at(inner.ident.span());
        let kind = match (ident, inner.labels.as_slice()) {
            ("provisioner" | "post-processor", [label]) => label.as_str(),
            ("provisioner" | "post-processor", _) => {
                d.push(Diagnostic::new(
                    at,
                    format!("`{ident}` needs one label, its type, as in `{ident} \"TYPE\"`"),
                ));
                continue;
            }
            _ => {
                let known = [
                    "source",
                    "post-processors",
                    "error-cleanup-provisioner",
                    "hcp_packer_registry",
                    "dynamic",
                ];
                d.push(unknown(
                    at,
                    "block",
                    ident,
                    &["provisioner", "post-processor"],
                    &known,
                ));
                continue;
            }
        };
        match (ident, kind) {
            ("provisioner", "shell") => {
                let sh = shell(file, scope, inner, template_dir, d);
                b.provisioners.push(Provisioner::Shell(sh));
            }
            ("post-processor", "vagrant") => {
                let v = vagrant(file, scope, inner, d);
                b.post_processors.push(PostProcessor::Vagrant(v));
            }
            ("post-processor", "checksum") => {
                let c = checksum_pp(file, scope, inner, d);
                b.post_processors.push(PostProcessor::Checksum(c));
            }
            ("post-processor", "manifest") => {
                let m = manifest_pp(file, scope, inner, d);
                b.post_processors.push(PostProcessor::Manifest(m));
            }
            _ => d.push(Diagnostic::new(
                at,
                format!("{ident} `{kind}` is not supported by kiln yet"),
            )),
        }
    }
    b
}

/// `sources = ["source.TYPE.NAME", ...]`, each checked against the declared sources.
fn sources(
    file: &SourceFile,
    scope: &Scope,
    block: &Block,
    declared: &Declared,
    d: &mut Vec<Diagnostic>,
) -> Vec<(String, String)> {
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
    let mut out = Vec::new();
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
        let parts: Vec<&str> = s.split('.').collect();
        let [_, kind, name] = parts.as_slice() else {
            d.push(Diagnostic::new(
                at,
                format!("`{s}` is not a source reference (expected `source.TYPE.NAME`)"),
            ));
            continue;
        };
        let key = ((*kind).to_owned(), (*name).to_owned());
        match declared.get(&key) {
            Some(true) => out.push(key),
            Some(false) => {} // its block was already reported as unsupported
            None => {
                let names: Vec<String> = declared
                    .keys()
                    .map(|(t, n)| format!("source.{t}.{n}"))
                    .collect();
                let mut diag = Diagnostic::new(at, format!("unknown source `{s}`"));
                if let Some(h) = suggest(&s, names.iter().map(String::as_str)) {
                    diag = diag.with_hint(format!("did you mean `{h}`?"));
                } else if !names.is_empty() {
                    diag = diag.with_hint(format!("declared sources: `{}`", names.join("`, `")));
                }
                d.push(diag);
            }
        }
    }
    out
}

fn shell(
    file: &SourceFile,
    scope: &Scope,
    block: &Block,
    template_dir: &Path,
    d: &mut Vec<Diagnostic>,
) -> shell::Config {
    let supported = [
        "inline",
        "script",
        "environment_vars",
        "execute_command",
        "inline_shebang",
        "remote_folder",
    ];
    let known: Vec<&str> = [
        "scripts",
        "env",
        "env_var_format",
        "use_env_var_file",
        "remote_file",
        "remote_path",
        "valid_exit_codes",
        "expect_disconnect",
        "start_retry_timeout",
        "skip_clean",
        "pause_after",
        "binary",
    ]
    .into_iter()
    .chain(PROVISIONER_COMMON.iter().copied())
    .collect();
    let at = file.at(block.ident.span());
    let o = Options::read(file, scope, &block.body, at, &supported, &known, d);
    reject_blocks(file, &block.body, &known, d);

    let inline = o.string_list("inline", d);
    let script = o.string("script", d).map(|s| {
        let path = resolve(template_dir, Path::new(&s));
        if !path.is_file() {
            o.error(
                "script",
                format!("script `{}` does not exist", path.display()),
                d,
            );
        }
        path
    });
    let source = match (inline, script) {
        (Some(lines), None) => ShellSource::Inline(lines),
        (None, Some(path)) => ShellSource::Script(path),
        _ => {
            match (o.has("inline"), o.has("script")) {
                (true, true) => o.error("script", "only one of `inline` or `script` may be set", d),
                (false, false) => o.missing("inline", " (or `script`)", d),
                _ => {} // the one given had a wrong value, already reported
            }
            ShellSource::Inline(Vec::new())
        }
    };
    let mut c = shell::Config::with_defaults(source);
    if let Some(vars) = o.string_list("environment_vars", d) {
        for (i, kv) in vars.iter().enumerate() {
            match kv.split_once('=') {
                Some((k, v)) if !k.is_empty() => {
                    c.environment_vars.push((k.to_owned(), v.to_owned()))
                }
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
    }
    if let Some(s) = o.string("execute_command", d) {
        c.execute_command = s;
    }
    if let Some(s) = o.string("inline_shebang", d) {
        c.inline_shebang = s;
    }
    if let Some(s) = o.string("remote_folder", d) {
        c.remote_folder = s;
    }
    c
}

fn vagrant(
    file: &SourceFile,
    scope: &Scope,
    block: &Block,
    d: &mut Vec<Diagnostic>,
) -> vagrant::Config {
    let supported = [
        "output",
        "compression_level",
        "keep_input_artifact",
        "architecture",
    ];
    let known = [
        "include",
        "vagrantfile_template",
        "vagrantfile_template_generated",
        "provider_override",
        "override",
        "name",
        "only",
        "except",
    ];
    let at = file.at(block.ident.span());
    let o = Options::read(file, scope, &block.body, at, &supported, &known, d);
    reject_blocks(file, &block.body, &known, d);
    let mut c = vagrant::Config::default();
    if let Some(s) = o.string("output", d) {
        c.output = s;
    }
    if let Some(n) = o.uint("compression_level", 0, 9, d) {
        c.compression_level = n as u32;
    }
    if let Some(b) = o.bool("keep_input_artifact", d) {
        c.keep_input_artifact = b;
    }
    if let Some(s) = o.string("architecture", d) {
        c.architecture = s;
    }
    c
}

/// Options every post-processor accepts in Packer that kiln does not act on yet.
const PP_COMMON_KNOWN: [&str; 4] = ["name", "only", "except", "keep_input_artifact"];

fn checksum_pp(
    file: &SourceFile,
    scope: &Scope,
    block: &Block,
    d: &mut Vec<Diagnostic>,
) -> checksum::Config {
    let at = file.at(block.ident.span());
    let o = Options::read(
        file,
        scope,
        &block.body,
        at,
        &["checksum_types", "output"],
        &PP_COMMON_KNOWN,
        d,
    );
    reject_blocks(file, &block.body, &PP_COMMON_KNOWN, d);
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

fn manifest_pp(
    file: &SourceFile,
    scope: &Scope,
    block: &Block,
    d: &mut Vec<Diagnostic>,
) -> manifest::Config {
    let at = file.at(block.ident.span());
    let o = Options::read(
        file,
        scope,
        &block.body,
        at,
        &["output", "strip_path", "strip_time", "custom_data"],
        &PP_COMMON_KNOWN,
        d,
    );
    reject_blocks(file, &block.body, &PP_COMMON_KNOWN, d);
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
    if let Some(v) = o.value("custom_data", d) {
        match &v {
            hcl::Value::Object(map) => {
                for (k, val) in map {
                    match to_string(val) {
                        Some(s) => {
                            c.custom_data.insert(k.clone(), s);
                        }
                        None => o.error(
                            "custom_data",
                            format!(
                                "`custom_data.{k}` expects a string, found {}",
                                type_name(val)
                            ),
                            d,
                        ),
                    }
                }
            }
            other => o.error(
                "custom_data",
                format!(
                    "`custom_data` expects a map of strings, found {}",
                    type_name(other)
                ),
                d,
            ),
        }
    }
    c
}
