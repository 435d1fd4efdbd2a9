//! Where exported bytes go: a private `.partial` file beside the output (renamed into place
//! when the export completes) or stdout, each batch written whole and made durable before the
//! checkpoint that counts it.
//!
//! A gzipped output is a sequence of gzip members, one per batch: every checkpoint falls on a
//! member boundary, so a resumed run truncates to the checkpoint and appends new members, and
//! the file is the same bytes as a clean run's. Every gzip reader (and `gzip -d`) reads
//! multi-member files; in Rust use `flate2::read::MultiGzDecoder`. The members of one file share
//! one level (`--gzip-level`): the same level gives the same bytes, so a resume stays
//! byte-identical to a clean run.
//!
//! Gzip is most of an export's own CPU time when it is on. flate2 runs on its `zlib-rs` backend
//! (about twice as fast as miniz_oxide at the same level, see Cargo.toml), and the default level
//! is [`DEFAULT_GZIP_LEVEL`]: level 1 compresses the users' JSON to about 22% of its size at a
//! quarter of level 6's CPU time (level 6: about 14%).

use std::fs::File;
use std::io::{self, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::write::GzEncoder;

use crate::state::{open_private, private_options, sync_dir};

/// The gzip level when `--gzip-level` is not given: the fastest (see the module doc).
pub const DEFAULT_GZIP_LEVEL: u32 = 1;

/// A destination for the export.
pub enum Sink {
    File(FileSink),
    Stdout {
        gzip: Option<Compression>,
        bytes: u64,
    },
}

/// A `.partial` file being written.
pub struct FileSink {
    file: File,
    partial: PathBuf,
    path: PathBuf,
    gzip: Option<Compression>,
    bytes: u64,
}

impl Sink {
    /// Opens `path`'s `.partial` file, truncated to `resume_at` bytes (or new when `None`);
    /// gzipped at that level when `gzip` is given.
    pub fn file(
        path: &Path,
        gzip: Option<Compression>,
        resume_at: Option<u64>,
    ) -> io::Result<Sink> {
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

    pub fn stdout(gzip: Option<Compression>) -> Sink {
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

    fn gzip(&self) -> Option<Compression> {
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
        match self.gzip() {
            Some(level) => self.write_raw(&gzip_member(data, level)?),
            None => self.write_raw(data),
        }
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
        if let Some(level) = self.gzip()
            && self.bytes() == 0
        {
            self.write_raw(&gzip_member(&[], level)?)?;
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

/// `data` as one whole gzip member.
fn gzip_member(data: &[u8], level: Compression) -> io::Result<Vec<u8>> {
    // Deflate at level 1 writes a little under a quarter of its input on users' JSON.
    let mut encoder = GzEncoder::new(Vec::with_capacity(data.len() / 4 + 64), level);
    encoder.write_all(data)?;
    encoder.finish()
}

/// `users.ndjson` → `users.ndjson.partial`.
pub fn partial_path(path: &Path) -> PathBuf {
    crate::state::beside(path, ".partial")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    const GZ: Option<Compression> = Some(Compression::new(DEFAULT_GZIP_LEVEL));

    #[test]
    fn a_resumed_gzip_output_equals_a_clean_one() {
        let dir = tempfile::tempdir().unwrap();
        let clean = dir.path().join("clean.gz");
        let mut sink = Sink::file(&clean, GZ, None).unwrap();
        sink.write_batch(b"a\n").unwrap();
        sink.write_batch(b"b\n").unwrap();
        sink.finish().unwrap();

        let resumed = dir.path().join("resumed.gz");
        let mut sink = Sink::file(&resumed, GZ, None).unwrap();
        sink.write_batch(b"a\n").unwrap();
        let mark = sink.bytes();
        sink.write_batch(b"half-written batch that the checkpoint never counted\n")
            .unwrap();
        drop(sink);
        let mut sink = Sink::file(&resumed, GZ, Some(mark)).unwrap();
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
        let mut sink = Sink::file(&path, None, None).unwrap();
        sink.write_batch(b"x\n").unwrap();
        drop(sink);
        assert!(Sink::file(&path, None, Some(100)).is_err());
    }
}
