//! One record's bytes, kept up to the record cap: memory stays bounded whatever a record's
//! size, while its length is still counted.

use std::io::{self, BufRead};

use super::{RecordError, Source, code};

/// `fill_buf`, retried when interrupted.
pub(super) fn fill(source: &mut Source) -> io::Result<&[u8]> {
    loop {
        match source.fill_buf() {
            Ok(_) => break,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    source.fill_buf()
}

/// The bytes of one record, kept up to a limit: memory stays bounded whatever the record's size,
/// while `total` still counts every byte.
pub(super) struct Capture {
    pub(super) bytes: Vec<u8>,
    total: u64,
    last: Option<u8>,
    /// The most bytes kept: the record cap plus one, so "over the cap" is visible (and NDJSON's
    /// trailing CR fits).
    keep: usize,
}

impl Capture {
    pub(super) fn new(cap: usize) -> Capture {
        Capture {
            bytes: Vec::new(),
            total: 0,
            last: None,
            keep: cap.saturating_add(1),
        }
    }

    pub(super) fn clear(&mut self) {
        self.bytes.clear();
        self.total = 0;
        self.last = None;
    }

    pub(super) fn push(&mut self, slice: &[u8]) {
        let Some(&last) = slice.last() else { return };
        self.last = Some(last);
        self.total += slice.len() as u64;
        let take = slice.len().min(self.keep - self.bytes.len());
        if take == 0 {
            return;
        }
        if self.bytes.capacity() - self.bytes.len() < take {
            // Grow by doubling, but never past `keep`: the cap bounds the allocation too.
            let want = (self.bytes.len() + take)
                .max(self.bytes.capacity().saturating_mul(2))
                .min(self.keep);
            self.bytes.reserve_exact(want - self.bytes.len());
        }
        self.bytes.extend_from_slice(&slice[..take]);
    }

    /// Drops one trailing CR from the record (the CR of a CRLF line end).
    pub(super) fn strip_cr(&mut self) {
        if self.last == Some(b'\r') {
            if self.bytes.len() as u64 == self.total {
                self.bytes.pop();
            }
            self.total -= 1;
            self.last = self.bytes.last().copied();
        }
    }

    pub(super) fn over(&self, cap: usize) -> bool {
        self.total > cap as u64
    }

    pub(super) fn too_large(&self, cap: usize) -> RecordError {
        RecordError::new(
            code::TOO_LARGE,
            format!(
                "the record has {} bytes, more than the limit of {cap} bytes \
                 (max_record_bytes); it was skipped: shorten it or split it",
                self.total
            ),
        )
        .with_raw(&self.bytes, cap)
    }
}

/// Lossy UTF-8 of at most `cap` bytes, cut at a character boundary at or below `cap` bytes.
pub(super) fn capped_text(bytes: &[u8], cap: usize) -> String {
    let mut text = String::from_utf8_lossy(&bytes[..bytes.len().min(cap)]).into_owned();
    if text.len() > cap {
        let mut end = cap;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capped_text_never_exceeds_the_cap() {
        assert_eq!(capped_text(b"\xff\xff\xff", 4), "\u{fffd}");
        assert_eq!(capped_text("héllo".as_bytes(), 2), "h");
        assert_eq!(capped_text(b"abc", 10), "abc");
    }
}
