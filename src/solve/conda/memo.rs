//! Answers of earlier solves, kept on disk so a later run asked exactly the
//! same question over exactly the same records does not solve again.
//!
//! A `drift` run re-solves every conda step of every image; over a big
//! channel that solve is nearly all of its time (about 9 s of 10 for 206 MB
//! of repodata), and a scheduled drift asks the same question again and
//! again while the channel has not changed.
//!
//! Safety: an entry can never change an answer.
//! - The key is the SHA-256 of everything the solver is given: the specs,
//!   pins, preferred and installed records, virtual packages, channel
//!   priority, the exclude-newer cut-off, the records of every channel
//!   part (parts in priority order; within a part the sorted digests of
//!   the records as serialized, since the gateway hands them over in no
//!   fixed order), and the solver crates (`Cargo.lock`).
//!   Another channel state, another request or another solver is another
//!   key.
//! - An entry names the records of the answer by URL and by the SHA-256 of
//!   the record as serialized; each must be one of the records of this
//!   solve (a channel record or an installed one), else the entry is not
//!   used.
//! - An entry carries a checksum of its content; one that does not match
//!   (damaged, edited) is dropped, named, and the step is solved again.
//!
//! Only answers are kept, never failures (an unsatisfiable request is
//! solved again, so its explanation is always the solver's own).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rattler_conda_types::RepoDataRecord;
use sha2::{Digest, Sha256};

/// The directory under the cache directory.
pub const DIR: &str = "conda-solves-v1";

/// Kept answers under one directory, and what was dropped from it in this
/// run (for `-v`).
#[derive(Debug)]
pub struct SolveMemo {
    dir: PathBuf,
    dropped: Mutex<Vec<String>>,
    hits: std::sync::atomic::AtomicUsize,
}

/// One kept answer as stored.
#[derive(serde::Serialize, serde::Deserialize)]
struct Entry {
    /// The key (hex), also the file name.
    key: String,
    /// Each record of the answer: its URL and the SHA-256 (hex) of the
    /// record as serialized.
    records: Vec<(String, String)>,
    /// SHA-256 (hex) of `key` and `records` as serialized.
    checksum: String,
}

/// The checksum an entry for `key` naming `records` carries.
pub fn checksum_of(key: &str, records: &[(String, String)]) -> String {
    Entry::computed_checksum(key, records)
}

impl Entry {
    fn computed_checksum(key: &str, records: &[(String, String)]) -> String {
        let mut h = Sha256::new();
        h.update(key.as_bytes());
        h.update(b"\n");
        // A list of string pairs always serializes.
        h.update(serde_json::to_vec(records).unwrap_or_default());
        hex::encode(h.finalize())
    }
}

/// What a look-up found.
pub enum Lookup {
    Hit(Vec<RepoDataRecord>),
    Miss,
}

impl SolveMemo {
    /// Answers kept under `cache_dir/conda-solves-v1`.
    pub fn new(cache_dir: &Path) -> Self {
        Self {
            dir: cache_dir.join(DIR),
            dropped: Mutex::default(),
            hits: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    /// Entries dropped in this run, each with why.
    pub fn dropped(&self) -> Vec<String> {
        self.dropped
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// How many solves this run answered from kept answers.
    pub fn hits(&self) -> usize {
        self.hits.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn path(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.json"))
    }

    fn drop_entry(&self, path: &Path, why: &str) {
        let _ = fs_err::remove_file(path);
        self.dropped
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(format!(
                "the kept conda solve {} {why}; dropped and solved again",
                path.display()
            ));
    }

    /// The answer kept for `key`, as records of `candidates` (the records
    /// this solve could choose). An entry that is damaged or names a record
    /// the candidates do not have is dropped.
    pub fn lookup<'a>(
        &self,
        key: &str,
        candidates: impl Iterator<Item = &'a RepoDataRecord>,
    ) -> Lookup {
        let path = self.path(key);
        let Ok(text) = fs_err::read(&path) else {
            return Lookup::Miss;
        };
        let entry: Entry = match serde_json::from_slice(&text) {
            Ok(e) => e,
            Err(e) => {
                self.drop_entry(&path, &format!("does not read ({e})"));
                return Lookup::Miss;
            }
        };
        if entry.key != key || Entry::computed_checksum(key, &entry.records) != entry.checksum {
            self.drop_entry(&path, "does not match its checksum");
            return Lookup::Miss;
        }
        let mut by_url: std::collections::HashMap<&str, Vec<&RepoDataRecord>> =
            std::collections::HashMap::new();
        for r in candidates {
            by_url.entry(r.url.as_str()).or_default().push(r);
        }
        let mut out = Vec::with_capacity(entry.records.len());
        for (url, digest) in &entry.records {
            let found = by_url
                .get(url.as_str())
                .into_iter()
                .flatten()
                .find(|r| record_digest(r).as_deref() == Some(digest.as_str()));
            match found {
                Some(r) => out.push((*r).clone()),
                None => {
                    self.drop_entry(&path, &format!("names `{url}`, not a record of this solve"));
                    return Lookup::Miss;
                }
            }
        }
        self.hits.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Lookup::Hit(out)
    }

    /// Keeps `records` as the answer for `key`. Failing to write only costs
    /// a later solve.
    pub fn keep(&self, key: &str, records: &[RepoDataRecord]) {
        let Some(records) = records
            .iter()
            .map(|r| Some((r.url.to_string(), record_digest(r)?)))
            .collect::<Option<Vec<_>>>()
        else {
            return;
        };
        let entry = Entry {
            key: key.to_string(),
            checksum: Entry::computed_checksum(key, &records),
            records,
        };
        let Ok(bytes) = serde_json::to_vec(&entry) else {
            return;
        };
        if fs_err::create_dir_all(&self.dir).is_err() {
            return;
        }
        let Ok(mut tmp) = tempfile::NamedTempFile::new_in(&self.dir) else {
            return;
        };
        if tmp.write_all(&bytes).is_ok() {
            let _ = tmp.persist(self.path(key));
        }
    }
}

/// SHA-256 (hex) of a record as serialized.
pub fn record_digest(r: &RepoDataRecord) -> Option<String> {
    let mut w = HashWriter(Sha256::new());
    serde_json::to_writer(&mut w, r).ok()?;
    Some(hex::encode(w.0.finalize()))
}

/// Feeds what is written to a SHA-256.
struct HashWriter(Sha256);

impl Write for HashWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Builds the key of one solve: every input is written in, each behind a
/// label, so two different inputs cannot write the same stream.
pub struct KeyBuilder(HashWriter);

impl KeyBuilder {
    pub fn new() -> Self {
        let mut k = KeyBuilder(HashWriter(Sha256::new()));
        k.text("format", "imagelock conda solve 1");
        // The solver crates and their versions: another solver may answer
        // otherwise.
        k.text("crates", include_str!("../../../Cargo.lock"));
        k
    }

    /// A labelled text (length-prefixed).
    pub fn text(&mut self, label: &str, text: &str) {
        let h = &mut (self.0).0;
        h.update(label.as_bytes());
        h.update((text.len() as u64).to_le_bytes());
        h.update(text.as_bytes());
    }

    /// A labelled record, as serialized.
    pub fn record(&mut self, label: &str, r: &RepoDataRecord) -> Result<(), serde_json::Error> {
        (self.0).0.update(label.as_bytes());
        serde_json::to_writer(&mut self.0, r)?;
        (self.0).0.update(b"\n");
        Ok(())
    }

    pub fn finish(self) -> String {
        hex::encode((self.0).0.finalize())
    }
}

impl Default for KeyBuilder {
    fn default() -> Self {
        Self::new()
    }
}
