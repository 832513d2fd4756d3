//! Decoders: `csvdecode`, `yamldecode`, and `textencodebase64` / `textdecodebase64` (text in
//! another character encoding, e.g. UTF-16LE for PowerShell's `-EncodedCommand`).
//!
//! Messages never quote the input: it may come from a sensitive variable.

use base64::Engine as _;
use hcl::Value;
use hcl::eval::FuncArgs;
use yaml_rust2::{Yaml, YamlLoader};

use super::{s, str_arg};
use crate::template::eval::number_value;

/// A list of objects, one per record, keyed by the header line's names (all values strings).
pub(super) fn csvdecode(args: FuncArgs) -> Result<Value, String> {
    let text = str_arg(&args, 0)?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .from_reader(text.as_bytes());
    let bad = |e: csv::Error| match e.position() {
        Some(p) => format!("malformed CSV at line {}", p.line()),
        None => "malformed CSV".to_owned(),
    };
    let headers = reader.headers().map_err(bad)?.clone();
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(bad)?;
        rows.push(Value::Object(
            headers
                .iter()
                .zip(record.iter())
                .map(|(k, v)| (k.to_owned(), s(v)))
                .collect(),
        ));
    }
    Ok(Value::Array(rows))
}

/// The value of one YAML document (an empty text is `null`).
pub(super) fn yamldecode(args: FuncArgs) -> Result<Value, String> {
    let text = str_arg(&args, 0)?;
    let docs = YamlLoader::load_from_str(&text).map_err(|e| {
        let m = e.marker();
        format!("invalid YAML at line {}, column {}", m.line(), m.col() + 1)
    })?;
    match docs.as_slice() {
        [] => Ok(Value::Null),
        [doc] => from_yaml(doc),
        _ => Err("the text holds several YAML documents; `yamldecode` takes one".to_owned()),
    }
}

fn from_yaml(y: &Yaml) -> Result<Value, String> {
    Ok(match y {
        Yaml::Null => Value::Null,
        Yaml::Boolean(b) => Value::Bool(*b),
        Yaml::Integer(i) => Value::from(*i),
        Yaml::Real(_) => match y.as_f64() {
            Some(f) if f.is_finite() => number_value(f),
            _ => return Err("YAML holds a number HCL cannot represent (inf or nan)".to_owned()),
        },
        Yaml::String(t) => s(t.as_str()),
        Yaml::Array(a) => Value::Array(a.iter().map(from_yaml).collect::<Result<_, _>>()?),
        Yaml::Hash(h) => {
            let mut map = hcl::Map::new();
            for (k, v) in h {
                let key = match k {
                    Yaml::String(t) | Yaml::Real(t) => t.clone(),
                    Yaml::Integer(i) => i.to_string(),
                    Yaml::Boolean(b) => b.to_string(),
                    Yaml::Null => "null".to_owned(),
                    _ => return Err("YAML map keys must be scalars".to_owned()),
                };
                map.insert(key, from_yaml(v)?);
            }
            Value::Object(map)
        }
        Yaml::Alias(_) | Yaml::BadValue => {
            return Err("YAML holds an alias kiln cannot resolve".to_owned());
        }
    })
}

/// The character encodings kiln converts text to and from.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Encoding {
    Utf8,
    Utf16Le,
    Utf16Be,
    /// UTF-16 with a byte-order mark (big-endian when written).
    Utf16,
    Latin1,
    Ascii,
}

impl Encoding {
    fn by_name(name: &str) -> Result<Self, String> {
        let n = name.to_ascii_uppercase().replace('_', "-");
        Ok(match n.as_str() {
            "UTF-8" | "UTF8" => Self::Utf8,
            "UTF-16LE" | "UTF16LE" => Self::Utf16Le,
            "UTF-16BE" | "UTF16BE" => Self::Utf16Be,
            "UTF-16" | "UTF16" => Self::Utf16,
            "ISO-8859-1" | "LATIN1" | "ISO8859-1" => Self::Latin1,
            "US-ASCII" | "ASCII" => Self::Ascii,
            _ => {
                return Err(format!(
                    "kiln does not know the encoding `{name}`; it offers UTF-8, UTF-16LE, \
                     UTF-16BE, UTF-16, ISO-8859-1 and US-ASCII"
                ));
            }
        })
    }

    fn encode(self, text: &str) -> Result<Vec<u8>, String> {
        let narrow = |limit: u32| {
            text.chars()
                .map(|c| {
                    u8::try_from(u32::from(c))
                        .ok()
                        .filter(|b| u32::from(*b) <= limit)
                        .ok_or_else(|| "the text has characters this encoding lacks".to_owned())
                })
                .collect::<Result<Vec<u8>, String>>()
        };
        Ok(match self {
            Self::Utf8 => text.as_bytes().to_vec(),
            Self::Utf16Le => text.encode_utf16().flat_map(u16::to_le_bytes).collect(),
            Self::Utf16Be => text.encode_utf16().flat_map(u16::to_be_bytes).collect(),
            Self::Utf16 => [0xfe, 0xff]
                .into_iter()
                .chain(text.encode_utf16().flat_map(u16::to_be_bytes))
                .collect(),
            Self::Latin1 => narrow(0xff)?,
            Self::Ascii => narrow(0x7f)?,
        })
    }

    fn decode(self, bytes: &[u8]) -> Result<String, String> {
        let bad = || "the decoded bytes are not valid text in this encoding".to_owned();
        let utf16 = |bytes: &[u8], le: bool| {
            if !bytes.len().is_multiple_of(2) {
                return Err(bad());
            }
            let units = bytes.chunks_exact(2).map(|p| {
                let pair = [p[0], p[1]];
                if le {
                    u16::from_le_bytes(pair)
                } else {
                    u16::from_be_bytes(pair)
                }
            });
            char::decode_utf16(units)
                .collect::<Result<String, _>>()
                .map_err(|_| bad())
        };
        match self {
            Self::Utf8 => String::from_utf8(bytes.to_vec()).map_err(|_| bad()),
            Self::Utf16Le => utf16(bytes, true),
            Self::Utf16Be => utf16(bytes, false),
            Self::Utf16 => match bytes {
                [0xff, 0xfe, rest @ ..] => utf16(rest, true),
                [0xfe, 0xff, rest @ ..] => utf16(rest, false),
                _ => utf16(bytes, false),
            },
            Self::Latin1 => Ok(bytes.iter().map(|&b| char::from(b)).collect()),
            Self::Ascii if bytes.is_ascii() => Ok(bytes.iter().map(|&b| char::from(b)).collect()),
            Self::Ascii => Err(bad()),
        }
    }
}

pub(super) fn textencodebase64(args: FuncArgs) -> Result<Value, String> {
    let text = str_arg(&args, 0)?;
    let bytes = Encoding::by_name(&str_arg(&args, 1)?)?.encode(&text)?;
    Ok(s(base64::engine::general_purpose::STANDARD.encode(bytes)))
}

pub(super) fn textdecodebase64(args: FuncArgs) -> Result<Value, String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(str_arg(&args, 0)?)
        .map_err(|_| "argument 1 is not valid base64".to_owned())?;
    Encoding::by_name(&str_arg(&args, 1)?)?
        .decode(&bytes)
        .map(s)
}
