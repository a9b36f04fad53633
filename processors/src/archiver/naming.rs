//! Object names of the archive: `<topic>-<partition>-<first>-<last>-i<incarnation>.parquet`,
//! zero-padded so that names sort by offset. Names written before incarnations existed have
//! no `-i…` part; they belong to [`LEGACY_INCARNATION`].

/// Cluster id of every embedded broker before incarnations were named: objects without an
/// incarnation in their name were written over a log with this id.
pub const LEGACY_INCARNATION: &str = "trackiq";

/// A parsed object name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectName {
    pub topic: String,
    pub partition: i32,
    pub first: i64,
    pub last: i64,
    /// Short form of the log incarnation; `None` for legacy names.
    pub incarnation: Option<String>,
}

impl ObjectName {
    /// The short incarnation this object belongs to.
    pub fn incarnation(&self) -> String {
        self.incarnation.clone().unwrap_or_else(|| short_incarnation(LEGACY_INCARNATION))
    }
}

/// A fixed-length, file-name-safe form of a cluster id (hex of its SHA-256, 16 digits).
pub fn short_incarnation(cluster_id: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(cluster_id.as_bytes());
    digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// The name of an object holding offsets `first..=last` of a partition, in incarnation
/// `incarnation` (already short, see [`short_incarnation`]).
pub fn object_name(topic: &str, partition: i32, first: i64, last: i64, incarnation: &str) -> String {
    format!("{topic}-{partition:04}-{first:020}-{last:020}-i{incarnation}.parquet")
}

/// Parses a name written by [`object_name`] or by the legacy scheme.
pub fn parse_object_name(name: &str) -> Option<ObjectName> {
    let stem = name.strip_suffix(".parquet")?;
    let (stem, incarnation) = match stem.rsplit_once('-') {
        Some((rest, inc)) if inc.starts_with('i') && inc.len() > 1 && inc[1..].chars().all(|c| c.is_ascii_hexdigit()) => {
            (rest, Some(inc[1..].to_string()))
        }
        _ => (stem, None),
    };
    let mut parts = stem.rsplitn(4, '-');
    let last = parts.next()?.parse().ok()?;
    let first = parts.next()?.parse().ok()?;
    let partition = parts.next()?.parse().ok()?;
    let topic = parts.next()?.to_string();
    Some(ObjectName { topic, partition, first, last, incarnation })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_sort_by_offset() {
        let inc = short_incarnation("cluster-a");
        let n = object_name("trackiq.samples", 3, 100, 199, &inc);
        assert_eq!(n, format!("trackiq.samples-0003-00000000000000000100-00000000000000000199-i{inc}.parquet"));
        let parsed = parse_object_name(&n).unwrap();
        assert_eq!((parsed.topic.as_str(), parsed.partition, parsed.first, parsed.last), ("trackiq.samples", 3, 100, 199));
        assert_eq!(parsed.incarnation(), inc);
        assert!(object_name("t", 0, 9, 9, &inc) < object_name("t", 0, 10, 10, &inc));
        assert_eq!(parse_object_name("notes.txt"), None);
    }

    #[test]
    fn legacy_names_belong_to_the_legacy_incarnation() {
        let parsed = parse_object_name("trackiq.samples-0003-00000000000000000100-00000000000000000199.parquet").unwrap();
        assert_eq!((parsed.topic.as_str(), parsed.partition, parsed.first, parsed.last), ("trackiq.samples", 3, 100, 199));
        assert_eq!(parsed.incarnation(), short_incarnation(LEGACY_INCARNATION));
        assert_ne!(short_incarnation("a-new-cluster"), short_incarnation(LEGACY_INCARNATION));
    }

    #[test]
    fn topics_with_dashes_parse() {
        let n = object_name("my-team.runs", 0, 1, 2, &short_incarnation("x"));
        assert_eq!(parse_object_name(&n).unwrap().topic, "my-team.runs");
    }
}
