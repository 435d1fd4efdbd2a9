//! The job's file as lines: its gzip members decompressed as the pieces of the body arrive,
//! and cut at `\n`. Only the line being cut is held, whatever the file's size: each piece is
//! decompressed a few KiB of input at a time, so even a file that inflates a thousandfold
//! holds a few MiB at once, and a line may not grow past [`MAX_LINE`].

use std::io::Write;

use flate2::write::MultiGzDecoder;

/// The longest line taken: a user is at most 1 MB as Auth0 takes it (facts: every request body
/// is limited to 1 MB), so anything far past that is not a user.
pub const MAX_LINE: usize = 16 * 1024 * 1024;

/// Input handed to the decompressor at a time (see the module doc).
const SLICE: usize = 4 * 1024;

/// Why the file could not be read as lines.
#[derive(Debug, thiserror::Error)]
pub enum LinesError {
    #[error("the file is not whole gzip: {0}")]
    Gzip(std::io::Error),
    #[error("line {line} is over {MAX_LINE} bytes long: it cannot be a user")]
    TooLong { line: u64 },
}

/// A file being cut into lines.
pub struct GzLines {
    decoder: MultiGzDecoder<Vec<u8>>,
    /// Lines handed out so far: the number of the last one.
    lines: u64,
}

impl Default for GzLines {
    fn default() -> GzLines {
        GzLines {
            decoder: MultiGzDecoder::new(Vec::new()),
            lines: 0,
        }
    }
}

impl GzLines {
    /// Decompresses `piece` and hands each line it completes to `line`, with its number (from
    /// 1) and without its `\n`. An error of `line` stops the feed and is given back as it is.
    pub fn feed<E: From<LinesError>>(
        &mut self,
        piece: &[u8],
        line: &mut impl FnMut(u64, &[u8]) -> Result<(), E>,
    ) -> Result<(), E> {
        for slice in piece.chunks(SLICE) {
            self.decoder
                .write_all(slice)
                .and_then(|()| self.decoder.flush())
                .map_err(LinesError::Gzip)?;
            self.cut(line)?;
        }
        Ok(())
    }

    /// At the end of the body: checks that the last gzip member is whole and hands out a last
    /// line that has no `\n`. Returns the number of lines in the file.
    pub fn finish<E: From<LinesError>>(
        mut self,
        line: &mut impl FnMut(u64, &[u8]) -> Result<(), E>,
    ) -> Result<u64, E> {
        self.decoder.try_finish().map_err(LinesError::Gzip)?;
        self.cut(line)?;
        let rest = std::mem::take(self.decoder.get_mut());
        if !rest.is_empty() {
            self.lines += 1;
            line(self.lines, &rest)?;
        }
        Ok(self.lines)
    }

    /// Hands out every whole line held, and keeps the rest.
    fn cut<E: From<LinesError>>(
        &mut self,
        line: &mut impl FnMut(u64, &[u8]) -> Result<(), E>,
    ) -> Result<(), E> {
        let held = self.decoder.get_mut();
        let mut start = 0;
        while let Some(end) = memchr::memchr(b'\n', &held[start..]) {
            self.lines += 1;
            line(self.lines, &held[start..start + end])?;
            start += end + 1;
        }
        held.drain(..start);
        if held.len() > MAX_LINE {
            return Err(LinesError::TooLong {
                line: self.lines + 1,
            }
            .into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::Compression;
    use flate2::write::GzEncoder;

    fn gzip(text: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), Compression::fast());
        e.write_all(text).unwrap();
        e.finish().unwrap()
    }

    /// Feeds `file` in pieces of `size` bytes; the lines as text with their numbers.
    fn lines(file: &[u8], size: usize) -> Result<Vec<(u64, String)>, LinesError> {
        let mut out = Vec::new();
        let mut take = |n: u64, line: &[u8]| -> Result<(), LinesError> {
            out.push((n, String::from_utf8(line.to_vec()).unwrap()));
            Ok(())
        };
        let mut cut = GzLines::default();
        for piece in file.chunks(size) {
            cut.feed(piece, &mut take)?;
        }
        cut.finish(&mut take)?;
        Ok(out)
    }

    #[test]
    fn lines_come_out_whole_whatever_the_pieces_and_members() {
        let mut file = gzip(b"{\"a\":1}\n{\"b\":2}\n{\"c\"");
        file.extend(gzip(b":3}\n\n{\"d\":4}"));
        let want = vec![
            (1, "{\"a\":1}".to_string()),
            (2, "{\"b\":2}".to_string()),
            (3, "{\"c\":3}".to_string()),
            (4, String::new()),
            (5, "{\"d\":4}".to_string()),
        ];
        for size in [1, 3, 7, 64, 100_000] {
            assert_eq!(lines(&file, size).unwrap(), want, "pieces of {size}");
        }
    }

    #[test]
    fn a_file_cut_short_or_not_gzip_is_refused() {
        let file = gzip(b"{\"a\":1}\n{\"b\":2}\n");
        assert!(matches!(
            lines(&file[..file.len() - 3], 16),
            Err(LinesError::Gzip(_))
        ));
        assert!(matches!(
            lines(b"{\"a\":1}\n", 16),
            Err(LinesError::Gzip(_))
        ));
        assert_eq!(lines(&gzip(b""), 16).unwrap(), vec![]);
    }

    #[test]
    fn a_line_without_end_stops_at_the_limit() {
        let file = gzip(&vec![b'x'; MAX_LINE + SLICE * 4]);
        assert!(matches!(
            lines(&file, 1 << 20),
            Err(LinesError::TooLong { line: 1 })
        ));
    }
}
