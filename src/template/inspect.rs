//! `kiln inspect`: a loaded template as text, in Packer's layout (input variables, sources,
//! builds with their provisioners and post-processor chains), or as `-machine-readable`
//! lines. Sensitive values are shown as `<sensitive>`, also inside other variables' values;
//! names of types and blocks are never masked (a password `vagrant` must not hide the
//! `vagrant` post-processor).

use std::fmt::Write as _;

use hcl::Value;

use super::{Template, Variable};
use crate::ui::machine_line;

/// A variable's value as HCL text, or `<sensitive>`, or `<unknown>` when it has none.
fn shown(v: &Variable, secrets: &[String]) -> String {
    match &v.value {
        _ if v.sensitive => "<sensitive>".to_owned(),
        None => "<unknown>".to_owned(),
        Some(value) => super::load::mask(&value_text(value), secrets),
    }
}

fn value_text(value: &Value) -> String {
    use hcl::format::Format;
    let mut f = hcl::format::Formatter::builder().compact(true).build_vec();
    match value.format_string(&mut f) {
        Ok(s) => s.trim_end().to_owned(),
        Err(_) => format!("{value:?}"),
    }
}

fn build_title(name: Option<&str>, i: usize) -> String {
    match name {
        Some(n) => n.to_owned(),
        None => format!("<unnamed build {i}>"),
    }
}

/// The human-readable form.
pub fn human(t: &Template) -> String {
    let mut out = String::from("kiln inspect\n\n> input-variables:\n\n");
    for v in &t.variables {
        let _ = writeln!(out, "var.{}: {}", v.name, shown(v, &t.secrets));
    }
    out.push_str("\n> sources:\n\n");
    for s in &t.sources {
        let (kind, name) = s.key();
        let _ = writeln!(out, "  {kind}.{name}");
    }
    out.push_str("\n> builds:\n");
    for (i, b) in t.builds.iter().enumerate() {
        let _ = writeln!(out, "\n  > {}:\n", build_title(b.name.as_deref(), i));
        if let Some(d) = &b.description {
            let _ = writeln!(out, "    description: {d}\n");
        }
        out.push_str("    sources:\n\n");
        for s in &b.source_names {
            let _ = writeln!(out, "      {s}");
        }
        let o = &b.outline;
        if !o.provisioners.is_empty() {
            out.push_str("\n    provisioners:\n\n");
            for p in &o.provisioners {
                let _ = writeln!(out, "      {p}");
            }
        }
        if let Some(p) = &o.error_cleanup {
            let _ = writeln!(out, "\n    error-cleanup-provisioner:\n\n      {p}");
        }
        if !o.post_processors.is_empty() {
            out.push_str("\n    post-processors:\n\n");
            for (j, chain) in o.post_processors.iter().enumerate() {
                let _ = writeln!(out, "      {j}:\n        {}", chain.join("\n        "));
            }
        }
    }
    out
}

/// The `-machine-readable` form: one line per variable, source, provisioner and
/// post-processor, stamped `timestamp`.
pub fn machine_readable(t: &Template, timestamp: u64) -> String {
    let mut lines = Vec::new();
    for v in &t.variables {
        let value = shown(v, &t.secrets);
        let sensitive = if v.sensitive { "1" } else { "0" };
        lines.push(machine_line(
            timestamp,
            "",
            "template-variable",
            &[&v.name, &value, &v.type_name, sensitive],
        ));
    }
    for s in &t.sources {
        let (kind, name) = s.key();
        let full = format!("{kind}.{name}");
        lines.push(machine_line(
            timestamp,
            "",
            "template-builder",
            &[&full, kind],
        ));
    }
    for (i, b) in t.builds.iter().enumerate() {
        let title = build_title(b.name.as_deref(), i);
        for full in &b.source_names {
            lines.push(machine_line(
                timestamp,
                &title,
                "template-build-source",
                &[full],
            ));
        }
        for p in &b.outline.provisioners {
            lines.push(machine_line(
                timestamp,
                &title,
                "template-provisioner",
                &[p],
            ));
        }
        for (j, chain) in b.outline.post_processors.iter().enumerate() {
            for p in chain {
                lines.push(machine_line(
                    timestamp,
                    &title,
                    "template-postprocessor",
                    &[&j.to_string(), p],
                ));
            }
        }
    }
    let mut out = lines.join("\n");
    out.push('\n');
    out
}
