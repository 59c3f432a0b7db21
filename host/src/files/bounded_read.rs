//! Reading the files a policy set is made of (config, modules, signatures, settings,
//! trust keys) without letting a file decide how much the host reads or whether it blocks.
//!
//! # Why not `std::fs::read`
//!
//! These files sit in directories an operator (or a deployment tool) writes to, and they
//! are read *before* the signature check: a module path symlinked to `/dev/zero` made
//! `fs::read` grow the server by a gigabyte per reload attempt, and a FIFO in the plugin
//! directory blocked the reload thread in `open(2)` forever, holding the reload lock.
//! So every read here:
//!
//! - opens with `O_NONBLOCK`, so opening a FIFO returns at once instead of waiting for a
//!   writer (the flag has no effect on reads of a regular file);
//! - checks, on the opened descriptor (no race with a rename between check and read), that
//!   it is a **regular file**: a FIFO, socket, device or directory is refused, naming what
//!   it is;
//! - refuses a file larger than the caller's bound, and reads at most bound + 1 bytes, so a
//!   file that grows while it is read is caught too.
//!
//! Symbolic links are followed (configuration management and Kubernetes mount files
//! through them); what matters is what they point at.

use std::fs::File;
use std::io::Read as _;
use std::os::unix::fs::{FileTypeExt as _, OpenOptionsExt as _};
use std::path::Path;

/// Why a file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FileReadError {
    /// Opening or reading failed (missing file, permissions, ...).
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The path is not a regular file.
    #[error("not a regular file but a {kind}; only regular files are read")]
    NotRegular {
        /// What it is: `directory`, `FIFO`, `socket`, `character device`, ...
        kind: &'static str,
    },
    /// The file is larger than the bound.
    #[error("{size} bytes, more than the limit of {limit} bytes")]
    TooLarge {
        /// The file's size (or at least this many bytes were found).
        size: u64,
        /// The bound.
        limit: u64,
    },
}

impl FileReadError {
    /// Whether the file does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::Io(e) if e.kind() == std::io::ErrorKind::NotFound)
    }
}

/// Reads a regular file of at most `limit` bytes.
pub fn read_regular_file(path: &Path, limit: u64) -> Result<Vec<u8>, FileReadError> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    let metadata = file.metadata()?;
    let file_type = metadata.file_type();
    if !file_type.is_file() {
        return Err(FileReadError::NotRegular {
            kind: kind_of(file_type),
        });
    }
    if metadata.len() > limit {
        return Err(FileReadError::TooLarge {
            size: metadata.len(),
            limit,
        });
    }
    read_at_most(file, limit)
}

/// Reads a regular UTF-8 text file of at most `limit` bytes.
pub fn read_regular_text(path: &Path, limit: u64) -> Result<String, FileReadError> {
    let bytes = read_regular_file(path, limit)?;
    String::from_utf8(bytes).map_err(|e| {
        FileReadError::Io(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("not valid UTF-8: {e}"),
        ))
    })
}

fn read_at_most(file: File, limit: u64) -> Result<Vec<u8>, FileReadError> {
    let mut bytes = Vec::new();
    file.take(limit.saturating_add(1)).read_to_end(&mut bytes)?;
    let size = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
    if size > limit {
        return Err(FileReadError::TooLarge { size, limit });
    }
    Ok(bytes)
}

fn kind_of(file_type: std::fs::FileType) -> &'static str {
    if file_type.is_dir() {
        "directory"
    } else if file_type.is_fifo() {
        "FIFO"
    } else if file_type.is_socket() {
        "socket"
    } else if file_type.is_char_device() {
        "character device"
    } else if file_type.is_block_device() {
        "block device"
    } else {
        "special file"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regular_files_within_the_bound_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"hello").unwrap();
        assert_eq!(read_regular_file(&path, 5).unwrap(), b"hello");
        let err = read_regular_file(&path, 4).unwrap_err();
        assert!(
            matches!(err, FileReadError::TooLarge { size: 5, limit: 4 }),
            "{err}"
        );
    }

    #[test]
    fn devices_fifos_and_directories_are_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        // A device that never ends: read naively, it would fill memory.
        let err = read_regular_file(Path::new("/dev/zero"), 1 << 20).unwrap_err();
        assert_eq!(
            err.to_string(),
            "not a regular file but a character device; only regular files are read"
        );
        // A symlink to it is judged by its target.
        let link = dir.path().join("zero.wasm");
        std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
        assert!(matches!(
            read_regular_file(&link, 1 << 20),
            Err(FileReadError::NotRegular { .. })
        ));
        // A FIFO with no writer: a blocking open would hang here forever.
        let fifo = dir.path().join("fifo");
        let status = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(status.success());
        let err = read_regular_file(&fifo, 1 << 20).unwrap_err();
        assert!(err.to_string().contains("FIFO"), "{err}");
        let err = read_regular_file(dir.path(), 1 << 20).unwrap_err();
        assert!(err.to_string().contains("directory"), "{err}");
        assert!(
            read_regular_file(&dir.path().join("missing"), 1)
                .unwrap_err()
                .is_not_found()
        );
    }
}
