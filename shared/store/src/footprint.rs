//! What a call read, and what writes touched, by tree and key: so that a copy of a read's
//! answer (the front door's read cache) is dropped only by a write to something it read.
//!
//! [`Tree`](crate::Tree) notes every read into the footprint of the call being served
//! ([`recording_reads`]), and every write into the database's [`Changes`](crate::Changes) log.
//! A lookup of a missing key is a read of that key (a later write of it changes the answer);
//! a listing reads the whole tree.

use std::{
    cell::RefCell,
    collections::BTreeSet,
    sync::{Arc, Mutex},
};

use serde::{Deserialize, Serialize};

/// Keys and whole trees read, or written. `everything` stands for what cannot be told apart
/// (a change outside the database, a footprint too large to carry, or one not recorded).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Footprint {
    /// `(tree, key)` pairs.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub keys: BTreeSet<(String, String)>,
    /// Trees as a whole.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub trees: BTreeSet<String>,
    /// Anything at all.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub everything: bool,
}

impl Footprint {
    /// The footprint that overlaps every other.
    pub fn everything() -> Self {
        Self {
            everything: true,
            ..Self::default()
        }
    }

    /// True when `self` and `other` share a key, or one of them covers the other's tree.
    pub fn overlaps(&self, other: &Footprint) -> bool {
        if self.everything || other.everything {
            return true;
        }
        let covers = |trees: &BTreeSet<String>, keys: &BTreeSet<(String, String)>| {
            keys.iter().any(|(tree, _)| trees.contains(tree))
        };
        !self.trees.is_disjoint(&other.trees)
            || !self.keys.is_disjoint(&other.keys)
            || covers(&self.trees, &other.keys)
            || covers(&other.trees, &self.keys)
    }

    /// Adds what `other` holds.
    pub fn extend(&mut self, other: &Footprint) {
        self.everything |= other.everything;
        self.trees.extend(other.trees.iter().cloned());
        self.keys.extend(other.keys.iter().cloned());
    }

    fn note(&mut self, tree: &str, key: Option<&str>) {
        match key {
            Some(key) => {
                self.keys.insert((tree.to_string(), key.to_string()));
            }
            None => {
                self.trees.insert(tree.to_string());
            }
        }
    }
}

/// The footprint being recorded, shared by the call's task and the blocking work it hands
/// off ([`ReadRecorder::enter`]).
#[derive(Clone, Debug, Default)]
pub struct ReadRecorder(Arc<Mutex<Footprint>>);

tokio::task_local! {
    static TASK_READS: ReadRecorder;
}

thread_local! {
    static THREAD_READS: RefCell<Option<ReadRecorder>> = const { RefCell::new(None) };
}

impl ReadRecorder {
    /// The recorder of the call being served on this task or thread, if any.
    pub fn current() -> Option<Self> {
        TASK_READS
            .try_with(Clone::clone)
            .ok()
            .or_else(|| THREAD_READS.with(|reads| reads.borrow().clone()))
    }

    /// Runs `work` (on whatever thread) with its reads recorded here.
    pub fn enter<T>(&self, work: impl FnOnce() -> T) -> T {
        let previous = THREAD_READS.with(|reads| reads.replace(Some(self.clone())));
        let result = work();
        THREAD_READS.with(|reads| *reads.borrow_mut() = previous);
        result
    }

    /// `call`, with the reads it makes on its task recorded here.
    pub fn scope<F: Future>(&self, call: F) -> impl Future<Output = F::Output> + use<F> {
        TASK_READS.scope(self.clone(), call)
    }

    /// What was read so far.
    pub fn footprint(&self) -> Footprint {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Notes a read of `key` of `tree` (`None`: the whole tree) for the call being served.
pub(crate) fn note_read(tree: &str, key: Option<&str>) {
    if let Some(recorder) = ReadRecorder::current() {
        recorder
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .note(tree, key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(pairs: &[(&str, &str)]) -> Footprint {
        let mut footprint = Footprint::default();
        for (tree, key) in pairs {
            footprint.note(tree, Some(key));
        }
        footprint
    }

    fn tree(name: &str) -> Footprint {
        let mut footprint = Footprint::default();
        footprint.note(name, None);
        footprint
    }

    #[test]
    fn footprints_overlap_on_a_shared_key_or_a_covered_tree() {
        let read = keys(&[("images", "a"), ("names", "x")]);
        assert!(read.overlaps(&keys(&[("names", "x")])));
        assert!(!read.overlaps(&keys(&[("names", "y"), ("images", "b")])));
        assert!(tree("images").overlaps(&keys(&[("images", "b")])));
        assert!(keys(&[("images", "b")]).overlaps(&tree("images")));
        assert!(!tree("images").overlaps(&keys(&[("names", "b")])));
        assert!(Footprint::everything().overlaps(&Footprint::default()));
        assert!(!Footprint::default().overlaps(&Footprint::default()));
    }

    #[tokio::test]
    async fn reads_on_the_task_and_in_work_handed_off_are_recorded() {
        let recorder = ReadRecorder::default();
        recorder
            .scope(async {
                note_read("pods", Some("p1"));
                let recorder = ReadRecorder::current().unwrap();
                std::thread::spawn(move || recorder.enter(|| note_read("containers", None)))
                    .join()
                    .unwrap();
            })
            .await;
        let footprint = recorder.footprint();
        let mut expected = keys(&[("pods", "p1")]);
        expected.extend(&tree("containers"));
        assert_eq!(footprint, expected);
        note_read("outside", None);
        assert!(ReadRecorder::current().is_none());
    }

    #[test]
    fn a_footprint_round_trips_through_json() {
        let mut footprint = keys(&[("names", "docker.io/library/busybox:latest")]);
        footprint.extend(&tree("images"));
        let text = serde_json::to_string(&footprint).unwrap();
        assert_eq!(serde_json::from_str::<Footprint>(&text).unwrap(), footprint);
        assert_eq!(serde_json::to_string(&Footprint::default()).unwrap(), "{}");
    }
}
