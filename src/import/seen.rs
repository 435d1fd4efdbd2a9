//! The users a create import has claimed so far, kept on disk (past the first few thousand)
//! so that its memory stays flat whatever the input's size: a hash table whose slots and keys
//! live in two files, read and written with positioned I/O.
//!
//! Why on disk, and why this shape:
//!
//! - **Flat memory.** A million users' keys held in memory cost tens of MiB. Positioned reads
//!   and writes (`pread`/`pwrite`) go through the kernel's page cache, which is not the
//!   process's resident memory (pages of a memory-mapped file would be). What the process
//!   holds is bounded: the table while it is small (at most [`MEMORY_SLOTS`], 256 KiB: a few
//!   thousand users never touch the disk) and the keys not yet written (64 KiB).
//! - **No false duplicates.** The table indexes by a 64-bit hash, but a hash is only where to
//!   look: the key itself is kept and compared, so two users whose hashes collide are two
//!   users. The hash is keyed per run ([`RandomState`]), so no input can be crafted to make
//!   every key land in one place.
//! - **Nothing to recover.** The table is rebuilt by every run: a resumed run reads its input
//!   from the start, and records done in an earlier run claim their user again as they pass.
//!   So the files are anonymous (unlinked as they are created, 0600): a crash leaves no file
//!   of users' emails behind, and nothing is fsynced.
//! - **Why not an embedded database.** A write-once set with lookups needs no ordering, no
//!   transactions and no durability; redb (the pure-Rust candidate) keeps non-durable commits
//!   in memory until a durable one (an fsync), and its B-tree cost ~13 µs of CPU a key for
//!   a million keys in random order, against ~2 µs a key here at 10,000 and ~8 at a million.
//!
//! The table: `slots` (a power of two) 16-byte slots, `[hash, offset of the key]` in
//! little-endian; hash 0 marks an empty slot. Linear probing, at most half full: it doubles
//! (rehashed from the old table, read in chunks) when a claim would pass that. The keys file:
//! per user, `[first line: u64][length: u32][key bytes]`, appended.

use std::fs::File;
use std::hash::{BuildHasher, RandomState};
use std::io;
use std::path::{Path, PathBuf};

/// The bytes of one slot: the key's hash and where the key is in the keys file.
const SLOT: u64 = 16;
/// The slots a table starts with (64 KiB, in memory).
const FIRST_SLOTS: u64 = 1 << 12;
/// The most slots a table kept in memory has (256 KiB, 8,192 users); past that it is a file.
const MEMORY_SLOTS: u64 = 1 << 14;
/// Slots read at once when probing: at most half full, a probe rarely needs more.
const PROBE: u64 = 8;
/// Slots read at once when rehashing into a table twice the size (64 KiB).
const REHASH_CHUNK: u64 = 4096;
/// The bytes before a key in the keys file: its first line and its length.
const KEY_HEADER: usize = 12;
/// New keys are appended in writes of about this many bytes (one system call for hundreds).
const KEYS_BUFFER: usize = 64 * 1024;

/// The users claimed so far, each with the line of the record that claimed it.
pub(super) struct Seen {
    /// The directory the files live in (the run state); the system's temporary directory
    /// without one (stdin without `--state`, a dry run).
    dir: Option<PathBuf>,
    hasher: RandomState,
    /// The slots a new table has.
    first_slots: u64,
    /// Opened at the first claim, so an import that claims nothing writes nothing.
    files: Option<Files>,
    /// A write or read that failed: the run stops, and every later claim fails the same way.
    failed: Option<io::Error>,
}

/// The table and the keys, and how much the table holds.
struct Files {
    table: Table,
    slots: u64,
    count: u64,
    /// Made when the pending keys first fill their buffer.
    keys: Option<File>,
    /// The bytes of `keys` written to the file; the ones after are in `pending`.
    keys_written: u64,
    /// New keys not yet written: a duplicate of a recent record is found here.
    pending: Vec<u8>,
}

/// The slots: in memory while few, else in a file.
enum Table {
    Memory(Vec<u8>),
    File(File),
}

impl Table {
    /// A table of `slots` empty slots.
    fn new(slots: u64, dir: Option<&Path>) -> io::Result<Table> {
        if slots <= MEMORY_SLOTS {
            return Ok(Table::Memory(vec![0; (slots * SLOT) as usize]));
        }
        let file = anonymous(dir)?;
        // Sparse: a slot takes room on disk when it is first written.
        file.set_len(slots * SLOT)?;
        Ok(Table::File(file))
    }

    fn read(&self, buffer: &mut [u8], offset: u64) -> io::Result<()> {
        match self {
            Table::Memory(bytes) => {
                buffer.copy_from_slice(&bytes[offset as usize..offset as usize + buffer.len()]);
                Ok(())
            }
            Table::File(file) => read_at(file, buffer, offset),
        }
    }

    fn write(&mut self, bytes: &[u8], offset: u64) -> io::Result<()> {
        match self {
            Table::Memory(table) => {
                table[offset as usize..offset as usize + bytes.len()].copy_from_slice(bytes);
                Ok(())
            }
            Table::File(file) => write_at(file, bytes, offset),
        }
    }
}

/// Where a key is, or where it would go.
enum Probe {
    Found(u64),
    Vacant(u64),
}

impl Seen {
    /// A set kept in files in `dir` (created there when the first user is claimed).
    pub fn new(dir: Option<&Path>) -> Seen {
        Seen::sized(dir, FIRST_SLOTS)
    }

    /// A set whose table starts with `first_slots` slots (a power of two).
    pub fn sized(dir: Option<&Path>, first_slots: u64) -> Seen {
        assert!(first_slots.is_power_of_two() && first_slots >= 2);
        Seen {
            dir: dir.map(Path::to_path_buf),
            hasher: RandomState::new(),
            first_slots,
            files: None,
            failed: None,
        }
    }

    /// Where the files are, for a message.
    pub fn place(&self) -> String {
        match &self.dir {
            Some(dir) => format!(
                "the users claimed so far (unnamed files in {})",
                dir.display()
            ),
            None => "the users claimed so far (unnamed files in the temporary directory)".into(),
        }
    }

    /// The error that stopped the set, if one did.
    pub fn take_error(&mut self) -> Option<io::Error> {
        self.failed.take()
    }

    /// True once a read or write failed (see [`Seen::claim`]).
    pub fn has_failed(&self) -> bool {
        self.failed.is_some()
    }

    /// Claims `key` for the record on `line`: `None` when it is the first to claim it,
    /// else the line of the record that did. After an I/O error every claim fails.
    pub fn claim(&mut self, key: &str, line: u64) -> io::Result<Option<u64>> {
        let hash = self.hasher.hash_one(key);
        self.claim_hashed(hash, key, line)
    }

    fn claim_hashed(&mut self, hash: u64, key: &str, line: u64) -> io::Result<Option<u64>> {
        if let Some(error) = &self.failed {
            return Err(io::Error::new(error.kind(), error.to_string()));
        }
        let result = self.try_claim(hash.max(1), key, line);
        if let Err(error) = &result {
            self.failed = Some(io::Error::new(error.kind(), error.to_string()));
        }
        result
    }

    fn try_claim(&mut self, hash: u64, key: &str, line: u64) -> io::Result<Option<u64>> {
        if self.files.is_none() {
            self.files = Some(Files::create(self.dir.as_deref(), self.first_slots)?);
        }
        let files = self.files.as_mut().expect("opened above");
        let mut at = match files.probe(hash, key)? {
            Probe::Found(first) => return Ok(Some(first)),
            Probe::Vacant(at) => at,
        };
        if (files.count + 1) * 2 > files.slots {
            files.grow(self.dir.as_deref())?;
            at = files.vacant(hash)?;
        }
        files.insert(at, hash, key, line, self.dir.as_deref())?;
        Ok(None)
    }
}

impl Files {
    fn create(dir: Option<&Path>, slots: u64) -> io::Result<Files> {
        Ok(Files {
            table: Table::new(slots, dir)?,
            slots,
            count: 0,
            keys: None,
            keys_written: 0,
            pending: Vec::with_capacity(KEYS_BUFFER),
        })
    }

    /// Finds `key`, or the empty slot where it would go.
    fn probe(&self, hash: u64, key: &str) -> io::Result<Probe> {
        let mut buffer = [0u8; (PROBE * SLOT) as usize];
        let mut index = hash & (self.slots - 1);
        loop {
            // A read never wraps past the table's end: the next one starts at slot 0.
            let n = PROBE.min(self.slots - index);
            let bytes = &mut buffer[..(n * SLOT) as usize];
            self.table.read(bytes, index * SLOT)?;
            for (i, slot) in bytes.chunks_exact(SLOT as usize).enumerate() {
                let (stored, offset) = decode(slot);
                if stored == 0 {
                    return Ok(Probe::Vacant(index + i as u64));
                }
                if stored == hash
                    && let Some(first) = self.key_at(offset, key)?
                {
                    return Ok(Probe::Found(first));
                }
            }
            index = (index + n) & (self.slots - 1);
        }
    }

    /// The empty slot for `hash`, in a table known not to hold its key.
    fn vacant(&self, hash: u64) -> io::Result<u64> {
        let mut buffer = [0u8; (PROBE * SLOT) as usize];
        let mut index = hash & (self.slots - 1);
        loop {
            let n = PROBE.min(self.slots - index);
            let bytes = &mut buffer[..(n * SLOT) as usize];
            self.table.read(bytes, index * SLOT)?;
            if let Some(i) = bytes
                .chunks_exact(SLOT as usize)
                .position(|slot| decode(slot).0 == 0)
            {
                return Ok(index + i as u64);
            }
            index = (index + n) & (self.slots - 1);
        }
    }

    /// The first line of the key at `offset` if that key is `key` (the hashes matched, which
    /// does not make them the same user).
    fn key_at(&self, offset: u64, key: &str) -> io::Result<Option<u64>> {
        // An entry is written whole, so it is all in the file or all still pending.
        if let Some(at) = offset.checked_sub(self.keys_written) {
            let entry = &self.pending[at as usize..];
            let (line, len) = decode_key_header(&entry[..KEY_HEADER]);
            let stored = &entry[KEY_HEADER..KEY_HEADER + len];
            return Ok((stored == key.as_bytes()).then_some(line));
        }
        let keys = self
            .keys
            .as_ref()
            .expect("keys before `pending` are in the file");
        let mut header = [0u8; KEY_HEADER];
        read_at(keys, &mut header, offset)?;
        let (line, len) = decode_key_header(&header);
        if len != key.len() {
            return Ok(None);
        }
        let mut stored = vec![0u8; len];
        read_at(keys, &mut stored, offset + KEY_HEADER as u64)?;
        Ok((stored == key.as_bytes()).then_some(line))
    }

    fn insert(
        &mut self,
        at: u64,
        hash: u64,
        key: &str,
        line: u64,
        dir: Option<&Path>,
    ) -> io::Result<()> {
        let len = u32::try_from(key.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a key over 4 GiB"))?;
        if self.pending.len() + KEY_HEADER + key.len() > KEYS_BUFFER && !self.pending.is_empty() {
            if self.keys.is_none() {
                self.keys = Some(anonymous(dir)?);
            }
            let keys = self.keys.as_ref().expect("made above");
            write_at(keys, &self.pending, self.keys_written)?;
            self.keys_written += self.pending.len() as u64;
            self.pending.clear();
        }
        let offset = self.keys_written + self.pending.len() as u64;
        self.pending.extend_from_slice(&line.to_le_bytes());
        self.pending.extend_from_slice(&len.to_le_bytes());
        self.pending.extend_from_slice(key.as_bytes());
        self.table.write(&encode(hash, offset), at * SLOT)?;
        self.count += 1;
        Ok(())
    }

    /// Doubles the table: every slot of the old one, read in chunks, goes to its place in a
    /// new one (a file once past [`MEMORY_SLOTS`]); the keys stay where they are.
    fn grow(&mut self, dir: Option<&Path>) -> io::Result<()> {
        let slots = self.slots * 2;
        let old = std::mem::replace(&mut self.table, Table::new(slots, dir)?);
        let old_slots = std::mem::replace(&mut self.slots, slots);
        let mut chunk = vec![0u8; (REHASH_CHUNK * SLOT) as usize];
        for start in (0..old_slots).step_by(REHASH_CHUNK as usize) {
            let n = REHASH_CHUNK.min(old_slots - start);
            let bytes = &mut chunk[..(n * SLOT) as usize];
            old.read(bytes, start * SLOT)?;
            for slot in bytes.chunks_exact(SLOT as usize) {
                let (hash, _) = decode(slot);
                if hash != 0 {
                    let at = self.vacant(hash)?;
                    self.table.write(slot, at * SLOT)?;
                }
            }
        }
        Ok(())
    }
}

fn decode(slot: &[u8]) -> (u64, u64) {
    (
        u64::from_le_bytes(slot[..8].try_into().expect("8 bytes")),
        u64::from_le_bytes(slot[8..16].try_into().expect("8 bytes")),
    )
}

fn decode_key_header(header: &[u8]) -> (u64, usize) {
    (
        u64::from_le_bytes(header[..8].try_into().expect("8 bytes")),
        u32::from_le_bytes(header[8..12].try_into().expect("4 bytes")) as usize,
    )
}

fn encode(hash: u64, offset: u64) -> [u8; SLOT as usize] {
    let mut slot = [0u8; SLOT as usize];
    slot[..8].copy_from_slice(&hash.to_le_bytes());
    slot[8..].copy_from_slice(&offset.to_le_bytes());
    slot
}

/// A private (0600) file with no name, gone when closed (or when the process dies); the
/// password hash file's index (`hashfile.rs`) lives in such files too.
pub(super) fn anonymous(dir: Option<&Path>) -> io::Result<File> {
    let file = match dir {
        Some(dir) => tempfile::tempfile_in(dir)?,
        None => tempfile::tempfile()?,
    };
    // Linux's O_TMPFILE, which tempfile uses, takes the default mode (0666 less the umask);
    // the file has no name, but its descriptor is still reachable under /proc.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(file)
}

#[cfg(unix)]
pub(super) fn read_at(file: &File, buffer: &mut [u8], offset: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buffer, offset)
}

#[cfg(unix)]
pub(super) fn write_at(file: &File, bytes: &[u8], offset: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(file, bytes, offset)
}

#[cfg(windows)]
pub(super) fn read_at(file: &File, mut buffer: &mut [u8], mut offset: u64) -> io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !buffer.is_empty() {
        match file.seek_read(buffer, offset)? {
            0 => return Err(io::ErrorKind::UnexpectedEof.into()),
            n => {
                buffer = &mut buffer[n..];
                offset += n as u64;
            }
        }
    }
    Ok(())
}

#[cfg(windows)]
pub(super) fn write_at(file: &File, mut bytes: &[u8], mut offset: u64) -> io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !bytes.is_empty() {
        match file.seek_write(bytes, offset)? {
            0 => return Err(io::ErrorKind::WriteZero.into()),
            n => {
                bytes = &bytes[n..];
                offset += n as u64;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_record_claims_a_user_and_later_ones_name_its_line_through_every_growth() {
        let dir = tempfile::tempdir().unwrap();
        // A small first table, to double it many times (half full at most); the keys pass
        // through the write buffer many times over.
        let mut seen = Seen::sized(Some(dir.path()), 64);
        let users = 20_000u64;
        let key = |i: u64| format!("user{i}@example.com");
        for i in 0..users {
            assert_eq!(seen.claim(&key(i), i + 1).unwrap(), None, "user {i}");
        }
        let files = seen.files.as_ref().unwrap();
        assert_eq!(files.count, users);
        assert!(files.slots >= users * 2);
        assert!(
            matches!(files.table, Table::File(_)),
            "past the memory's share"
        );
        for i in (0..users).rev() {
            assert_eq!(seen.claim(&key(i), users + 1).unwrap(), Some(i + 1));
        }
        assert_eq!(
            seen.files.as_ref().unwrap().count,
            users,
            "a duplicate adds nothing"
        );
    }

    #[test]
    fn users_whose_hashes_collide_are_two_users() {
        let mut seen = Seen::sized(None, 64);
        // Every key on one hash: only the keys themselves tell them apart.
        for (line, key) in ["a@example.com", "b@example.com", "auth0|a"]
            .iter()
            .enumerate()
        {
            assert_eq!(seen.claim_hashed(42, key, line as u64 + 1).unwrap(), None);
        }
        assert_eq!(seen.claim_hashed(42, "b@example.com", 9).unwrap(), Some(2));
        assert_eq!(seen.claim_hashed(42, "auth0|a", 9).unwrap(), Some(3));
        // A key that is a prefix of another, and hash 0 (the empty slot's mark).
        assert_eq!(seen.claim_hashed(0, "a@example.co", 10).unwrap(), None);
        assert_eq!(seen.claim_hashed(0, "a@example.co", 11).unwrap(), Some(10));
        // Three keys a hash, on the table's last slots, past a growth: probe runs that wrap
        // round the table's end and are rehashed as they are.
        let hash = |i: u64| u64::MAX - i / 3;
        for i in 0..3_000u64 {
            assert_eq!(
                seen.claim_hashed(hash(i), &format!("k{i}"), i).unwrap(),
                None
            );
        }
        assert!(seen.files.as_ref().unwrap().slots > 64);
        for i in 0..3_000u64 {
            assert_eq!(
                seen.claim_hashed(hash(i), &format!("k{i}"), 0).unwrap(),
                Some(i)
            );
        }
    }

    /// Claims `n` users (with a small first table), expecting each to be the first.
    fn claim_many(seen: &mut Seen, n: u64) -> io::Result<()> {
        for i in 0..n {
            assert_eq!(seen.claim(&format!("user{i}@example.com"), i + 1)?, None);
        }
        Ok(())
    }

    #[test]
    fn a_few_thousand_users_never_touch_the_disk() {
        let dir = tempfile::tempdir().unwrap();
        let mut seen = Seen::new(Some(dir.path()));
        claim_many(&mut seen, 2_000).unwrap();
        let files = seen.files.as_ref().unwrap();
        assert!(matches!(files.table, Table::Memory(_)) && files.keys.is_none());
        assert_eq!(seen.claim("user7@example.com", 9).unwrap(), Some(8));
    }

    #[test]
    fn its_files_are_private_and_leave_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let mut seen = Seen::sized(Some(dir.path()), 64);
        claim_many(&mut seen, 20_000).unwrap();
        let files = seen.files.as_ref().unwrap();
        let Table::File(table) = &files.table else {
            panic!("the table is still in memory")
        };
        let keys = files.keys.as_ref().expect("a keys file");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            for file in [table, keys] {
                assert_eq!(file.metadata().unwrap().permissions().mode() & 0o777, 0o600);
            }
        }
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert!(names.is_empty(), "no named file: {names:?}");
    }

    #[test]
    fn a_failed_write_fails_every_later_claim() {
        let dir = tempfile::tempdir().unwrap();
        let gone = dir.path().join("gone");
        let mut seen = Seen::sized(Some(&gone), 64);
        // Fine while it all fits in memory; refused when the first file cannot be made.
        let error = claim_many(&mut seen, 20_000).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::NotFound);
        assert!(seen.has_failed());
        std::fs::create_dir(&gone).unwrap();
        assert!(
            seen.claim("another@example.com", 1).is_err(),
            "the run stops at the first failure"
        );
        assert_eq!(seen.take_error().unwrap().kind(), io::ErrorKind::NotFound);
    }
}
