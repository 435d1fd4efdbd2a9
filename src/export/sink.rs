//! Where exported bytes go: a private `.partial` file beside the output (renamed into place
//! when the export completes) or stdout, each batch written whole and made durable before the
//! checkpoint that counts it.
//!
//! A gzipped output is a sequence of gzip members, one per batch: every checkpoint falls on a
//! member boundary, so a resumed run truncates to the checkpoint and appends new members, and
//! the file is the same bytes as a clean run's. Every gzip reader (and `gzip -d`) reads
//! multi-member files; in Rust use `flate2::read::MultiGzDecoder`.

use std::fs::File;
use std::io::{self, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::write::GzEncoder;

use crate::state::{open_private, private_options, sync_dir};

/// A destination for the export.
pub enum Sink {
    File(FileSink),
    Stdout { gzip: bool, bytes: u64 },
}

/// A `.partial` file being written.
pub struct FileSink {
    file: File,
    partial: PathBuf,
    path: PathBuf,
    gzip: bool,
    bytes: u64,
}

impl Sink {
    /// Opens `path`'s `.partial` file, truncated to `resume_at` bytes (or new when `None`).
    pub fn file(path: &Path, gzip: bool, resume_at: Option<u64>) -> io::Result<Sink> {
        let partial = partial_path(path);
        let file = match resume_at {
            Some(bytes) => {
                let mut file = open_private(private_options().read(true).write(true), &partial)?;
                let length = file.metadata()?.len();
                if length < bytes {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "{} holds {length} bytes but the checkpoint counts {bytes}; \
                             the file was changed outside this run (start over with --fresh)",
                            partial.display()
                        ),
                    ));
                }
                file.set_len(bytes)?;
                file.seek(SeekFrom::Start(bytes))?;
                file
            }
            None => {
                if let Some(dir) = partial.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir)?;
                }
                open_private(
                    private_options().write(true).create(true).truncate(true),
                    &partial,
                )?
            }
        };
        Ok(Sink::File(FileSink {
            file,
            partial,
            path: path.to_path_buf(),
            gzip,
            bytes: resume_at.unwrap_or(0),
        }))
    }

    pub fn stdout(gzip: bool) -> Sink {
        Sink::Stdout { gzip, bytes: 0 }
    }

    /// Where the bytes go, for messages: the `.partial` file, or `-` for stdout.
    pub fn name(&self) -> String {
        match self {
            Sink::File(f) => f.partial.display().to_string(),
            Sink::Stdout { .. } => "-".to_string(),
        }
    }

    /// Bytes written so far (what a checkpoint records).
    pub fn bytes(&self) -> u64 {
        match self {
            Sink::File(f) => f.bytes,
            Sink::Stdout { bytes, .. } => *bytes,
        }
    }

    fn gzip(&self) -> bool {
        match self {
            Sink::File(f) => f.gzip,
            Sink::Stdout { gzip, .. } => *gzip,
        }
    }

    /// Writes one batch and makes it durable: one gzip member when gzipped.
    pub fn write_batch(&mut self, data: &[u8]) -> io::Result<()> {
        if data.is_empty() {
            return Ok(());
        }
        let compressed;
        let chunk = if self.gzip() {
            let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
            encoder.write_all(data)?;
            compressed = encoder.finish()?;
            &compressed[..]
        } else {
            data
        };
        self.write_raw(chunk)
    }

    /// Writes bytes as they are and makes them durable.
    fn write_raw(&mut self, chunk: &[u8]) -> io::Result<()> {
        match self {
            Sink::File(f) => {
                f.file.write_all(chunk)?;
                f.file.sync_data()?;
                f.bytes += chunk.len() as u64;
            }
            Sink::Stdout { bytes, .. } => {
                let mut out = io::stdout().lock();
                out.write_all(chunk)?;
                out.flush()?;
                *bytes += chunk.len() as u64;
            }
        }
        Ok(())
    }

    /// Completes the output: the `.partial` file is renamed into place. A gzipped output that
    /// got no batch (an export of zero users) gets one empty gzip member first: a 0-byte file
    /// is not gzip, and `gzip -t` (or any importer) would refuse it.
    pub fn finish(mut self) -> io::Result<()> {
        if self.gzip() && self.bytes() == 0 {
            let empty = GzEncoder::new(Vec::new(), Compression::default()).finish()?;
            self.write_raw(&empty)?;
        }
        match self {
            Sink::File(f) => {
                f.file.sync_all()?;
                drop(f.file);
                std::fs::rename(&f.partial, &f.path)?;
                let dir = f
                    .path
                    .parent()
                    .filter(|d| !d.as_os_str().is_empty())
                    .unwrap_or(Path::new("."));
                sync_dir(dir)
            }
            Sink::Stdout { .. } => io::stdout().flush(),
        }
    }
}

/// `users.ndjson` → `users.ndjson.partial`.
pub fn partial_path(path: &Path) -> PathBuf {
    crate::state::beside(path, ".partial")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn a_resumed_gzip_output_equals_a_clean_one() {
        let dir = tempfile::tempdir().unwrap();
        let clean = dir.path().join("clean.gz");
        let mut sink = Sink::file(&clean, true, None).unwrap();
        sink.write_batch(b"a\n").unwrap();
        sink.write_batch(b"b\n").unwrap();
        sink.finish().unwrap();

        let resumed = dir.path().join("resumed.gz");
        let mut sink = Sink::file(&resumed, true, None).unwrap();
        sink.write_batch(b"a\n").unwrap();
        let mark = sink.bytes();
        sink.write_batch(b"half-written batch that the checkpoint never counted\n")
            .unwrap();
        drop(sink);
        let mut sink = Sink::file(&resumed, true, Some(mark)).unwrap();
        sink.write_batch(b"b\n").unwrap();
        sink.finish().unwrap();

        let (a, b) = (
            std::fs::read(&clean).unwrap(),
            std::fs::read(&resumed).unwrap(),
        );
        assert_eq!(a, b);
        let mut text = String::new();
        flate2::read::MultiGzDecoder::new(&a[..])
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, "a\nb\n");
        assert!(!partial_path(&clean).exists());
    }

    #[test]
    fn resuming_past_the_end_of_the_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.ndjson");
        let mut sink = Sink::file(&path, false, None).unwrap();
        sink.write_batch(b"x\n").unwrap();
        drop(sink);
        assert!(Sink::file(&path, false, Some(100)).is_err());
    }
}
