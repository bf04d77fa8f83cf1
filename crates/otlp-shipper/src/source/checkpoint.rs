//! The durable position: which file (device + inode) and how many of its bytes are
//! delivered. Written only after the endpoint acknowledged, atomically, so a crash at any
//! moment leaves either the old or the new checkpoint, never a torn one.

use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

pub const VERSION: u32 = 1;

/// A position in the followed file: its identity and a byte offset just after a complete line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    pub dev: u64,
    pub ino: u64,
    pub offset: u64,
    /// Fingerprint of the file's first `min(offset, 64)` bytes (0: unknown). An inode number
    /// is reused when a file is deleted and another created; the fingerprint tells them apart.
    pub head: u64,
}

#[derive(Debug, Serialize, Deserialize)]
struct OnDisk {
    version: u32,
    dev: u64,
    ino: u64,
    offset: u64,
    #[serde(default)]
    head: u64,
    /// For people reading the file; the identity is dev + ino.
    #[serde(default)]
    path: String,
}

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("cannot read checkpoint {path} (--checkpoint / CHECKPOINT_FILE): {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write checkpoint {path} (--checkpoint / CHECKPOINT_FILE): {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// What was found at the checkpoint path.
#[derive(Debug, PartialEq)]
pub enum Loaded {
    Missing,
    Found(Position),
    /// Not a checkpoint of ours (e.g. the SQLite DB of the Fluent Bit this replaces).
    Unreadable(String),
}

pub fn load(path: &Path) -> Result<Loaded, CheckpointError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Loaded::Missing),
        Err(source) => {
            return Err(CheckpointError::Read {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    match serde_json::from_slice::<OnDisk>(&bytes) {
        Ok(d) if d.version == VERSION => Ok(Loaded::Found(Position {
            dev: d.dev,
            ino: d.ino,
            offset: d.offset,
            head: d.head,
        })),
        Ok(d) => Ok(Loaded::Unreadable(format!("unknown version {}", d.version))),
        Err(e) => Ok(Loaded::Unreadable(e.to_string())),
    }
}

/// Writes the checkpoint: temp file, `sync_all`, rename over the old one, fsync the directory.
pub fn save(path: &Path, pos: Position, file: &Path) -> Result<(), CheckpointError> {
    let err = |source| CheckpointError::Write {
        path: path.to_path_buf(),
        source,
    };
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let body = serde_json::to_vec(&OnDisk {
        version: VERSION,
        dev: pos.dev,
        ino: pos.ino,
        offset: pos.offset,
        head: pos.head,
        path: file.display().to_string(),
    })
    .expect("a checkpoint serializes");
    {
        use std::os::unix::fs::OpenOptionsExt;
        // Owner-only, as the log it points into.
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(err)?;
        f.write_all(&body).map_err(err)?;
        f.sync_all().map_err(err)?;
    }
    std::fs::rename(&tmp, path).map_err(err)?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(err)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_then_load_round_trips_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cp.json");
        assert_eq!(load(&path).unwrap(), Loaded::Missing);
        let pos = Position {
            dev: 1,
            ino: 2,
            offset: 3,
            head: 4,
        };
        save(&path, pos, Path::new("/var/log/x.log")).unwrap();
        assert_eq!(load(&path).unwrap(), Loaded::Found(pos));
        let pos2 = Position { offset: 99, ..pos };
        save(&path, pos2, Path::new("/var/log/x.log")).unwrap();
        assert_eq!(load(&path).unwrap(), Loaded::Found(pos2));
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("cp.json")]);
    }

    #[test]
    fn a_leftover_temp_file_from_a_crash_does_not_matter() {
        // A crash between write and rename leaves `.tmp`; the real checkpoint is intact.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cp.json");
        let pos = Position {
            dev: 5,
            ino: 6,
            offset: 7,
            head: 0,
        };
        save(&path, pos, Path::new("f")).unwrap();
        std::fs::write(dir.path().join("cp.json.tmp"), b"{\"version\":1,\"dev\":").unwrap();
        assert_eq!(load(&path).unwrap(), Loaded::Found(pos));
        save(&path, Position { offset: 8, ..pos }, Path::new("f")).unwrap();
        assert_eq!(
            load(&path).unwrap(),
            Loaded::Found(Position { offset: 8, ..pos })
        );
    }

    #[test]
    fn a_foreign_file_is_reported_not_trusted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("flb.db");
        std::fs::write(&path, b"SQLite format 3\0....").unwrap();
        assert!(matches!(load(&path).unwrap(), Loaded::Unreadable(_)));
    }
}
