//! `--reload`, for development: the master watches the program's file (and every
//! `--reload-extra-file`) and, when one changes, reloads as on `HUP` — a new generation of workers,
//! executed from the file as it is now, then the old ones retired gracefully.
//!
//! The files are polled: one `stat` each per [`POLL`], so a watched tree costs nothing between polls
//! and needs no platform notification API. A change counts once the file has stayed the same for
//! one more poll, so that a binary still being written (a linker, a copy) is not started half-done.
//! A file that disappears (replaced by a rename) is a change too, counted when it is back.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

/// How often the files are looked at.
pub(crate) const POLL: Duration = Duration::from_secs(1);

/// What identifies one version of a file: its inode (a rename or a hard link replaces it), its
/// length and its modification time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    inode: u64,
    len: u64,
    modified: Option<SystemTime>,
}

impl Stamp {
    fn of(path: &Path) -> Option<Stamp> {
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::metadata(path).ok()?;
        Some(Stamp {
            inode: meta.ino(),
            len: meta.len(),
            modified: meta.modified().ok(),
        })
    }
}

#[derive(Debug)]
struct Watched {
    path: PathBuf,
    stamp: Option<Stamp>,
    /// Changed, waiting to stay the same for one poll.
    settling: bool,
}

/// The watched files and when they were last looked at.
#[derive(Debug)]
pub(crate) struct Watcher {
    files: Vec<Watched>,
    next: Instant,
}

impl Watcher {
    /// Watch `paths` from now on.
    pub(crate) fn new(paths: impl IntoIterator<Item = PathBuf>, now: Instant) -> Watcher {
        let files = paths
            .into_iter()
            .map(|path| Watched {
                stamp: Stamp::of(&path),
                path,
                settling: false,
            })
            .collect();
        Watcher {
            files,
            next: now + POLL,
        }
    }

    /// The paths watched.
    pub(crate) fn paths(&self) -> impl Iterator<Item = &Path> {
        self.files.iter().map(|f| f.path.as_path())
    }

    /// Look at the files if a poll is due; the files whose change has settled since the last look.
    pub(crate) fn poll(&mut self, now: Instant) -> Vec<PathBuf> {
        if now < self.next {
            return Vec::new();
        }
        self.next = now + POLL;
        let mut changed = Vec::new();
        for file in &mut self.files {
            let stamp = Stamp::of(&file.path);
            if stamp != file.stamp {
                file.stamp = stamp;
                file.settling = true;
            } else if file.settling && stamp.is_some() {
                file.settling = false;
                changed.push(file.path.clone());
            }
        }
        changed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_counts_once_it_has_settled_and_only_once() {
        let dir = std::env::temp_dir().join(format!("rgi-reload-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("app");
        std::fs::write(&file, "one").unwrap();
        let t0 = Instant::now();
        let at = |n: u32| t0 + POLL * n;
        let mut w = Watcher::new([file.clone()], t0);
        assert!(w.poll(at(1)).is_empty(), "unchanged");
        // Replaced by a rename, as cargo and install(1) do.
        let new = dir.join("app.new");
        std::fs::write(&new, "two, longer").unwrap();
        std::fs::rename(&new, &file).unwrap();
        assert!(w.poll(at(1)).is_empty(), "not due yet");
        assert!(w.poll(at(2)).is_empty(), "changed, settling");
        assert_eq!(w.poll(at(3)), vec![file.clone()], "settled");
        assert!(w.poll(at(4)).is_empty(), "reported once");
        // Gone for a while (between unlink and link), then back: one change.
        std::fs::remove_file(&file).unwrap();
        assert!(w.poll(at(5)).is_empty());
        assert!(w.poll(at(6)).is_empty(), "still gone");
        std::fs::write(&file, "three").unwrap();
        assert!(w.poll(at(7)).is_empty(), "back, settling");
        assert_eq!(w.poll(at(8)), vec![file.clone()]);
        assert_eq!(w.paths().count(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
