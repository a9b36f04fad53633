//! Parsing Canonical Form of an Avro schema and its CRC-64-AVRO (Rabin) fingerprint, as the
//! Avro specification defines them ("Parsing Canonical Form for Schemas", "Schema
//! Fingerprints"). Standard Avro writers (Java, Python, C#, ...) put this fingerprint into
//! single-object encoded records, so trackiq computes it the same way rather than through
//! apache-avro's `Schema::fingerprint`, whose canonical form keeps logical types
//! (`{"type":"long","logicalType":"timestamp-micros"}` where the spec says `"long"`).
//!
//! The transformations, in the spec's words and where each is applied here:
//! - PRIMITIVES: a primitive schema in object form becomes its name ([`primitive`]);
//! - FULLNAMES: names become fullnames, `namespace` attributes go ([`Scope::full_name`]);
//! - STRIP: only `type`, `name`, `fields`, `symbols`, `items`, `values`, `size` stay;
//! - ORDER: those attributes appear in that order (each `write_*` writes them so);
//! - STRINGS: escapes in string literals become UTF-8 (the JSON parser already decoded them;
//!   [`write_string`] escapes only what JSON requires);
//! - INTEGERS: `size` without quotes or leading zeros ([`fixed_size`]);
//! - WHITESPACE: none outside string literals (nothing here writes any).

use std::collections::HashSet;

use serde_json::{Map, Value};

use crate::error::SchemaError;

/// Avro's primitive type names: they have no namespace and cannot be redefined.
const PRIMITIVES: [&str; 8] = ["null", "boolean", "int", "long", "float", "double", "bytes", "string"];

/// `EMPTY` of the spec's CRC-64-AVRO: both the fingerprint of zero bytes and the polynomial.
const CRC64_AVRO_EMPTY: u64 = 0xc15d_213a_a4d7_a795;

/// The spec's 256-entry lookup table, built at compile time.
const CRC64_AVRO_TABLE: [u64; 256] = {
    let mut table = [0u64; 256];
    let mut i = 0;
    while i < 256 {
        let mut fp = i as u64;
        let mut bit = 0;
        while bit < 8 {
            fp = (fp >> 1) ^ (CRC64_AVRO_EMPTY & (fp & 1).wrapping_neg());
            bit += 1;
        }
        table[i] = fp;
        i += 1;
    }
    table
};

/// CRC-64-AVRO of `bytes`, as the spec's reference code computes it (a `long` in Java).
pub fn crc64_avro(bytes: &[u8]) -> u64 {
    bytes.iter().fold(CRC64_AVRO_EMPTY, |fp, &b| (fp >> 8) ^ CRC64_AVRO_TABLE[((fp ^ u64::from(b)) & 0xff) as usize])
}

/// The 8 fingerprint bytes of single-object encoding: the CRC-64-AVRO of the schema's
/// Parsing Canonical Form, little-endian (as the spec's Java reference writes it).
pub fn fingerprint(schema: &Value) -> Result<[u8; 8], SchemaError> {
    Ok(crc64_avro(parsing_canonical_form(schema)?.as_bytes()).to_le_bytes())
}

/// The Parsing Canonical Form of a schema given as JSON. Named types must be defined before
/// they are referred to (as every Avro parser requires), and each at most once.
pub fn parsing_canonical_form(schema: &Value) -> Result<String, SchemaError> {
    let mut out = String::new();
    Scope { namespace: String::new(), path: String::new() }.schema(schema, &mut HashSet::new(), &mut out)?;
    Ok(out)
}

fn invalid(path: &str, reason: impl Into<String>) -> SchemaError {
    let field = if path.is_empty() { "schema".to_string() } else { format!("schema at {path}") };
    SchemaError::Invalid { field, reason: reason.into() }
}

/// Where in the schema the walk is: the enclosing namespace (for FULLNAMES) and a JSON path
/// (for errors).
struct Scope {
    namespace: String,
    path: String,
}

impl Scope {
    fn at(&self, step: &str) -> Scope {
        Scope { namespace: self.namespace.clone(), path: format!("{}{step}", self.path) }
    }

    /// FULLNAMES: a name with a dot is already full; otherwise the namespace is the
    /// definition's own `namespace` attribute if it has one (`""`: the null namespace), else
    /// the enclosing one. Returns the fullname and the namespace it puts its children in.
    fn full_name(&self, name: &str, namespace: Option<&str>) -> (String, String) {
        if let Some((ns, _)) = name.rsplit_once('.') {
            return (name.to_string(), ns.to_string());
        }
        let ns = namespace.unwrap_or(&self.namespace);
        let full = if ns.is_empty() { name.to_string() } else { format!("{ns}.{name}") };
        (full, ns.to_string())
    }

    fn schema(&self, v: &Value, defined: &mut HashSet<String>, out: &mut String) -> Result<(), SchemaError> {
        match v {
            Value::String(name) => self.reference(name, defined, out),
            Value::Array(branches) => {
                out.push('[');
                for (i, b) in branches.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    self.at(&format!("[{i}]")).schema(b, defined, out)?;
                }
                out.push(']');
                Ok(())
            }
            Value::Object(obj) => self.object(obj, defined, out),
            other => Err(invalid(&self.path, format!("`{other}` is not a schema (a name, an object or a union array)"))),
        }
    }

    /// A type name in a type position: a primitive, or a reference to a named type that was
    /// defined earlier, written as its fullname.
    fn reference(&self, name: &str, defined: &HashSet<String>, out: &mut String) -> Result<(), SchemaError> {
        if PRIMITIVES.contains(&name) {
            write_string(name, out);
            return Ok(());
        }
        let (full, _) = self.full_name(name, None);
        if !defined.contains(&full) {
            return Err(invalid(&self.path, format!("refers to `{full}`, which is not defined before this point")));
        }
        write_string(&full, out);
        Ok(())
    }

    fn object(&self, obj: &Map<String, Value>, defined: &mut HashSet<String>, out: &mut String) -> Result<(), SchemaError> {
        let Some(kind) = obj.get("type") else { return Err(invalid(&self.path, "has no `type`")) };
        let Value::String(kind) = kind else {
            return Err(invalid(&self.path, "`type` of a schema object must be a type name"));
        };
        match kind.as_str() {
            // PRIMITIVES: every other attribute (logicalType, precision, ...) is stripped.
            k if PRIMITIVES.contains(&k) => {
                write_string(k, out);
                Ok(())
            }
            "record" | "enum" | "fixed" => self.named(kind, obj, defined, out),
            "array" => {
                out.push_str(r#"{"type":"array","items":"#);
                self.at(".items").schema(required(obj, "items", &self.path)?, defined, out)?;
                out.push('}');
                Ok(())
            }
            "map" => {
                out.push_str(r#"{"type":"map","values":"#);
                self.at(".values").schema(required(obj, "values", &self.path)?, defined, out)?;
                out.push('}');
                Ok(())
            }
            // `{"type": "SomeRecord"}` is a reference in object form (Java's parser accepts it).
            name => self.reference(name, defined, out),
        }
    }

    /// A record, enum or fixed definition: `{"name":FULLNAME,"type":KIND,` then its fields,
    /// symbols or size.
    fn named(&self, kind: &str, obj: &Map<String, Value>, defined: &mut HashSet<String>, out: &mut String) -> Result<(), SchemaError> {
        let name = required_str(obj, "name", &self.path)?;
        let namespace = match obj.get("namespace") {
            None | Some(Value::Null) => None,
            Some(Value::String(ns)) => Some(ns.as_str()),
            Some(other) => return Err(invalid(&self.path, format!("`namespace` {other} is not a string"))),
        };
        let (full, inner) = self.full_name(name, namespace);
        if PRIMITIVES.contains(&full.as_str()) {
            return Err(invalid(&self.path, format!("`{full}` redefines a primitive type")));
        }
        // Defined before its body is walked, so that a record may refer to itself.
        if !defined.insert(full.clone()) {
            return Err(invalid(&self.path, format!("`{full}` is defined twice")));
        }
        out.push_str(r#"{"name":"#);
        write_string(&full, out);
        out.push_str(r#","type":"#);
        write_string(kind, out);
        match kind {
            "record" => {
                let Value::Array(fields) = required(obj, "fields", &self.path)? else {
                    return Err(invalid(&self.path, "`fields` is not an array"));
                };
                let scope = Scope { namespace: inner, path: self.path.clone() };
                out.push_str(r#","fields":["#);
                for (i, f) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    scope.at(&format!(".fields[{i}]")).field(f, defined, out)?;
                }
                out.push(']');
            }
            "enum" => {
                let Value::Array(symbols) = required(obj, "symbols", &self.path)? else {
                    return Err(invalid(&self.path, "`symbols` is not an array"));
                };
                out.push_str(r#","symbols":["#);
                for (i, s) in symbols.iter().enumerate() {
                    let Value::String(s) = s else { return Err(invalid(&self.path, format!("symbol {i} is not a string"))) };
                    if i > 0 {
                        out.push(',');
                    }
                    write_string(s, out);
                }
                out.push(']');
            }
            _ => {
                out.push_str(r#","size":"#);
                out.push_str(&fixed_size(required(obj, "size", &self.path)?, &self.path)?.to_string());
            }
        }
        out.push('}');
        Ok(())
    }

    /// A record field keeps its name (a plain name, never namespaced) and its type.
    fn field(&self, f: &Value, defined: &mut HashSet<String>, out: &mut String) -> Result<(), SchemaError> {
        let Value::Object(f) = f else { return Err(invalid(&self.path, "a field must be an object")) };
        out.push_str(r#"{"name":"#);
        write_string(required_str(f, "name", &self.path)?, out);
        out.push_str(r#","type":"#);
        self.at(".type").schema(required(f, "type", &self.path)?, defined, out)?;
        out.push('}');
        Ok(())
    }
}

fn required<'a>(obj: &'a Map<String, Value>, key: &str, path: &str) -> Result<&'a Value, SchemaError> {
    obj.get(key).ok_or_else(|| invalid(path, format!("has no `{key}`")))
}

fn required_str<'a>(obj: &'a Map<String, Value>, key: &str, path: &str) -> Result<&'a str, SchemaError> {
    required(obj, key, path)?.as_str().ok_or_else(|| invalid(path, format!("`{key}` is not a string")))
}

/// INTEGERS: the size of a fixed, given as a JSON integer or as a quoted one.
fn fixed_size(v: &Value, path: &str) -> Result<u64, SchemaError> {
    let parsed = match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => s.parse().ok(),
        _ => None,
    };
    parsed.ok_or_else(|| invalid(path, format!("`size` {v} is not a non-negative integer")))
}

/// STRINGS: a JSON string literal with characters as UTF-8; only `"`, `\` and control
/// characters are escaped, because JSON cannot hold them raw (Avro names never contain them).
fn write_string(s: &str, out: &mut String) {
    out.push_str(&Value::String(s.to_string()).to_string());
}

#[cfg(test)]
mod tests;
