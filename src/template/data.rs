//! `data "TYPE" "NAME" { … }` blocks: the table of data source types kiln reads, each as its
//! type name, its options and its reader (the options into a [`DataSource`], whose `read`
//! produces the outputs). A new type is one row in [`KINDS`] and its `DataSource` in
//! `crate::datasource`.
//!
//! `kiln validate` and `kiln inspect` do not read the types that reach outside the machine
//! (`remote` in their row), as Packer's do not: their options are checked, and their outputs
//! are placeholders of the declared types ([`placeholder`]), so a template using them
//! validates with no credentials and no network. `build` and `validate -evaluate-datasources`
//! read them.
//!
//! A block of a type kiln does not have is a warning, not an error: its outputs have no value,
//! so a use is an error unless `try` / `can` catches it (Bento's
//! `try(data.host-info.this.os_type, "unknown")`).

use hcl::Value;
use hcl::edit::Span;
use hcl::edit::structure::Block;

use super::Diagnostic;
use super::diag::SourceFile;
use super::eval::Scope;
use super::options::{Options, reject_blocks};
use super::variables::DataSources;
use crate::datasource::{self, DataSource};

/// The value of a string output that was not read: Packer's placeholder for an unknown value
/// (its HCL-to-config shim turns unknown strings into it), so options take it as they would
/// in Packer.
pub(crate) const UNKNOWN_STRING: &str = "74D93920-ED26-11E3-AC10-0800200C9A66";

/// The type of a data source's output, for its placeholder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Output {
    String,
    /// An object of strings (headers, tags).
    Map,
}

/// One data source type.
pub(crate) struct Kind {
    /// As in `data "TYPE" "NAME"`.
    pub type_name: &'static str,
    /// The options kiln reads.
    pub supported: &'static [&'static str],
    /// The options into a data source; `None` when they are wrong (reported).
    pub read: fn(&Options<'_>, &mut Vec<Diagnostic>) -> Option<Box<dyn DataSource>>,
    /// Reading it reaches outside the machine (network, credentials): not read by `validate`
    /// and `inspect` unless asked ([`DataSources::Unknown`]).
    pub remote: bool,
    /// Its outputs, as `data.TYPE.NAME.OUTPUT`, and their types.
    pub outputs: &'static [(&'static str, Output)],
}

/// Every data source type kiln reads.
pub(crate) const KINDS: &[Kind] = &[
    Kind {
        type_name: "null",
        supported: &["input"],
        read: null,
        remote: false,
        // Whatever `input` is: pure, so always read and never a placeholder.
        outputs: &[],
    },
    Kind {
        type_name: "http",
        supported: &["url", "method", "request_headers", "request_body"],
        read: http,
        remote: true,
        outputs: &[
            ("url", Output::String),
            ("body", Output::String),
            ("request_headers", Output::Map),
        ],
    },
    Kind {
        type_name: "amazon-ami",
        supported: super::sources::amazon_ebs::AMI_DATA_OPTIONS,
        read: super::sources::amazon_ebs::amazon_ami,
        remote: true,
        outputs: &[
            ("id", Output::String),
            ("name", Output::String),
            ("creation_date", Output::String),
            ("owner", Output::String),
            ("owner_name", Output::String),
            ("tags", Output::Map),
        ],
    },
];

fn null(o: &Options<'_>, d: &mut Vec<Diagnostic>) -> Option<Box<dyn DataSource>> {
    if !o.has("input") {
        o.missing("input", "", d);
        return None;
    }
    // A null `input` is a null `output`, as in Packer.
    let input = o.value("input", d).unwrap_or(Value::Null);
    Some(Box::new(datasource::null::Null { input }))
}

fn http(o: &Options<'_>, d: &mut Vec<Diagnostic>) -> Option<Box<dyn DataSource>> {
    let reported = d.len();
    let url = o.string("url", d);
    if url.is_none() && !o.has("url") {
        o.missing("url", "", d);
    }
    let method = o
        .one_of("method", datasource::http::METHODS, &[], d)
        .unwrap_or_else(|| "GET".to_owned());
    let request_headers = o.string_map("request_headers", d).unwrap_or_default();
    let request_body = o.string("request_body", d);
    let url = url?;
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        o.error(
            "url",
            format!("`url` must be an http:// or https:// URL, got `{url}`"),
            d,
        );
    }
    (d.len() == reported).then(|| {
        Box::new(datasource::http::Http {
            url,
            method,
            request_headers,
            request_body,
        }) as Box<dyn DataSource>
    })
}

/// The value of an unread data source of `kind`: an object of its outputs, each a placeholder
/// that options of its type accept (the string placeholder, an empty map).
fn placeholder(kind: &Kind) -> Value {
    Value::Object(
        kind.outputs
            .iter()
            .map(|(name, ty)| {
                let v = match ty {
                    Output::String => Value::from(UNKNOWN_STRING),
                    Output::Map => Value::Object(hcl::Map::new()),
                };
                ((*name).to_owned(), v)
            })
            .collect(),
    )
}

/// Whether kiln reads data sources of this type.
pub(crate) fn known(type_name: &str) -> bool {
    KINDS.iter().any(|k| k.type_name == type_name)
}

/// Reads the `data` block `TYPE.NAME` in `scope`: its outputs, or `None` when it failed
/// (reported). A type kiln does not have gives an empty object and a warning; a `remote` one
/// under [`DataSources::Unknown`] has its options checked and gives its [`placeholder`].
pub(crate) fn read(
    file: &SourceFile,
    block: &Block,
    scope: &Scope,
    mode: DataSources,
    d: &mut Vec<Diagnostic>,
    warnings: &mut Vec<Diagnostic>,
) -> Option<Value> {
    let at = file.at(block.ident.span());
    let labels: Vec<&str> = block.labels.iter().map(|l| l.as_str()).collect();
    let [type_name, name] = labels.as_slice() else {
        return None;
    };
    let Some(kind) = KINDS.iter().find(|k| k.type_name == *type_name) else {
        let built_in: Vec<String> = KINDS.iter().map(|k| format!("`{}`", k.type_name)).collect();
        warnings.push(
            Diagnostic::new(
                at,
                format!(
                    "data source type `{type_name}` is not built into kiln: \
                     `data.{type_name}.{name}` has no value"
                ),
            )
            .with_hint(format!(
                "kiln reads the data sources {}; uses wrapped in `try(…)` or `can(…)` \
                 still work",
                built_in.join(", ")
            )),
        );
        return Some(Value::Object(hcl::Map::new()));
    };
    let o = Options::read(file, scope, &block.body, at.clone(), kind.supported, &[], d);
    reject_blocks(file, &block.body, &[], d);
    let source = (kind.read)(&o, d)?;
    if kind.remote && mode == DataSources::Unknown {
        return Some(placeholder(kind));
    }
    match datasource::read_blocking(source.as_ref()) {
        Ok(out) => {
            for w in out.warnings {
                warnings.push(Diagnostic::new(
                    at.clone(),
                    format!("data source `data.{type_name}.{name}`: {w}"),
                ));
            }
            Some(out.value)
        }
        Err(e) => {
            let mut message = format!("data source `data.{type_name}.{name}` failed: {e}");
            let mut cause = std::error::Error::source(&e);
            while let Some(c) = cause {
                message.push_str(&format!(": {c}"));
                cause = c.source();
            }
            d.push(Diagnostic::new(at, message));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(name: &str) -> &'static Kind {
        KINDS.iter().find(|k| k.type_name == name).expect("kind")
    }

    #[test]
    fn placeholders_have_the_declared_outputs_issue_18() {
        let Value::Object(ami) = placeholder(kind("amazon-ami")) else {
            panic!("not an object");
        };
        assert_eq!(ami.get("id"), Some(&Value::from(UNKNOWN_STRING)));
        assert_eq!(ami.get("tags"), Some(&Value::Object(hcl::Map::new())));
        // The same names as a real read gives.
        let Value::Object(real) =
            datasource::amazon_ami::outputs(&crate::aws::ec2::Image::default())
        else {
            panic!("not an object");
        };
        let names = |m: &hcl::Map<String, Value>| m.keys().cloned().collect::<Vec<_>>();
        assert_eq!(names(&ami), names(&real));
        let Value::Object(http) = placeholder(kind("http")) else {
            panic!("not an object");
        };
        assert_eq!(names(&http), ["url", "body", "request_headers"]);
    }

    #[test]
    fn only_pure_kinds_are_read_offline_issue_18() {
        let remote: Vec<&str> = KINDS
            .iter()
            .filter(|k| k.remote)
            .map(|k| k.type_name)
            .collect();
        assert_eq!(remote, ["http", "amazon-ami"]);
        assert!(KINDS.iter().all(|k| !k.remote || !k.outputs.is_empty()));
    }
}
