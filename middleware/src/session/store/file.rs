//! [`FileStore`]: one JSON file per session in a directory.

use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use fs4::fs_std::FileExt;
use rgi::BoxFuture;
use serde::{Deserialize, Serialize};

use super::{invalid_id, unix_now, valid_id, Changes, SessionData, SessionStore, StoreError};

/// Sessions as files in one directory, one JSON file per session, shared by every process of one
/// machine.
///
/// - A save holds an exclusive advisory lock on `<dir>/.lock` (flock, released when the file handle
///   drops, so a crashed worker cannot leave it held) while it reads, merges and rewrites the record:
///   the read-merge-write of two workers never interleaves.
/// - Records are written to a temporary file in the same directory and renamed over the old one, so
///   a reader sees the old or the new record, never half of one. (No fsync: a power cut may lose the
///   last writes of a session, never corrupt another.)
/// - Each record holds its expiry; an expired one reads as absent, and [`FileStore::sweep`] (also run
///   every [`FileStore::sweep_every`] saves) deletes them.
/// - File I/O runs on tokio's blocking pool when a tokio runtime is present.
#[derive(Clone)]
pub struct FileStore {
    inner: Arc<Inner>,
}

struct Inner {
    dir: PathBuf,
    sweep_every: u64,
    saves: AtomicU64,
}

#[derive(Serialize, Deserialize)]
struct Record {
    /// Expiry, seconds since the Unix epoch.
    exp: u64,
    data: SessionData,
}

impl FileStore {
    /// Keep sessions in `dir`, creating it (mode 0700 on Unix: the records are secrets) when missing.
    ///
    /// # Errors
    ///
    /// When the directory cannot be created.
    pub fn new(dir: impl Into<PathBuf>) -> io::Result<FileStore> {
        let dir = dir.into();
        let mut builder = fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(&dir)?;
        Ok(FileStore {
            inner: Arc::new(Inner {
                dir,
                sweep_every: 1024,
                saves: AtomicU64::new(0),
            }),
        })
    }

    /// Sweep expired records on every `n`-th save of this process (default 1024; 0 never).
    pub fn sweep_every(mut self, n: u64) -> FileStore {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.sweep_every = n;
        }
        self
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// Delete every expired record (and temporary files left by a crash); returns how many records.
    ///
    /// # Errors
    ///
    /// When the directory cannot be listed.
    pub fn sweep(&self) -> io::Result<usize> {
        let now = unix_now();
        let mut removed = 0;
        for entry in fs::read_dir(&self.inner.dir)? {
            let path = entry?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if name.ends_with(".tmp") {
                // A temp file older than a minute belongs to a writer that died mid-save.
                let stale = fs::metadata(&path)
                    .and_then(|m| m.modified())
                    .is_ok_and(|t| t.elapsed().unwrap_or_default() > Duration::from_secs(60));
                if stale {
                    let _ = fs::remove_file(&path);
                }
            } else if name.ends_with(".json") {
                let expired = read_record(&path).map_or(true, |r| r.is_none_or(|r| r.exp <= now));
                if expired && fs::remove_file(&path).is_ok() {
                    removed += 1;
                }
            }
        }
        Ok(removed)
    }

    fn path(&self, id: &str) -> Result<PathBuf, StoreError> {
        if !valid_id(id) {
            return Err(invalid_id());
        }
        Ok(self.inner.dir.join(format!("{id}.json")))
    }

    fn load_blocking(&self, id: &str) -> Result<Option<SessionData>, StoreError> {
        let record = read_record(&self.path(id)?).map_err(StoreError::new)?;
        Ok(record.filter(|r| r.exp > unix_now()).map(|r| r.data))
    }

    fn save_blocking(&self, id: &str, changes: &Changes, ttl: Duration) -> Result<(), StoreError> {
        let path = self.path(id)?;
        let lock = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.inner.dir.join(".lock"))
            .map_err(StoreError::new)?;
        FileExt::lock_exclusive(&lock).map_err(StoreError::new)?;
        let now = unix_now();
        let mut data = read_record(&path)
            .map_err(StoreError::new)?
            .filter(|r| r.exp > now)
            .map(|r| r.data)
            .unwrap_or_default();
        changes.apply_to(&mut data);
        let record = Record {
            exp: now + ttl.as_secs().max(1),
            data,
        };
        write_atomically(&self.inner.dir, &path, &record).map_err(StoreError::new)?;
        drop(lock);
        let saves = self.inner.saves.fetch_add(1, Ordering::Relaxed) + 1;
        if self.inner.sweep_every > 0 && saves % self.inner.sweep_every == 0 {
            let _ = self.sweep();
        }
        Ok(())
    }

    fn destroy_blocking(&self, id: &str) -> Result<(), StoreError> {
        match fs::remove_file(self.path(id)?) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(StoreError::new(e)),
            _ => Ok(()),
        }
    }

    /// Run `job` on tokio's blocking pool when there is a runtime, else here.
    async fn blocking<T: Send + 'static>(
        &self,
        job: impl FnOnce(FileStore) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let store = self.clone();
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => handle
                .spawn_blocking(move || job(store))
                .await
                .map_err(StoreError::new)?,
            Err(_) => job(store),
        }
    }
}

/// The record at `path`; `None` when there is none or it is unreadable garbage (a corrupt record is
/// an empty session, not an outage).
fn read_record(path: &Path) -> io::Result<Option<Record>> {
    match fs::read(path) {
        Ok(bytes) => Ok(serde_json::from_slice(&bytes).ok()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

fn write_atomically(dir: &Path, path: &Path, record: &Record) -> io::Result<()> {
    let mut suffix = [0u8; 8];
    getrandom::fill(&mut suffix).map_err(io::Error::other)?;
    let temp = dir.join(format!(
        ".{}.{}.tmp",
        std::process::id(),
        hex::encode(suffix)
    ));
    let result = (|| {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)?;
        file.write_all(&serde_json::to_vec(record).map_err(io::Error::other)?)?;
        fs::rename(&temp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result
}

impl fmt::Debug for FileStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileStore")
            .field("dir", &self.inner.dir)
            .finish()
    }
}

impl SessionStore for FileStore {
    fn load<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<SessionData>, StoreError>> {
        let id = id.to_owned();
        Box::pin(self.blocking(move |store| store.load_blocking(&id)))
    }

    fn save<'a>(
        &'a self,
        id: &'a str,
        changes: &'a Changes,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        let (id, changes) = (id.to_owned(), changes.clone());
        Box::pin(self.blocking(move |store| store.save_blocking(&id, &changes, ttl)))
    }

    fn destroy<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        let id = id.to_owned();
        Box::pin(self.blocking(move |store| store.destroy_blocking(&id)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::store::conformance::{changes, run};

    fn temp_dir(label: &str) -> PathBuf {
        std::env::temp_dir().join(format!("rgi-filestore-{label}-{}", std::process::id()))
    }

    #[tokio::test]
    async fn the_file_store_conforms() {
        let dir = temp_dir("conform");
        run(&FileStore::new(&dir).unwrap()).await;
        fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn concurrent_saves_from_many_stores_on_one_directory_lose_no_key() {
        let dir = temp_dir("race");
        let id = "CCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCC";
        let tasks: Vec<_> = (0..16)
            .map(|i| {
                // Separate FileStore values stand in for separate worker processes: only the lock
                // file is shared.
                let store = FileStore::new(&dir).unwrap();
                tokio::spawn(async move {
                    let key = format!("k{i}");
                    let c = changes(&[(&key, i.into())], &[]);
                    store.save(id, &c, Duration::from_secs(60)).await.unwrap();
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        let data = FileStore::new(&dir)
            .unwrap()
            .load(id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(data.len(), 16);
        fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn sweep_deletes_expired_records_and_corrupt_ones_read_as_absent() {
        let dir = temp_dir("sweep");
        let store = FileStore::new(&dir).unwrap();
        let live = "DDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDD";
        store
            .save(
                live,
                &changes(&[("a", 1.into())], &[]),
                Duration::from_secs(60),
            )
            .await
            .unwrap();
        fs::write(
            dir.join("EEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEE.json"),
            r#"{"exp":1,"data":{}}"#,
        )
        .unwrap();
        fs::write(
            dir.join("FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF.json"),
            "garbage",
        )
        .unwrap();
        assert_eq!(
            store
                .load("FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF")
                .await
                .unwrap(),
            None
        );
        assert_eq!(store.sweep().unwrap(), 2);
        assert!(store.load(live).await.unwrap().is_some());
        fs::remove_dir_all(dir).unwrap();
    }
}
