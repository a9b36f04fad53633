use thiserror::Error;

/// What went wrong with the event contract.
#[derive(Debug, Error)]
pub enum SchemaError {
    #[error("record of {len} bytes is too short for Avro single-object encoding (needs at least 10)")]
    TooShort { len: usize },
    #[error("record does not start with the Avro single-object marker C3 01 (found {:02X} {:02X})", found[0], found[1])]
    BadMagic { found: [u8; 2] },
    #[error("record's schema fingerprint {fingerprint} is not a trackiq schema this build knows")]
    UnknownFingerprint { fingerprint: String },
    #[error("expected a {expected} record, found a {found} record")]
    WrongType { expected: &'static str, found: &'static str },
    #[error("no schema for record type {0}")]
    UnknownType(&'static str),
    #[error("schema file for {name} is invalid: {reason}")]
    SchemaFile { name: &'static str, reason: String },
    #[error("could not encode {name} with its schema: {source}")]
    Encode { name: &'static str, source: Box<apache_avro::Error> },
    #[error("could not decode {name} datum: {source}")]
    Decode { name: &'static str, source: Box<apache_avro::Error> },
    #[error("{name} datum has {len} trailing bytes")]
    TrailingBytes { name: &'static str, len: usize },
    #[error("invalid {field}: {reason}")]
    Invalid { field: String, reason: String },
}
