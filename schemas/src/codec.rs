//! Avro single-object encoding (Avro spec, "Single object encoding"): every record is
//! `C3 01`, the 8-byte little-endian CRC-64-AVRO (Rabin) fingerprint of the writer schema's
//! Parsing Canonical Form, then the Avro binary datum. Any Avro reader that knows the schema
//! decodes a record without a registry; trackiq keeps every schema version it ever wrote, so
//! an old record is resolved against the current schema (new optional fields get defaults).
//!
//! Fingerprints are computed per the spec ([`canonical`]). Records written before
//! that carry apache-avro's fingerprint instead (its canonical form keeps logical types), so
//! every version is also found under that legacy fingerprint; only the spec's is written.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use apache_avro::{Schema, rabin::Rabin};
use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::columns::SampleColumns;
use crate::error::SchemaError;
use crate::alerting::{Alert, AlertAction, Notification, ReleaseDecision};
use crate::events::{BaselinePin, DeadLetter, Detection, RunFinished, RunStarted, RunSummary, SampleBatch, TrendResult, Verdict};

pub mod canonical;
mod guard;

/// Marker bytes that open every single-object encoded record.
pub const MAGIC: [u8; 2] = [0xC3, 0x01];
const HEADER_LEN: usize = 10;

/// The current `.avsc` files, in an order where every named type is defined before a file
/// that refers to it by name.
const CURRENT: &[(&str, &str)] = &[
    ("trackiq.RunStarted", include_str!("../avro/RunStarted.avsc")),
    ("trackiq.SampleBatch", include_str!("../avro/SampleBatch.avsc")),
    ("trackiq.SampleColumns", include_str!("../avro/SampleColumns.avsc")),
    ("trackiq.RunFinished", include_str!("../avro/RunFinished.avsc")),
    ("trackiq.Detection", include_str!("../avro/Detection.avsc")),
    ("trackiq.RunSummary", include_str!("../avro/RunSummary.avsc")),
    ("trackiq.Verdict", include_str!("../avro/Verdict.avsc")),
    ("trackiq.DeadLetter", include_str!("../avro/DeadLetter.avsc")),
    ("trackiq.TrendResult", include_str!("../avro/TrendResult.avsc")),
    ("trackiq.BaselinePin", include_str!("../avro/BaselinePin.avsc")),
    ("trackiq.Alert", include_str!("../avro/Alert.avsc")),
    ("trackiq.AlertAction", include_str!("../avro/AlertAction.avsc")),
    ("trackiq.Notification", include_str!("../avro/Notification.avsc")),
    ("trackiq.ReleaseDecision", include_str!("../avro/ReleaseDecision.avsc")),
];

/// Earlier versions still accepted as writer schemas. A named type defined here shadows the
/// current one for the history files after it: `Verdict` v1 and v2 embed `RunSummary` v1.
const HISTORY: &[(&str, &str)] = &[
    // Verdict v4 (before the catalog kind, the change interval and Holm's p-value) embeds
    // the current RunSummary: it comes before any older RunSummary shadows it.
    ("trackiq.Verdict", include_str!("../avro/history/Verdict.v4.avsc")),
    ("trackiq.RunFinished", include_str!("../avro/history/RunFinished.v1.avsc")),
    ("trackiq.RunSummary", include_str!("../avro/history/RunSummary.v1.avsc")),
    ("trackiq.Verdict", include_str!("../avro/history/Verdict.v1.avsc")),
    ("trackiq.Verdict", include_str!("../avro/history/Verdict.v2.avsc")),
    // RunSummary v2 (before `percentile_error`), and the Verdict that embedded it.
    ("trackiq.RunSummary", include_str!("../avro/history/RunSummary.v2.avsc")),
    ("trackiq.Verdict", include_str!("../avro/history/Verdict.v3.avsc")),
    // Alert, AlertAction and Notification v1: before the `note` reason and the `note`/`downgrade` actions.
    ("trackiq.Alert", include_str!("../avro/history/Alert.v1.avsc")),
    ("trackiq.AlertAction", include_str!("../avro/history/AlertAction.v1.avsc")),
    ("trackiq.Notification", include_str!("../avro/history/Notification.v1.avsc")),
];

/// A type that travels as one Avro record.
pub trait Event: Serialize + DeserializeOwned {
    /// Full Avro name of the record, e.g. `trackiq.RunStarted`.
    const NAME: &'static str;
    /// The record type written for this event: `NAME`, unless the event changed form (a
    /// [`SampleBatch`] is written as `trackiq.SampleColumns`).
    const WIRE: &'static str = Self::NAME;

    /// The datum written under [`Event::WIRE`].
    fn wire_value(&self) -> Result<apache_avro::types::Value, apache_avro::Error> {
        apache_avro::to_value(self)
    }

    /// Whether a record of type `name` holds this event.
    fn reads(name: &str) -> bool {
        name == Self::NAME
    }

    /// The event from samples decoded as columns (only a [`SampleBatch`] reads them).
    fn from_columns(_columns: SampleColumns) -> Result<Self, SchemaError> {
        Err(SchemaError::WrongType { expected: Self::NAME, found: SampleBatch::WIRE })
    }

    /// The event from a decoded datum of a record type it [`Event::reads`].
    fn from_wire(_name: &str, value: &apache_avro::types::Value) -> Result<Self, SchemaError> {
        apache_avro::from_value(value).map_err(|source| SchemaError::Decode { name: Self::NAME, source: Box::new(source) })
    }
}

macro_rules! event {
    ($t:ty, $name:literal) => {
        impl Event for $t {
            const NAME: &'static str = $name;
        }
    };
}
event!(RunStarted, "trackiq.RunStarted");

/// Samples are written as columns and read in either form (see [`crate::columns`]).
impl Event for SampleBatch {
    const NAME: &'static str = "trackiq.SampleBatch";
    const WIRE: &'static str = "trackiq.SampleColumns";

    fn wire_value(&self) -> Result<apache_avro::types::Value, apache_avro::Error> {
        apache_avro::to_value(SampleColumns::from(self))
    }

    fn reads(name: &str) -> bool {
        name == Self::NAME || name == Self::WIRE
    }

    fn from_columns(columns: SampleColumns) -> Result<Self, SchemaError> {
        SampleBatch::try_from(columns)
    }

    fn from_wire(name: &str, value: &apache_avro::types::Value) -> Result<Self, SchemaError> {
        let decode_error = |source| SchemaError::Decode { name: Self::WIRE, source: Box::new(source) };
        if name == Self::WIRE {
            SampleBatch::try_from(apache_avro::from_value::<SampleColumns>(value).map_err(decode_error)?)
        } else {
            apache_avro::from_value(value).map_err(|source| SchemaError::Decode { name: Self::NAME, source: Box::new(source) })
        }
    }
}
event!(RunFinished, "trackiq.RunFinished");
event!(RunSummary, "trackiq.RunSummary");
event!(Detection, "trackiq.Detection");
event!(Verdict, "trackiq.Verdict");
event!(DeadLetter, "trackiq.DeadLetter");
event!(TrendResult, "trackiq.TrendResult");
event!(BaselinePin, "trackiq.BaselinePin");
event!(Alert, "trackiq.Alert");
event!(AlertAction, "trackiq.AlertAction");
event!(Notification, "trackiq.Notification");
event!(ReleaseDecision, "trackiq.ReleaseDecision");

/// Any event of the contract, for consumers of topics that carry several kinds.
#[derive(Debug, Clone, PartialEq)]
pub enum AnyEvent {
    RunStarted(RunStarted),
    SampleBatch(SampleBatch),
    RunFinished(RunFinished),
    RunSummary(Box<RunSummary>),
    Verdict(Box<Verdict>),
    DeadLetter(DeadLetter),
    TrendResult(Box<TrendResult>),
    BaselinePin(BaselinePin),
    Detection(Detection),
    Alert(Box<Alert>),
    AlertAction(AlertAction),
    Notification(Notification),
    ReleaseDecision(ReleaseDecision),
}

impl AnyEvent {
    /// Short name of the record type, e.g. `RunStarted`, for messages.
    pub fn name(&self) -> &'static str {
        match self {
            AnyEvent::RunStarted(_) => "RunStarted",
            AnyEvent::SampleBatch(_) => "SampleBatch",
            AnyEvent::RunFinished(_) => "RunFinished",
            AnyEvent::RunSummary(_) => "RunSummary",
            AnyEvent::Verdict(_) => "Verdict",
            AnyEvent::DeadLetter(_) => "DeadLetter",
            AnyEvent::TrendResult(_) => "TrendResult",
            AnyEvent::BaselinePin(_) => "BaselinePin",
            AnyEvent::Detection(_) => "Detection",
            AnyEvent::Alert(_) => "Alert",
            AnyEvent::AlertAction(_) => "AlertAction",
            AnyEvent::Notification(_) => "Notification",
            AnyEvent::ReleaseDecision(_) => "ReleaseDecision",
        }
    }
}

/// One schema version of a record type.
struct Known {
    name: &'static str,
    writer: Schema,
    /// Named types of `writer`, for the guard's walk over a datum.
    names: guard::Names,
    /// Self-contained JSON (references to other files inlined).
    json: serde_json::Value,
    /// The spec's Parsing Canonical Form, whose CRC-64-AVRO is `fingerprint`.
    canonical: String,
    fingerprint: [u8; 8],
    /// apache-avro's `Schema::fingerprint::<Rabin>()`, which trackiq wrote before it
    /// followed the spec: still accepted so that those records decode.
    legacy_fingerprint: [u8; 8],
}

/// One schema version of a record type, as [`Registry::versions`] lists them.
#[derive(Debug, Clone, Copy)]
pub struct Version<'a> {
    /// CRC-64-AVRO of `canonical_form`: what single-object encoding carries.
    pub fingerprint: [u8; 8],
    /// apache-avro 0.21's fingerprint of the same schema (its canonical form keeps logical
    /// types): what trackiq wrote before following the spec, still decoded.
    pub legacy_fingerprint: [u8; 8],
    /// The spec's Parsing Canonical Form.
    pub canonical_form: &'a str,
    /// The schema as self-contained JSON.
    pub json: &'a serde_json::Value,
    pub schema: &'a Schema,
}

/// Schemas by name and by fingerprint.
pub struct Registry {
    current: HashMap<&'static str, (Schema, [u8; 8])>,
    versions: Vec<Known>,
    /// Index into `versions` of both the spec and the legacy fingerprint of every version.
    by_fingerprint: HashMap<[u8; 8], usize>,
    /// Full JSON of every current schema, references inlined: what a foreign reader needs.
    json: HashMap<&'static str, serde_json::Value>,
    /// The current `SampleColumns` schema for serde_avro_fast, which decodes a datum straight
    /// into [`SampleColumns`]: samples are nearly every record, and apache-avro would first
    /// build a `Value` per item (a third of the pipeline's decoding time went there).
    columns: serde_avro_fast::Schema,
}

static REGISTRY: LazyLock<Arc<Registry>> =
    LazyLock::new(|| Arc::new(Registry::load().expect("bundled .avsc files are valid")));

/// The registry built from the schema files compiled into this binary.
pub fn registry() -> &'static Registry {
    &REGISTRY
}

impl Registry {
    fn load() -> Result<Self, SchemaError> {
        let mut named: HashMap<String, serde_json::Value> = HashMap::new();
        let mut current = HashMap::new();
        let mut versions = Vec::new();
        let mut json = HashMap::new();
        for (name, text) in CURRENT {
            let raw: serde_json::Value = serde_json::from_str(text)
                .map_err(|e| SchemaError::SchemaFile { name, reason: e.to_string() })?;
            collect_named(&raw, "trackiq", &mut named);
            let full = inline_references(&raw, &named, &mut Default::default(), "trackiq");
            let known = parse(name, full.clone())?;
            current.insert(*name, (known.writer.clone(), known.fingerprint));
            versions.push(known);
            json.insert(*name, full);
        }
        let mut named_then = named.clone();
        for (name, text) in HISTORY {
            let raw: serde_json::Value = serde_json::from_str(text)
                .map_err(|e| SchemaError::SchemaFile { name, reason: e.to_string() })?;
            let full = inline_references(&raw, &named_then, &mut Default::default(), "trackiq");
            named_then.insert(name.to_string(), full.clone());
            versions.push(parse(name, full)?);
        }
        let mut by_fingerprint = HashMap::new();
        for (i, known) in versions.iter().enumerate() {
            for fp in [known.fingerprint, known.legacy_fingerprint] {
                // Two versions under one fingerprint would make a record's writer schema a
                // guess; the spec and legacy fingerprints of one version may coincide.
                if by_fingerprint.insert(fp, i).is_some_and(|other| other != i) {
                    return Err(SchemaError::SchemaFile {
                        name: known.name,
                        reason: format!("a version shares fingerprint {} with another version", hex(&fp)),
                    });
                }
            }
        }
        let columns = json["trackiq.SampleColumns"]
            .to_string()
            .parse()
            .map_err(|e: serde_avro_fast::schema::SchemaError| SchemaError::SchemaFile { name: "trackiq.SampleColumns", reason: e.to_string() })?;
        Ok(Registry { current, versions, by_fingerprint, json, columns })
    }

    /// Current schema of a record type.
    pub fn schema(&self, name: &str) -> Option<&Schema> {
        self.current.get(name).map(|(s, _)| s)
    }

    /// Current schema as self-contained JSON (named references inlined).
    pub fn schema_json(&self, name: &str) -> Option<&serde_json::Value> {
        self.json.get(name)
    }

    /// Every schema version of a record type this build decodes, with its (spec) fingerprint.
    pub fn writer_schemas(&self, name: &str) -> Vec<([u8; 8], &Schema)> {
        let mut v: Vec<_> = self.versions.iter().filter(|k| k.name == name).map(|k| (k.fingerprint, &k.writer)).collect();
        v.sort_by_key(|(fp, _)| *fp);
        v
    }

    /// Every schema version of a record type this build decodes, current first, then the
    /// history from oldest to newest.
    pub fn versions(&self, name: &str) -> Vec<Version<'_>> {
        self.versions
            .iter()
            .filter(|k| k.name == name)
            .map(|k| Version {
                fingerprint: k.fingerprint,
                legacy_fingerprint: k.legacy_fingerprint,
                canonical_form: &k.canonical,
                json: &k.json,
                schema: &k.writer,
            })
            .collect()
    }

    /// CRC-64-AVRO fingerprint of the current schema's Parsing Canonical Form: what
    /// [`Registry::encode`] writes and any standard Avro writer computes.
    pub fn fingerprint(&self, name: &str) -> Option<[u8; 8]> {
        self.current.get(name).map(|(_, fp)| *fp)
    }

    /// Encodes an event with its current schema (in its current form, [`Event::WIRE`]).
    pub fn encode<E: Event>(&self, event: &E) -> Result<Vec<u8>, SchemaError> {
        let value = event.wire_value().map_err(|source| SchemaError::Encode { name: E::WIRE, source: Box::new(source) })?;
        self.encode_value(E::WIRE, value)
    }

    /// Encodes `datum` as a record of current type `name`, e.g. a [`SampleBatch`] row by row
    /// as `trackiq.SampleBatch` (what producers before the columnar form wrote).
    pub fn encode_as<T: Serialize>(&self, name: &'static str, datum: &T) -> Result<Vec<u8>, SchemaError> {
        let value = apache_avro::to_value(datum).map_err(|source| SchemaError::Encode { name, source: Box::new(source) })?;
        self.encode_value(name, value)
    }

    fn encode_value(&self, name: &'static str, value: apache_avro::types::Value) -> Result<Vec<u8>, SchemaError> {
        let (schema, fp) = self.current.get(name).ok_or(SchemaError::UnknownType(name))?;
        let mut out = Vec::with_capacity(128);
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(fp);
        let err = |source| SchemaError::Encode { name, source: Box::new(source) };
        // Resolved so that named references inside one schema resolve.
        let value = value.resolve(schema).map_err(err)?;
        out.extend(apache_avro::to_avro_datum(schema, value).map_err(err)?);
        Ok(out)
    }

    /// Encodes an event of any type with its current schema.
    pub fn encode_any(&self, event: &AnyEvent) -> Result<Vec<u8>, SchemaError> {
        match event {
            AnyEvent::RunStarted(e) => self.encode(e),
            AnyEvent::SampleBatch(e) => self.encode(e),
            AnyEvent::RunFinished(e) => self.encode(e),
            AnyEvent::RunSummary(e) => self.encode(e.as_ref()),
            AnyEvent::Verdict(e) => self.encode(e.as_ref()),
            AnyEvent::DeadLetter(e) => self.encode(e),
            AnyEvent::TrendResult(e) => self.encode(e.as_ref()),
            AnyEvent::BaselinePin(e) => self.encode(e),
            AnyEvent::Detection(e) => self.encode(e),
            AnyEvent::Alert(e) => self.encode(e.as_ref()),
            AnyEvent::AlertAction(e) => self.encode(e),
            AnyEvent::Notification(e) => self.encode(e),
            AnyEvent::ReleaseDecision(e) => self.encode(e),
        }
    }

    /// Decodes a record that must be of type `E` (any known version of it).
    pub fn decode<E: Event>(&self, bytes: &[u8]) -> Result<E, SchemaError> {
        let (known, datum) = self.header(bytes)?;
        if !E::reads(known.name) {
            return Err(SchemaError::WrongType { expected: E::NAME, found: known.name });
        }
        if let Some(columns) = self.current_columns(known, datum)? {
            return E::from_columns(columns);
        }
        E::from_wire(known.name, &self.datum_value(known, datum)?)
    }

    /// Decodes a record of any known type.
    pub fn decode_any(&self, bytes: &[u8]) -> Result<AnyEvent, SchemaError> {
        let (known, datum) = self.header(bytes)?;
        Ok(match known.name {
            "trackiq.RunStarted" => AnyEvent::RunStarted(self.datum(known, datum)?),
            "trackiq.SampleBatch" | "trackiq.SampleColumns" => AnyEvent::SampleBatch(match self.current_columns(known, datum)? {
                Some(columns) => SampleBatch::try_from(columns)?,
                None => SampleBatch::from_wire(known.name, &self.datum_value(known, datum)?)?,
            }),
            "trackiq.RunFinished" => AnyEvent::RunFinished(self.datum(known, datum)?),
            "trackiq.RunSummary" => AnyEvent::RunSummary(Box::new(self.datum(known, datum)?)),
            "trackiq.Verdict" => AnyEvent::Verdict(Box::new(self.datum(known, datum)?)),
            "trackiq.DeadLetter" => AnyEvent::DeadLetter(self.datum(known, datum)?),
            "trackiq.TrendResult" => AnyEvent::TrendResult(Box::new(self.datum(known, datum)?)),
            "trackiq.BaselinePin" => AnyEvent::BaselinePin(self.datum(known, datum)?),
            "trackiq.Detection" => AnyEvent::Detection(self.datum(known, datum)?),
            "trackiq.Alert" => AnyEvent::Alert(Box::new(self.datum(known, datum)?)),
            "trackiq.AlertAction" => AnyEvent::AlertAction(self.datum(known, datum)?),
            "trackiq.Notification" => AnyEvent::Notification(self.datum(known, datum)?),
            "trackiq.ReleaseDecision" => AnyEvent::ReleaseDecision(self.datum(known, datum)?),
            other => return Err(SchemaError::UnknownType(other)),
        })
    }

    /// Decodes a record of any known type and checks its meaning ([`crate::validate`]): what
    /// every consumer of the pipeline reads through.
    pub fn decode_valid(&self, bytes: &[u8]) -> Result<AnyEvent, SchemaError> {
        let event = self.decode_any(bytes)?;
        crate::validate::validate(&event)?;
        Ok(event)
    }

    fn header<'a>(&self, bytes: &'a [u8]) -> Result<(&Known, &'a [u8]), SchemaError> {
        if bytes.len() < HEADER_LEN {
            return Err(SchemaError::TooShort { len: bytes.len() });
        }
        if bytes[..2] != MAGIC {
            return Err(SchemaError::BadMagic { found: [bytes[0], bytes[1]] });
        }
        let fp: [u8; 8] = bytes[2..HEADER_LEN].try_into().expect("8 bytes");
        let &i = self
            .by_fingerprint
            .get(&fp)
            .ok_or_else(|| SchemaError::UnknownFingerprint { fingerprint: hex(&fp) })?;
        Ok((&self.versions[i], &bytes[HEADER_LEN..]))
    }

    /// A datum written with the current `SampleColumns` schema, decoded without apache-avro's
    /// `Value`s (see [`Registry::columns`]); `None` for any other type or version.
    fn current_columns(&self, known: &Known, datum: &[u8]) -> Result<Option<SampleColumns>, SchemaError> {
        if self.current.get(known.name).is_none_or(|(_, fp)| known.name != SampleBatch::WIRE || *fp != known.fingerprint) {
            return Ok(None);
        }
        let decode_error = |why: String| SchemaError::Decode {
            name: known.name,
            source: Box::new(<apache_avro::Error as serde::de::Error>::custom(why)),
        };
        // The same guard as every other datum: no count or length beyond the bytes left.
        guard::check(&known.writer, &known.names, datum)
            .map_err(|source| SchemaError::Decode { name: known.name, source: Box::new(source) })?;
        let mut state = serde_avro_fast::de::DeserializerState::from_slice(datum, &self.columns);
        let columns = SampleColumns::deserialize(state.deserializer()).map_err(|e| decode_error(e.to_string()))?;
        let left = std::io::BufRead::fill_buf(&mut state.into_reader()).map_or(0, |rest| rest.len());
        if left != 0 {
            return Err(SchemaError::TrailingBytes { name: known.name, len: left });
        }
        Ok(Some(columns))
    }

    fn datum<E: DeserializeOwned>(&self, known: &Known, datum: &[u8]) -> Result<E, SchemaError> {
        apache_avro::from_value(&self.datum_value(known, datum)?)
            .map_err(|source| SchemaError::Decode { name: known.name, source: Box::new(source) })
    }

    fn datum_value(&self, known: &Known, mut datum: &[u8]) -> Result<apache_avro::types::Value, SchemaError> {
        // Before apache-avro sizes anything by what the datum claims ([`guard`]).
        guard::check(&known.writer, &known.names, datum)
            .map_err(|source| SchemaError::Decode { name: known.name, source: Box::new(source) })?;
        let reader = self.current.get(known.name).map(|(s, _)| s);
        let same = reader.is_some_and(|r| std::ptr::eq(r, &known.writer) || r == &known.writer);
        let value = apache_avro::from_avro_datum(&known.writer, &mut datum, if same { None } else { reader })
            .map_err(|source| SchemaError::Decode { name: known.name, source: Box::new(source) })?;
        if !datum.is_empty() {
            return Err(SchemaError::TrailingBytes { name: known.name, len: datum.len() });
        }
        Ok(value)
    }
}

/// Parses one self-contained schema version and computes both of its fingerprints.
fn parse(name: &'static str, json: serde_json::Value) -> Result<Known, SchemaError> {
    let file_error = |e: &dyn std::fmt::Display| SchemaError::SchemaFile { name, reason: e.to_string() };
    let writer = Schema::parse(&json).map_err(|e| file_error(&e))?;
    let names = guard::names(&writer).map_err(|e| file_error(&e))?;
    let form = canonical::parsing_canonical_form(&json).map_err(|e| file_error(&e))?;
    let fingerprint = canonical::crc64_avro(form.as_bytes()).to_le_bytes();
    let legacy = writer.fingerprint::<Rabin>().bytes;
    let legacy_fingerprint: [u8; 8] = legacy.as_slice().try_into().expect("Rabin fingerprints are 8 bytes");
    Ok(Known { name, writer, names, json, canonical: form, fingerprint, legacy_fingerprint })
}

fn full_name(obj: &serde_json::Map<String, serde_json::Value>, ns: &str) -> Option<(String, String)> {
    let name = obj.get("name")?.as_str()?;
    if name.contains('.') {
        let ns = name.rsplit_once('.').map(|(n, _)| n.to_string()).unwrap_or_default();
        return Some((name.to_string(), ns));
    }
    let ns = obj.get("namespace").and_then(|v| v.as_str()).unwrap_or(ns).to_string();
    Some((format!("{ns}.{name}"), ns))
}

/// Records every named type (record, enum, fixed) defined anywhere in `v`.
fn collect_named(v: &serde_json::Value, ns: &str, out: &mut HashMap<String, serde_json::Value>) {
    match v {
        serde_json::Value::Object(obj) => {
            let mut ns = ns.to_string();
            if matches!(obj.get("type").and_then(|t| t.as_str()), Some("record" | "enum" | "fixed"))
                && let Some((full, inner)) = full_name(obj, &ns)
            {
                out.entry(full).or_insert_with(|| v.clone());
                ns = inner;
            }
            obj.values().for_each(|c| collect_named(c, &ns, out));
        }
        serde_json::Value::Array(items) => items.iter().for_each(|c| collect_named(c, ns, out)),
        _ => {}
    }
}

/// Replaces the first use of a name defined in another file by that definition, so that
/// each schema is self-contained and its fingerprint is that of its full canonical form.
fn inline_references(
    v: &serde_json::Value,
    named: &HashMap<String, serde_json::Value>,
    defined: &mut std::collections::HashSet<String>,
    ns: &str,
) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        J::String(s) => {
            let full = if s.contains('.') { s.clone() } else { format!("{ns}.{s}") };
            match named.get(&full) {
                Some(def) if !defined.contains(&full) => inline_references(def, named, defined, ns),
                _ => v.clone(),
            }
        }
        J::Object(obj) => {
            let mut ns = ns.to_string();
            let kind = obj.get("type").and_then(|t| t.as_str());
            if matches!(kind, Some("record" | "enum" | "fixed"))
                && let Some((full, inner)) = full_name(obj, &ns)
            {
                defined.insert(full);
                ns = inner;
            }
            let mut out = serde_json::Map::new();
            for (k, c) in obj {
                // Only type positions can hold references; names, docs and defaults cannot.
                let walk = matches!(k.as_str(), "type" | "items" | "values" | "fields");
                out.insert(k.clone(), if walk { inline_references(c, named, defined, &ns) } else { c.clone() });
            }
            J::Object(out)
        }
        J::Array(items) => J::Array(items.iter().map(|c| inline_references(c, named, defined, ns)).collect()),
        other => other.clone(),
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
