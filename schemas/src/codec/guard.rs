//! A pass over a datum before apache-avro decodes it, refusing counts and lengths that the
//! bytes left cannot hold.
//!
//! apache-avro reserves room for a whole array or map block as soon as it reads the block's
//! item count, and zeroes a whole string or bytes value as soon as it reads its length, up to
//! 512 MiB items or bytes either way. A 168-byte record claiming 67 million items made it ask
//! for 3.7 GB (found by `fuzz/` target `decode_validate`); where such an allocation fails,
//! Rust aborts the whole process, every stage with it. Every item of an array or map in the
//! contract takes at least one byte (no item type is `null` or an empty record), and a string
//! of n bytes takes n, so a count or length above the bytes left is a lie: refused here,
//! before anything is allocated. The walk allocates nothing and reads each byte at most once.
//!
//! Anything else that is wrong with the datum (a bad union index, a truncated value) is left
//! for apache-avro to report: the guard only stops the walk and lets the decoder run.

use std::collections::HashMap;

use apache_avro::Schema;
use apache_avro::schema::{Name, Namespace};

/// Named types of a writer schema, for following `Schema::Ref`.
pub(super) type Names = HashMap<Name, Schema>;

/// Longest zig-zag varint of a `long`: 64 bits in 7-bit groups.
const MAX_VARINT_LEN: usize = 10;
/// Byte widths of the fixed-size Avro types.
const FLOAT_LEN: usize = 4;
const DOUBLE_LEN: usize = 8;
const DURATION_LEN: usize = 12;

/// The named types of `schema`, cloned out of apache-avro's resolution of it.
pub(super) fn names(schema: &Schema) -> Result<Names, apache_avro::Error> {
    let resolved = apache_avro::schema::ResolvedSchema::try_from(schema)?;
    Ok(resolved.get_names().iter().map(|(n, s)| (n.clone(), (*s).clone())).collect())
}

/// Refuses a datum of `schema` that claims more items or bytes somewhere than it has left.
pub(super) fn check(schema: &Schema, names: &Names, datum: &[u8]) -> Result<(), apache_avro::Error> {
    match (Walk { bytes: datum, names }).value(schema, &None) {
        Err(Stop::Overclaim(why)) => Err(<apache_avro::Error as serde::de::Error>::custom(why)),
        Ok(()) | Err(Stop::Malformed) => Ok(()),
    }
}

enum Stop {
    /// A count or length beyond the bytes left.
    Overclaim(String),
    /// Not decodable for another reason, which apache-avro will name.
    Malformed,
}

struct Walk<'a> {
    bytes: &'a [u8],
    names: &'a Names,
}

impl Walk<'_> {
    fn skip(&mut self, n: usize) -> Result<(), Stop> {
        self.bytes = self.bytes.get(n..).ok_or(Stop::Malformed)?;
        Ok(())
    }

    /// A zig-zag varint `long`, as Avro encodes `int`, `long`, counts and lengths.
    fn long(&mut self) -> Result<i64, Stop> {
        let mut z: u64 = 0;
        for i in 0..MAX_VARINT_LEN {
            let (&b, rest) = self.bytes.split_first().ok_or(Stop::Malformed)?;
            self.bytes = rest;
            z |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(((z >> 1) as i64) ^ -((z & 1) as i64));
            }
        }
        Err(Stop::Malformed)
    }

    /// A count or length, which must fit in the bytes left (each unit takes at least one).
    fn bounded(&mut self, n: i64, what: &str) -> Result<usize, Stop> {
        let n = usize::try_from(n).map_err(|_| Stop::Malformed)?;
        if n > self.bytes.len() {
            return Err(Stop::Overclaim(format!("{what} of {n} where {} bytes are left", self.bytes.len())));
        }
        Ok(n)
    }

    fn value(&mut self, schema: &Schema, ns: &Namespace) -> Result<(), Stop> {
        match schema {
            Schema::Null => Ok(()),
            Schema::Boolean => self.skip(1),
            Schema::Int
            | Schema::Long
            | Schema::Enum(_)
            | Schema::Date
            | Schema::TimeMillis
            | Schema::TimeMicros
            | Schema::TimestampMillis
            | Schema::TimestampMicros
            | Schema::TimestampNanos
            | Schema::LocalTimestampMillis
            | Schema::LocalTimestampMicros
            | Schema::LocalTimestampNanos => self.long().map(drop),
            Schema::Float => self.skip(FLOAT_LEN),
            Schema::Double => self.skip(DOUBLE_LEN),
            Schema::Duration => self.skip(DURATION_LEN),
            Schema::Fixed(f) => self.skip(f.size),
            Schema::Bytes | Schema::String | Schema::Uuid | Schema::BigDecimal => {
                let len = self.long()?;
                let len = self.bounded(len, "a string or bytes value")?;
                self.skip(len)
            }
            Schema::Decimal(d) => self.value(&d.inner, ns),
            Schema::Array(a) => self.blocks(ns, |w, ns| w.value(&a.items, ns)),
            Schema::Map(m) => self.blocks(ns, |w, ns| {
                w.value(&Schema::String, ns)?;
                w.value(&m.types, ns)
            }),
            Schema::Union(u) => {
                let index = usize::try_from(self.long()?).map_err(|_| Stop::Malformed)?;
                let variant = u.variants().get(index).ok_or(Stop::Malformed)?;
                self.value(variant, ns)
            }
            Schema::Record(r) => {
                let inner = r.name.fully_qualified_name(ns).namespace;
                r.fields.iter().try_for_each(|f| self.value(&f.schema, &inner))
            }
            Schema::Ref { name } => {
                let full = name.fully_qualified_name(ns);
                let target = self.names.get(&full).ok_or(Stop::Malformed)?;
                self.value(target, &full.namespace)
            }
        }
    }

    /// The blocks of an array or map: a count (negative: followed by the block's byte size),
    /// that many items, until a zero count.
    fn blocks(&mut self, ns: &Namespace, mut item: impl FnMut(&mut Self, &Namespace) -> Result<(), Stop>) -> Result<(), Stop> {
        loop {
            let mut count = self.long()?;
            if count == 0 {
                return Ok(());
            }
            if count < 0 {
                self.long()?;
                count = count.checked_neg().ok_or(Stop::Malformed)?;
            }
            for _ in 0..self.bounded(count, "an array or map block")? {
                item(self, ns)?;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{RunFinished, RunStatus, Sample, SampleBatch};
    use crate::registry;

    const RUN_ID: &str = "0192f0c8-7a2b-7cde-8f00-0123456789ab";

    fn check_as(name: &str, datum: &[u8]) -> Result<(), String> {
        let schema = registry().schema(name).unwrap();
        check(schema, &names(schema).unwrap(), datum).map_err(|e| e.to_string())
    }

    /// The datum of an empty batch: run_id, seq, then the samples array's closing 0 count.
    fn empty_batch() -> Vec<u8> {
        let batch = SampleBatch { run_id: RUN_ID.into(), seq: 0, samples: vec![] };
        registry().encode_as("trackiq.SampleBatch", &batch).unwrap()[10..].to_vec()
    }

    #[test]
    fn records_trackiq_writes_pass() {
        let batch = SampleBatch {
            run_id: RUN_ID.into(),
            seq: 1,
            samples: vec![Sample { ts_us: 1, metric: "m".into(), value: 1.0, unit: "ms".into(), rank: Some(3), step: None }; 3],
        };
        assert_eq!(check_as("trackiq.SampleBatch", &registry().encode_as("trackiq.SampleBatch", &batch).unwrap()[10..]), Ok(()));
        let finished = RunFinished { run_id: RUN_ID.into(), status: RunStatus::Failed, ended_at: 5, sample_count: 1, error: Some("e".into()) };
        assert_eq!(check_as("trackiq.RunFinished", &registry().encode(&finished).unwrap()[10..]), Ok(()));
    }

    #[test]
    fn counts_and_lengths_beyond_the_bytes_left_are_refused() {
        let mut datum = empty_batch();
        assert_eq!(datum.pop(), Some(0));
        // 1_000_000 items (zig-zag 2_000_000 as a varint) and nothing after.
        datum.extend([0x80, 0x89, 0x7a]);
        let err = check_as("trackiq.SampleBatch", &datum).unwrap_err();
        assert!(err.contains("an array or map block of 1000000 where 0 bytes are left"), "{err}");
        // A run_id claiming 64 bytes where 3 follow.
        let err = check_as("trackiq.RunFinished", &[0x80, 0x01, b'a', b'b', b'c']).unwrap_err();
        assert!(err.contains("a string or bytes value of 64 where 3 bytes are left"), "{err}");
    }

    #[test]
    fn negative_block_counts_carry_a_size_and_other_faults_are_left_to_the_decoder() {
        let one = registry().encode_as("trackiq.SampleBatch", &SampleBatch {
            run_id: RUN_ID.into(),
            seq: 0,
            samples: vec![Sample { ts_us: 1, metric: "m".into(), value: 1.0, unit: "ms".into(), rank: None, step: None }],
        })
        .unwrap()[10..]
            .to_vec();
        // Same batch with its block written as count -1 (zig-zag 1) followed by a byte size.
        let prefix = empty_batch().len() - 1;
        let mut negative = one[..prefix].to_vec();
        negative.extend([0x01, 0x02]);
        negative.extend(&one[prefix + 1..]);
        assert_eq!(check_as("trackiq.SampleBatch", &negative), Ok(()));
        // A union index out of range and a datum cut short between values are apache-avro's
        // to report (one cut inside a string is an overclaim of its length).
        let mut bad_union = one.clone();
        let rank_index = bad_union.len() - 3;
        bad_union[rank_index] = 0x08;
        assert_eq!(check_as("trackiq.SampleBatch", &bad_union), Ok(()));
        assert_eq!(check_as("trackiq.SampleBatch", &one[..one.len() - 3]), Ok(()));
        assert!(check_as("trackiq.SampleBatch", &one[..one.len() - 4]).is_err());
    }
}
