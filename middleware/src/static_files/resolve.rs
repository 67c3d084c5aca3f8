//! The file-system side of [`Static`](super::Static): blocking calls, run on the environ's executor.

use std::ffi::OsString;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::path::Segments;
use crate::compression::Encoding;

/// An open regular file inside the root.
#[derive(Debug)]
pub(crate) struct Found {
    pub(crate) file: File,
    pub(crate) len: u64,
    pub(crate) modified: Option<SystemTime>,
    /// The path the client asked for (its extension gives the media type, also when a precompressed
    /// sibling or a symlink's target is sent).
    pub(crate) asked: PathBuf,
    /// The coding of a precompressed sibling, `None` for the file itself.
    pub(crate) encoding: Option<Encoding>,
}

/// What a request path names.
#[derive(Debug)]
pub(crate) enum Lookup {
    Found(Found),
    /// A directory with an index file, asked for without the trailing slash.
    Directory,
    NotFound,
}

/// Where [`resolve`] looks.
#[derive(Debug, Clone)]
pub(crate) struct Place {
    /// Canonical (absolute, no symlinks).
    pub(crate) root: PathBuf,
    pub(crate) index: Option<OsString>,
}

impl Place {
    /// Find what `segments` name under the root, following symlinks only while they stay inside it:
    /// every path is canonicalized and must start with the (canonical) root, the index file and the
    /// precompressed siblings included. `encodings`: the precompressed siblings to try, best first.
    ///
    /// A component swapped for a symlink between the check and the `open` could still be followed:
    /// that takes someone who can write inside the root.
    pub(crate) fn resolve(&self, segments: &Segments, encodings: &[Encoding]) -> Lookup {
        let mut asked = self.root.clone();
        asked.extend(&segments.parts);
        let Some(mut real) = self.confine(&asked) else {
            return Lookup::NotFound;
        };
        let Ok(meta) = fs::metadata(&real) else {
            return Lookup::NotFound;
        };
        if meta.is_dir() {
            let Some(index) = &self.index else {
                return Lookup::NotFound;
            };
            asked.push(index);
            match self.confine(&real.join(index)) {
                Some(file) if file.is_file() => real = file,
                _ => return Lookup::NotFound,
            }
            if !segments.trailing_slash {
                return Lookup::Directory;
            }
        } else if segments.trailing_slash {
            // `/file.txt/` names a directory that is not there.
            return Lookup::NotFound;
        }
        for &encoding in encodings {
            let mut name = real.clone().into_os_string();
            name.push(match encoding {
                Encoding::Brotli => ".br",
                Encoding::Gzip => ".gz",
                Encoding::Zstd => ".zst",
            });
            if let Some(found) = self
                .confine(Path::new(&name))
                .and_then(|sibling| open(&sibling, &asked, Some(encoding)))
            {
                return Lookup::Found(found);
            }
        }
        open(&real, &asked, None).map_or(Lookup::NotFound, Lookup::Found)
    }

    /// `path` with every symlink resolved, if it exists and lies inside the root.
    fn confine(&self, path: &Path) -> Option<PathBuf> {
        fs::canonicalize(path)
            .ok()
            .filter(|real| real.starts_with(&self.root))
    }
}

/// Open `path` if it is a regular file; its length and date from the open file (one `fstat`).
fn open(path: &Path, asked: &Path, encoding: Option<Encoding>) -> Option<Found> {
    let file = File::open(path).ok()?;
    let meta = file.metadata().ok()?;
    if !meta.is_file() {
        return None;
    }
    Some(Found {
        len: meta.len(),
        modified: meta.modified().ok(),
        file,
        asked: asked.to_path_buf(),
        encoding,
    })
}
