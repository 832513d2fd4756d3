//! Post-processors: turn the builder's disk into what users ship.

pub mod checksum;
pub mod manifest;
pub mod vagrant;

/// Renders Packer's `{{ .Name }}` placeholders in an output name (spaces inside the braces
/// allowed); a placeholder not in `vars` is kept as written.
pub fn render_vars(template: &str, vars: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find("{{") {
        let Some(close) = rest[open..].find("}}").map(|i| open + i) else {
            break;
        };
        out.push_str(&rest[..open]);
        let key = rest[open + 2..close].trim();
        match vars
            .iter()
            .find(|(name, _)| key.strip_prefix('.') == Some(name))
        {
            Some((_, value)) => out.push_str(value),
            None => out.push_str(&rest[open..close + 2]),
        }
        rest = &rest[close + 2..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::render_vars;

    #[test]
    fn render_vars_cases() {
        let vars = [("BuildName", "x"), ("Provider", "libvirt")];
        let table = [
            ("plain", "a.box", "a.box"),
            (
                "both spacings",
                "{{.BuildName}}_{{ .Provider }}",
                "x_libvirt",
            ),
            ("unknown kept", "{{ .Nope }}.box", "{{ .Nope }}.box"),
            ("unclosed kept", "a{{.BuildName", "a{{.BuildName"),
        ];
        for (reason, input, want) in table {
            assert_eq!(render_vars(input, &vars), want, "{reason}");
        }
    }
}
