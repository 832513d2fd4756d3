//! `-only` / `-except`: which builds run, chosen before their sources are read (so the options
//! of a source that is not selected are never an error), as Packer does.
//!
//! Patterns are globs (`qemu.*`, `*.vm`, `[ab]?`) matched against a build's `TYPE.NAME` and,
//! for a named `build` block, `BUILD.TYPE.NAME`. `-except` also skips post-processors whose
//! `name` it matches. A pattern that matches nothing is a warning.

use std::cell::Cell;

use super::Diagnostic;
use super::diag::command_line;

/// The `-only` and `-except` patterns of a run (each flag's comma-separated list, split).
#[derive(Debug, Clone, Default)]
pub struct Selection {
    pub only: Vec<String>,
    pub except: Vec<String>,
}

impl Selection {
    /// Whether neither flag was given (every build runs, every declared source is checked).
    pub fn is_empty(&self) -> bool {
        self.only.is_empty() && self.except.is_empty()
    }
}

/// The patterns compiled, with which of them matched something.
pub(crate) struct Matcher {
    only: Vec<(String, glob::Pattern, Cell<bool>)>,
    except: Vec<(String, glob::Pattern, Cell<bool>)>,
}

impl Matcher {
    /// Compiles `selection`; a pattern that is not a glob is reported.
    pub fn new(selection: &Selection, d: &mut Vec<Diagnostic>) -> Self {
        let compile = |flag: &str, patterns: &[String], d: &mut Vec<Diagnostic>| {
            patterns
                .iter()
                .filter_map(|p| match glob::Pattern::new(p) {
                    Ok(g) => Some((p.clone(), g, Cell::new(false))),
                    Err(e) => {
                        d.push(Diagnostic::new(
                            command_line(),
                            format!("`-{flag}={p}` is not a valid pattern: {}", e.msg),
                        ));
                        None
                    }
                })
                .collect()
        };
        Self {
            only: compile("only", &selection.only, d),
            except: compile("except", &selection.except, d),
        }
    }

    /// Whether the build of `TYPE.NAME` (`full`) in the build block named `build` runs.
    pub fn selects(&self, build: Option<&str>, full: &str) -> bool {
        let named = build.map(|b| format!("{b}.{full}"));
        let names: Vec<&str> = std::iter::once(full).chain(named.as_deref()).collect();
        let hit = |set: &[(String, glob::Pattern, Cell<bool>)]| {
            let mut any = false;
            for (_, g, used) in set {
                if names.iter().any(|n| g.matches(n)) {
                    used.set(true);
                    any = true;
                }
            }
            any
        };
        let included = self.only.is_empty() || hit(&self.only);
        // Evaluated even for builds `-only` left out, so a pattern is not called unused when
        // it names one of them.
        let excluded = hit(&self.except);
        included && !excluded
    }

    /// Whether `-except` names the post-processor called `name`.
    pub fn skips_post_processor(&self, name: &str) -> bool {
        let mut any = false;
        for (_, g, used) in &self.except {
            if g.matches(name) {
                used.set(true);
                any = true;
            }
        }
        any
    }

    /// A warning for each pattern that matched nothing, naming the builds there are.
    pub fn unused(&self, builds: &[String]) -> Vec<Diagnostic> {
        let flags = [("only", &self.only), ("except", &self.except)];
        let mut out = Vec::new();
        for (flag, set) in flags {
            for (p, _, used) in set.iter().filter(|(_, _, used)| !used.get()) {
                let _ = used;
                let d = Diagnostic::new(command_line(), format!("`-{flag}={p}` matches no build"));
                out.push(if builds.is_empty() {
                    d
                } else {
                    d.with_hint(format!("the builds are `{}`", builds.join("`, `")))
                });
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matcher(only: &[&str], except: &[&str]) -> Matcher {
        let s = Selection {
            only: only.iter().map(|s| s.to_string()).collect(),
            except: except.iter().map(|s| s.to_string()).collect(),
        };
        let mut d = Vec::new();
        let m = Matcher::new(&s, &mut d);
        assert!(d.is_empty(), "{d:?}");
        m
    }

    #[test]
    fn globs_match_type_name_and_build_name() {
        let table: &[(&[&str], &[&str], Option<&str>, &str, bool, &str)] = &[
            (&[], &[], None, "qemu.vm", true, "no flags: everything"),
            (&["qemu.vm"], &[], None, "qemu.vm", true, "exact"),
            (&["qemu.*"], &[], None, "qemu.vm", true, "type glob"),
            (&["*.vm"], &[], None, "vmware-iso.vm", true, "name glob"),
            (&["qemu.*"], &[], None, "vmware-iso.vm", false, "other type"),
            (
                &["bento.qemu.vm"],
                &[],
                Some("bento"),
                "qemu.vm",
                true,
                "build name",
            ),
            (
                &["qemu.vm"],
                &[],
                Some("bento"),
                "qemu.vm",
                true,
                "without the build name",
            ),
            (
                &["other.*"],
                &[],
                Some("bento"),
                "qemu.vm",
                false,
                "other build",
            ),
            (&[], &["vmware-*"], None, "vmware-iso.vm", false, "except"),
            (&["*"], &["qemu.vm"], None, "qemu.vm", false, "except wins"),
        ];
        for (only, except, build, full, want, reason) in table {
            assert_eq!(
                matcher(only, except).selects(*build, full),
                *want,
                "{reason}"
            );
        }
    }

    #[test]
    fn unused_patterns_are_named() {
        let m = matcher(&["qemu.*", "nope.*"], &["x"]);
        assert!(m.selects(None, "qemu.vm"));
        let unused: Vec<String> = m
            .unused(&["qemu.vm".to_owned()])
            .iter()
            .map(|d| d.message.clone())
            .collect();
        assert_eq!(
            unused,
            [
                "`-only=nope.*` matches no build",
                "`-except=x` matches no build"
            ]
        );
        let mut d = Vec::new();
        Matcher::new(
            &Selection {
                only: vec!["[".into()],
                except: vec![],
            },
            &mut d,
        );
        assert_eq!(d.len(), 1, "{d:?}");
    }
}
