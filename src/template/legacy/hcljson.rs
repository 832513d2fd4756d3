//! HCL's JSON syntax (`*.pkr.json`), written as HCL native syntax so that it loads like any
//! `*.pkr.hcl` file (hcl-rs reads only the native syntax). Which JSON properties are blocks
//! follows Packer's schema: the top-level blocks and their labels, a `build`'s blocks, a
//! variable's `validation` and `packer`'s `required_plugins`. Inside a `source` or `data`
//! block, as in `hcl2_upgrade`, a property whose value is an object holding objects or arrays,
//! or an array of objects, is a nested block (`qemu_img_args`, `source_ami_filter`); anything
//! else is an attribute. Strings are HCL templates (`"${var.x}"`), as the syntax defines.

use super::gotmpl::{escape, is_identifier};
use super::json::{Json, Key, Spanned};
use super::{Writer, quote};

/// How the body of a block is read.
#[derive(Clone, Copy, PartialEq)]
enum Shape {
    /// Attributes only.
    Attributes,
    /// A variable: attributes, `type` as an expression, `validation` blocks.
    Variable,
    /// `packer`: attributes and `required_plugins`.
    Packer,
    /// `build`: attributes and the build's blocks.
    Build,
    /// `post-processors`: `post-processor` blocks.
    Chain,
    /// A provisioner or post-processor: attributes (`override` is one), nested blocks by shape.
    Step,
    /// A source or data source: nested blocks by shape.
    Guess,
}

/// The top-level blocks: name, labels, shape.
const TOP: &[(&str, usize, Shape)] = &[
    ("packer", 0, Shape::Packer),
    ("variable", 1, Shape::Variable),
    ("variables", 0, Shape::Attributes),
    ("locals", 0, Shape::Attributes),
    ("local", 1, Shape::Attributes),
    ("source", 2, Shape::Guess),
    ("data", 2, Shape::Guess),
    ("build", 0, Shape::Build),
    ("hcp_packer_registry", 0, Shape::Guess),
];

/// The blocks of a `build`.
const BUILD: &[(&str, usize, Shape)] = &[
    ("source", 1, Shape::Guess),
    ("provisioner", 1, Shape::Step),
    ("error-cleanup-provisioner", 1, Shape::Step),
    ("post-processor", 1, Shape::Step),
    ("post-processors", 0, Shape::Chain),
    ("hcp_packer_registry", 0, Shape::Guess),
];

impl Writer<'_> {
    /// The whole file: false when it is not an object.
    pub(super) fn hcl_json(&mut self, root: &Spanned) -> bool {
        let Json::Object(top) = &root.value else {
            self.error(
                root.at,
                format!(
                    "a `.pkr.json` file holds one object of blocks, found {}",
                    root.value.kind()
                ),
            );
            return false;
        };
        self.blocks_or_attributes(top, TOP, Shape::Attributes);
        true
    }

    /// The members of a body: those named in `blocks` are blocks, the others attributes (or
    /// blocks by their shape, for `Guess` and `Step` bodies).
    fn blocks_or_attributes(
        &mut self,
        members: &[(Key, Spanned)],
        blocks: &[(&str, usize, Shape)],
        shape: Shape,
    ) {
        for (k, v) in members {
            if k.name == "//" {
                continue; // a comment, as HCL's JSON syntax defines
            }
            if let Some((_, labels, inner)) = blocks.iter().find(|b| b.0 == k.name) {
                self.labelled(k, v, &mut Vec::new(), *labels, *inner);
                continue;
            }
            let complex = |v: &Spanned| matches!(v.value, Json::Object(_) | Json::Array(_));
            let guess = matches!(shape, Shape::Guess | Shape::Step) && k.name != "override";
            match &v.value {
                Json::Object(inner) if guess && inner.iter().any(|(_, v)| complex(v)) => {
                    self.block(k, v, &[], Shape::Guess);
                }
                Json::Array(items)
                    if guess
                        && !items.is_empty()
                        && items.iter().all(|i| matches!(i.value, Json::Object(_))) =>
                {
                    for item in items {
                        self.block(k, item, &[], Shape::Guess);
                    }
                }
                _ if !is_identifier(&k.name) => {
                    self.error(k.at, format!("`{}` is not a valid attribute name", k.name));
                }
                _ if shape == Shape::Variable && k.name == "type" => match &v.value {
                    // `type` is an expression, not a template.
                    Json::String(t) => self.raw_attr(v.at, "type", t),
                    other => self.error(
                        v.at,
                        format!(
                            "`type` expects a type such as \"string\", found {}",
                            other.kind()
                        ),
                    ),
                },
                _ => {
                    self.indent();
                    self.mark(k.at);
                    self.out.push_str(&k.name);
                    self.out.push_str(" = ");
                    self.hcl_value(v);
                    self.out.push('\n');
                }
            }
        }
    }

    /// A block type's value: `labels` levels of objects keyed by label, then a body object
    /// (an array at any level means several, in order).
    fn labelled(
        &mut self,
        k: &Key,
        v: &Spanned,
        names: &mut Vec<String>,
        labels: usize,
        shape: Shape,
    ) {
        match &v.value {
            Json::Array(items) => {
                for item in items {
                    self.labelled(k, item, names, labels, shape);
                }
            }
            Json::Object(members) if names.len() < labels => {
                for (label, inner) in members {
                    names.push(label.name.clone());
                    self.labelled(k, inner, names, labels, shape);
                    names.pop();
                }
            }
            Json::Object(_) => self.block(k, v, names, shape),
            other => self.error(
                v.at,
                format!(
                    "block `{}` expects an object, found {}",
                    k.name,
                    other.kind()
                ),
            ),
        }
    }

    fn block(&mut self, k: &Key, v: &Spanned, labels: &[String], shape: Shape) {
        let Json::Object(members) = &v.value else {
            return;
        };
        let mut head = k.name.clone();
        for l in labels {
            head.push(' ');
            head.push_str(&quote(l));
        }
        self.open(k.at, &head);
        self.check_repeats(members);
        match shape {
            Shape::Variable => {
                self.blocks_or_attributes(members, &[("validation", 0, Shape::Attributes)], shape)
            }
            Shape::Packer => self.blocks_or_attributes(
                members,
                &[("required_plugins", 0, Shape::Attributes)],
                shape,
            ),
            Shape::Build => self.blocks_or_attributes(members, BUILD, shape),
            Shape::Chain => {
                self.blocks_or_attributes(members, &[("post-processor", 1, Shape::Step)], shape)
            }
            Shape::Attributes | Shape::Step | Shape::Guess => {
                self.blocks_or_attributes(members, &[], shape)
            }
        }
        self.close();
    }

    /// A JSON value as an HCL expression; strings are templates.
    fn hcl_value(&mut self, v: &Spanned) {
        self.mark(v.at);
        match &v.value {
            Json::Null => self.out.push_str("null"),
            Json::Bool(b) => self.out.push_str(if *b { "true" } else { "false" }),
            Json::Number(n) => self.out.push_str(n),
            Json::String(s) => template(s, &mut self.out),
            Json::Array(items) => {
                self.out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        self.out.push_str(", ");
                    }
                    self.hcl_value(item);
                }
                self.out.push(']');
            }
            Json::Object(members) => {
                self.check_repeats(members);
                self.out.push('{');
                for (i, (key, item)) in members.iter().enumerate() {
                    self.out.push_str(if i > 0 { ", " } else { " " });
                    self.mark(key.at);
                    template(&key.name, &mut self.out);
                    self.out.push_str(" = ");
                    self.hcl_value(item);
                }
                self.out
                    .push_str(if members.is_empty() { "}" } else { " }" });
            }
        }
    }
}

/// A JSON string as an HCL quoted template: `${…}` and `%{…}` stay live.
fn template(s: &str, out: &mut String) {
    out.push('"');
    escape(s, out, true);
    out.push('"');
}
