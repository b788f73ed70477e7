//! The count of a daemon's writes, stamped on every answer it gives, so that a caller keeping
//! answers (the front door's read cache) knows which writes each one saw.

use std::time::{SystemTime, UNIX_EPOCH};

use tokio::sync::watch;

/// The response header that carries a [`ChangeStamp`]: `<run> <before> <after>`.
pub const CHANGE_STAMP_HEADER: &str = "crimson-changes";

/// A receiver of the count of a daemon's writes (`crimson_store::Changes`).
pub type ChangeCount = watch::Receiver<u64>;

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

/// The write count of the daemon being served, with the number of this run of it.
#[derive(Clone, Debug)]
pub(crate) struct DaemonChanges {
    pub(crate) run: u64,
    pub(crate) count: ChangeCount,
}

impl DaemonChanges {
    /// Follows `count` for this run of the process, numbered by its start time and pid.
    pub(crate) fn new(count: ChangeCount) -> Self {
        let started = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos() as u64;
        Self {
            run: started ^ (u64::from(std::process::id()) << 40),
            count,
        }
    }

    pub(crate) fn current(&self) -> u64 {
        *self.count.borrow()
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
    fn malformed_stamps_are_none() {
        for value in ["", "1 2", "1 2 3 4", "a b c", "1  2 3"] {
            let mut metadata = tonic::metadata::MetadataMap::new();
            metadata.insert(CHANGE_STAMP_HEADER, value.parse().unwrap());
            assert_eq!(ChangeStamp::from_metadata(&metadata), None, "{value:?}");
        }
    }
}
