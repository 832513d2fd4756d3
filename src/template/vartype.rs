//! Variable type constraints (`type = list(string)`) and HCL's conversions to them.
//!
//! A constraint is read from the expression written in `type = …`; [`VarType::convert`]
//! converts a value the way HCL does for variables (`"512"` becomes a number for `number`,
//! extra object attributes are dropped, a tuple becomes a list) or says, in words without the
//! value itself, where it does not fit.

use std::collections::BTreeMap;
use std::fmt;

use hcl::Value;
use hcl::edit::expr::{Expression, FuncCall};

use super::eval::{number_value, to_bool, to_number, to_string, type_name};

/// A type constraint.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum VarType {
    Any,
    String,
    Number,
    Bool,
    List(Box<VarType>),
    Set(Box<VarType>),
    Map(Box<VarType>),
    /// `object({ name = type, … })`; `optional(type)` attributes may be missing.
    Object(BTreeMap<String, (VarType, bool)>),
    Tuple(Vec<VarType>),
}

impl fmt::Display for VarType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Any => f.write_str("any"),
            Self::String => f.write_str("string"),
            Self::Number => f.write_str("number"),
            Self::Bool => f.write_str("bool"),
            Self::List(t) => write!(f, "list({t})"),
            Self::Set(t) => write!(f, "set({t})"),
            Self::Map(t) => write!(f, "map({t})"),
            Self::Object(attrs) => {
                f.write_str("object({")?;
                for (i, (name, (t, optional))) in attrs.iter().enumerate() {
                    let sep = if i == 0 { "" } else { ", " };
                    if *optional {
                        write!(f, "{sep}{name} = optional({t})")?;
                    } else {
                        write!(f, "{sep}{name} = {t}")?;
                    }
                }
                f.write_str("})")
            }
            Self::Tuple(items) => {
                f.write_str("tuple([")?;
                for (i, t) in items.iter().enumerate() {
                    let sep = if i == 0 { "" } else { ", " };
                    write!(f, "{sep}{t}")?;
                }
                f.write_str("])")
            }
        }
    }
}

/// Why a type expression is not one: the part that is wrong (its text span) and what to write.
#[derive(Debug)]
pub(crate) struct BadType {
    pub span: Option<std::ops::Range<usize>>,
    pub message: String,
}

impl VarType {
    /// Reads the constraint written as `expr`.
    pub fn parse(expr: &Expression) -> Result<Self, BadType> {
        use hcl::edit::Span;
        let bad = |span, message: &str| BadType {
            span,
            message: message.to_owned(),
        };
        match expr {
            Expression::Variable(v) => match v.as_str() {
                "string" => Ok(Self::String),
                "number" => Ok(Self::Number),
                "bool" => Ok(Self::Bool),
                "any" => Ok(Self::Any),
                "list" | "set" | "map" => Err(bad(
                    expr.span(),
                    &format!(
                        "`{0}` needs an element type, as in `{0}(string)`",
                        v.as_str()
                    ),
                )),
                other => Err(bad(expr.span(), &format!("unknown type `{other}`"))),
            },
            Expression::FuncCall(call) => Self::parse_call(call),
            _ => Err(bad(
                expr.span(),
                "not a type: write `string`, `number`, `bool`, `any`, `list(…)`, `set(…)`, \
                 `map(…)`, `object({…})` or `tuple([…])`",
            )),
        }
    }

    fn parse_call(call: &FuncCall) -> Result<Self, BadType> {
        use hcl::edit::Span;
        let name = call.name.name.as_str();
        let args: Vec<&Expression> = call.args.iter().collect();
        let bad = |message: String| BadType {
            span: call.span(),
            message,
        };
        let [arg] = args.as_slice() else {
            return Err(bad(format!("`{name}(…)` takes exactly one argument")));
        };
        match name {
            "list" => Ok(Self::List(Box::new(Self::parse(arg)?))),
            "set" => Ok(Self::Set(Box::new(Self::parse(arg)?))),
            "map" => Ok(Self::Map(Box::new(Self::parse(arg)?))),
            "tuple" => match arg {
                Expression::Array(items) => Ok(Self::Tuple(
                    items.iter().map(Self::parse).collect::<Result<_, _>>()?,
                )),
                _ => Err(bad(
                    "`tuple` takes a list of types: `tuple([string, number])`".into(),
                )),
            },
            "object" => match arg {
                Expression::Object(obj) => {
                    let mut attrs = BTreeMap::new();
                    for (key, value) in obj.iter() {
                        let key_name = match key {
                            hcl::edit::expr::ObjectKey::Ident(i) => i.as_str().to_owned(),
                            hcl::edit::expr::ObjectKey::Expression(Expression::String(s)) => {
                                s.as_str().to_owned()
                            }
                            _ => {
                                return Err(bad(
                                    "object attribute names must be plain names".into()
                                ));
                            }
                        };
                        let value = value.expr();
                        let attr = match value {
                            Expression::FuncCall(c) if c.name.name.as_str() == "optional" => {
                                let inner: Vec<&Expression> = c.args.iter().collect();
                                match inner.as_slice() {
                                    [t] | [t, _] => (Self::parse(t)?, true),
                                    _ => {
                                        return Err(BadType {
                                            span: c.span(),
                                            message: "`optional(…)` takes a type".into(),
                                        });
                                    }
                                }
                            }
                            other => (Self::parse(other)?, false),
                        };
                        attrs.insert(key_name, attr);
                    }
                    Ok(Self::Object(attrs))
                }
                _ => Err(bad(
                    "`object` takes attribute types: `object({ name = string })`".into(),
                )),
            },
            other => Err(bad(format!("unknown type `{other}(…)`"))),
        }
    }

    /// Whether a raw command-line or environment value is taken as a literal string (HCL
    /// parses it as an expression for the other types, as Packer does).
    pub fn takes_literal(&self) -> bool {
        matches!(self, Self::Any | Self::String | Self::Number)
    }

    /// `v` converted to this type; the error says where and why it does not fit.
    pub fn convert(&self, v: &Value) -> Result<Value, String> {
        self.convert_at(v, "")
    }

    fn convert_at(&self, v: &Value, at: &str) -> Result<Value, String> {
        if v.is_null() {
            return Ok(Value::Null);
        }
        let mismatch = || {
            let place = if at.is_empty() {
                String::new()
            } else {
                format!(" at `{at}`")
            };
            Err(format!(
                "expected {}{place}, found {}",
                self.described(),
                type_name(v)
            ))
        };
        let elem = |i: String| {
            if at.is_empty() { i } else { format!("{at}{i}") }
        };
        match self {
            Self::Any => Ok(v.clone()),
            Self::String => to_string(v).map(Value::String).map_or_else(mismatch, Ok),
            Self::Number => to_number(v).map(number_value).map_or_else(mismatch, Ok),
            Self::Bool => to_bool(v).map(Value::Bool).map_or_else(mismatch, Ok),
            Self::List(t) | Self::Set(t) => {
                let Value::Array(items) = v else {
                    return mismatch();
                };
                let mut out: Vec<Value> = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    let item = t.convert_at(item, &elem(format!("[{i}]")))?;
                    if matches!(self, Self::Set(_)) && out.contains(&item) {
                        continue;
                    }
                    out.push(item);
                }
                Ok(Value::Array(out))
            }
            Self::Map(t) => {
                let Value::Object(items) = v else {
                    return mismatch();
                };
                let mut out = hcl::Map::new();
                for (k, item) in items {
                    out.insert(k.clone(), t.convert_at(item, &elem(format!("[\"{k}\"]")))?);
                }
                Ok(Value::Object(out))
            }
            Self::Object(attrs) => {
                let Value::Object(items) = v else {
                    return mismatch();
                };
                let mut out = hcl::Map::new();
                for (name, (t, optional)) in attrs {
                    let path = if at.is_empty() {
                        name.clone()
                    } else {
                        format!("{at}.{name}")
                    };
                    match items.get(name) {
                        Some(item) => {
                            out.insert(name.clone(), t.convert_at(item, &path)?);
                        }
                        None if *optional => {
                            out.insert(name.clone(), Value::Null);
                        }
                        None => return Err(format!("attribute `{path}` is required")),
                    }
                }
                Ok(Value::Object(out))
            }
            Self::Tuple(types) => {
                let Value::Array(items) = v else {
                    return mismatch();
                };
                if items.len() != types.len() {
                    return Err(format!(
                        "expected {} elements{}, found {}",
                        types.len(),
                        if at.is_empty() {
                            String::new()
                        } else {
                            format!(" at `{at}`")
                        },
                        items.len()
                    ));
                }
                let out = types
                    .iter()
                    .zip(items)
                    .enumerate()
                    .map(|(i, (t, item))| t.convert_at(item, &elem(format!("[{i}]"))))
                    .collect::<Result<_, _>>()?;
                Ok(Value::Array(out))
            }
        }
    }

    /// "a string", "a list(string)", for messages.
    fn described(&self) -> String {
        match self {
            Self::Any => "any value".to_owned(),
            Self::Object(_) => format!("an {self}"),
            _ => format!("a {self}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ty(src: &str) -> VarType {
        VarType::parse(&hcl::edit::parser::parse_expr(src).expect("parses")).expect("a type")
    }

    fn val(src: &str) -> Value {
        let expr: hcl::Expression = hcl::edit::parser::parse_expr(src).expect("parses").into();
        hcl::eval::Evaluate::evaluate(&expr, &hcl::eval::Context::new()).expect("evaluates")
    }

    #[test]
    fn parse_and_display_round_trip() {
        for src in [
            "string",
            "number",
            "bool",
            "any",
            "list(string)",
            "set(number)",
            "map(list(string))",
            "object({cpus = number, name = optional(string)})",
            "tuple([string, bool])",
        ] {
            assert_eq!(ty(src).to_string(), src, "{src}");
        }
    }

    #[test]
    fn parse_errors() {
        let table = [
            ("list", "`list` needs an element type, as in `list(string)`"),
            ("strin", "unknown type `strin`"),
            (
                "list(string, number)",
                "`list(…)` takes exactly one argument",
            ),
            ("\"string\"", "not a type"),
            ("tuple(string)", "`tuple` takes a list of types"),
        ];
        for (src, want) in table {
            let expr = hcl::edit::parser::parse_expr(src).expect("parses");
            let err = VarType::parse(&expr).expect_err(src);
            assert!(err.message.starts_with(want), "{src}: {}", err.message);
        }
    }

    #[test]
    fn conversions() {
        let table: &[(&str, &str, Result<&str, &str>)] = &[
            ("number", "\"512\"", Ok("512")),
            ("string", "8", Ok("\"8\"")),
            ("bool", "\"true\"", Ok("true")),
            ("list(string)", "[\"a\", 1]", Ok("[\"a\", \"1\"]")),
            ("set(string)", "[\"a\", \"a\", \"b\"]", Ok("[\"a\", \"b\"]")),
            ("map(number)", "{a = \"1\"}", Ok("{a = 1}")),
            (
                "object({a = string, b = optional(number)})",
                "{a = \"x\", extra = true}",
                Ok("{a = \"x\", b = null}"),
            ),
            (
                "tuple([string, number])",
                "[\"x\", \"2\"]",
                Ok("[\"x\", 2]"),
            ),
            ("number", "\"lots\"", Err("expected a number, found string")),
            (
                "list(number)",
                "[1, \"x\"]",
                Err("expected a number at `[1]`, found string"),
            ),
            (
                "map(list(string))",
                "{a = [[1]]}",
                Err("expected a string at `[\"a\"][0]`, found list"),
            ),
            (
                "object({a = object({b = string})})",
                "{a = {}}",
                Err("attribute `a.b` is required"),
            ),
            (
                "tuple([string])",
                "[\"a\", \"b\"]",
                Err("expected 1 elements, found 2"),
            ),
            (
                "list(string)",
                "\"a\"",
                Err("expected a list(string), found string"),
            ),
        ];
        for (t, v, want) in table {
            let got = ty(t).convert(&val(v));
            match want {
                Ok(w) => assert_eq!(got, Ok(val(w)), "{t} from {v}"),
                Err(w) => assert_eq!(got, Err((*w).to_owned()), "{t} from {v}"),
            }
        }
    }
}
