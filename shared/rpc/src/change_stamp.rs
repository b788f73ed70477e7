//! The count of a daemon's writes, stamped on every answer it gives, with what the call read
//! and what the writes during it touched, so that a caller keeping answers (the front door's
//! read cache) knows which writes each one saw and which later writes make it old.

use std::time::{SystemTime, UNIX_EPOCH};

use crimson_store::{Changes, Footprint};

/// The response header that carries a [`ChangeStamp`]: `<run> <before> <after>`.
pub const CHANGE_STAMP_HEADER: &str = "crimson-changes";
/// The response header that carries what the call read: a JSON [`Footprint`].
pub const READS_HEADER: &str = "crimson-reads";
/// The response header that carries what the writes counted in its stamp (after `before`,
/// up to `after`) touched: a JSON [`Footprint`]; absent when nothing was written.
pub const WRITES_HEADER: &str = "crimson-writes";

/// Largest footprint carried in a header; a larger one is sent as everything (absent).
const MAX_FOOTPRINT_HEADER: usize = 4096;

/// A daemon's write count as one of its calls saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChangeStamp {
    /// Which run of the daemon answered: its count starts over at every start.
    pub run: u64,
    /// The count when the call arrived: an answer read then reflects at least these writes.
    pub before: u64,
    /// The count when it answered: a write it made is among these.
    pub after: u64,
}

impl ChangeStamp {
    /// The stamp a daemon put on an answer, if any.
    pub fn from_metadata(metadata: &tonic::metadata::MetadataMap) -> Option<Self> {
        let value = metadata.get(CHANGE_STAMP_HEADER)?.to_str().ok()?;
        let mut numbers = value.split(' ').map(|n| n.parse::<u64>().ok());
        let stamp = Self {
            run: numbers.next()??,
            before: numbers.next()??,
            after: numbers.next()??,
        };
        numbers.next().is_none().then_some(stamp)
    }

    pub(crate) fn header_value(&self) -> Option<http::HeaderValue> {
        http::HeaderValue::try_from(format!("{} {} {}", self.run, self.before, self.after)).ok()
    }
}

/// What an answer of a daemon says of its database: its stamp, what the call read and what
/// the writes its stamp counts touched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChangeReport {
    /// The write counts.
    pub stamp: ChangeStamp,
    /// What the call read (everything, when the daemon did not say).
    pub reads: Footprint,
    /// What the writes after `stamp.before` up to `stamp.after` touched.
    pub writes: Footprint,
}

impl ChangeReport {
    /// The report on an answer, if it carries a stamp.
    pub fn from_metadata(metadata: &tonic::metadata::MetadataMap) -> Option<Self> {
        let stamp = ChangeStamp::from_metadata(metadata)?;
        let writes = if stamp.after > stamp.before {
            footprint_from_metadata(metadata, WRITES_HEADER)
        } else {
            Footprint::default()
        };
        Some(Self {
            stamp,
            reads: footprint_from_metadata(metadata, READS_HEADER),
            writes,
        })
    }
}

/// The footprint in header `name` of an answer; everything when it is absent or unreadable
/// (an answer from a daemon that did not record it, or one too large to carry).
pub fn footprint_from_metadata(metadata: &tonic::metadata::MetadataMap, name: &str) -> Footprint {
    metadata
        .get(name)
        .and_then(|value| value.to_str().ok())
        .and_then(|text| serde_json::from_str(text).ok())
        .unwrap_or_else(Footprint::everything)
}

/// `footprint` as a header value; none when it is everything or too large (which the reader
/// takes as everything).
pub(crate) fn footprint_header(footprint: &Footprint) -> Option<http::HeaderValue> {
    if footprint.everything {
        return None;
    }
    let text = serde_json::to_string(footprint).ok()?;
    (text.len() <= MAX_FOOTPRINT_HEADER)
        .then(|| http::HeaderValue::try_from(text).ok())
        .flatten()
}

/// The writes of the daemon being served, with the number of this run of it.
#[derive(Clone, Debug)]
pub(crate) struct DaemonChanges {
    pub(crate) run: u64,
    pub(crate) changes: Changes,
}

impl DaemonChanges {
    /// Follows `changes` for this run of the process, numbered by its start time and pid.
    pub(crate) fn new(changes: Changes) -> Self {
        let started = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos() as u64;
        Self {
            run: started ^ (u64::from(std::process::id()) << 40),
            changes,
        }
    }

    pub(crate) fn current(&self) -> u64 {
        self.changes.count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stamp_reads_back_from_its_header() {
        let stamp = ChangeStamp {
            run: 7,
            before: 3,
            after: 5,
        };
        let mut headers = http::HeaderMap::new();
        headers.insert(CHANGE_STAMP_HEADER, stamp.header_value().unwrap());
        let metadata = tonic::metadata::MetadataMap::from_headers(headers);
        assert_eq!(ChangeStamp::from_metadata(&metadata), Some(stamp));
    }

    #[test]
    fn a_footprint_reads_back_from_its_header_and_a_missing_one_is_everything() {
        let mut read = Footprint::default();
        read.keys
            .insert(("names".into(), "registry:5000/a b".into()));
        let mut metadata = tonic::metadata::MetadataMap::new();
        let value = footprint_header(&read)
            .unwrap()
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        metadata.insert(READS_HEADER, value);
        assert_eq!(footprint_from_metadata(&metadata, READS_HEADER), read);
        assert!(footprint_from_metadata(&metadata, WRITES_HEADER).everything);
        assert!(footprint_header(&Footprint::everything()).is_none());
        let mut huge = Footprint::default();
        huge.trees.insert("t".repeat(MAX_FOOTPRINT_HEADER));
        assert!(footprint_header(&huge).is_none());
    }

    #[test]
    fn malformed_stamps_are_none() {
        for value in ["", "1 2", "1 2 3 4", "a b c", "1  2 3"] {
            let mut metadata = tonic::metadata::MetadataMap::new();
            metadata.insert(CHANGE_STAMP_HEADER, value.parse().unwrap());
            assert_eq!(ChangeStamp::from_metadata(&metadata), None, "{value:?}");
        }
    }
}
