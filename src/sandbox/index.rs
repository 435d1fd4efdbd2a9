//! An order-statistic index for the search view: users sorted by (`created_at`, `user_id`),
//! with rank queries, so a million-user tenant counts a `created_at` range and reaches page N
//! of it in O(log N) instead of walking the range.
//!
//! The structure is a blocked sorted vector: the entries sit in order in blocks of at most
//! [`MAX_BLOCK`], and a Fenwick tree over the block sizes gives the number of entries before
//! any block in O(log blocks). A rank is then a binary search over the blocks' last entries,
//! one prefix sum and a binary search inside one block; finding the entry at a position walks
//! the Fenwick tree down. An insert or a removal shifts at most one block (a memmove of a few
//! kilobytes) and updates the Fenwick tree; a block that grows past [`MAX_BLOCK`] is split and
//! an emptied one dropped, and only then is the Fenwick tree rebuilt (O(blocks), once per
//! thousand writes at worst).
//!
//! Why not a crate: the order-statistic trees on crates.io are either unmaintained or do not
//! offer "rank of the first entry failing a predicate", which the store needs for its mixed
//! keys (an instant, then a `user_id` prefix); and this is about 150 lines that a property
//! test checks against a plain sorted vector.

use std::cmp::Ordering;
use std::sync::Arc;

use super::store::Stored;

/// Entries per block before it is split in two. Big enough that a million entries make about
/// two thousand blocks, small enough that shifting a block on insert costs little.
const MAX_BLOCK: usize = 512;

/// One user in the index: its creation instant (UNIX milliseconds) and the user itself (whose
/// id breaks ties).
#[derive(Clone)]
pub struct Entry {
    pub ms: i64,
    pub user: Arc<Stored>,
}

impl Entry {
    pub fn id(&self) -> &str {
        self.user.id()
    }

    fn cmp_key(&self, ms: i64, id: &str) -> Ordering {
        self.ms.cmp(&ms).then_with(|| self.id().cmp(id))
    }
}

/// Users ordered by (`ms`, `id`), each at most once.
#[derive(Default)]
pub struct OrderIndex {
    blocks: Vec<Vec<Entry>>,
    /// Fenwick tree (1-based) over `blocks[i].len()`.
    fenwick: Vec<usize>,
    len: usize,
}

impl OrderIndex {
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.len
    }

    /// An index of `entries`, which must be sorted by (ms, id) without repeats: built in O(N),
    /// for a store loaded in bulk.
    pub fn from_sorted(entries: Vec<Entry>) -> OrderIndex {
        let len = entries.len();
        let mut blocks = Vec::with_capacity(len.div_ceil(MAX_BLOCK / 2));
        let mut entries = entries.into_iter();
        loop {
            // Half-full blocks, as splits leave them, so the first inserts do not split at once.
            let block: Vec<Entry> = entries.by_ref().take(MAX_BLOCK / 2).collect();
            if block.is_empty() {
                break;
            }
            blocks.push(block);
        }
        let mut index = OrderIndex {
            blocks,
            fenwick: Vec::new(),
            len,
        };
        index.rebuild();
        index
    }

    /// Adds an entry; the caller guarantees its (ms, id) is not in the index yet.
    pub fn insert(&mut self, entry: Entry) {
        self.len += 1;
        if self.blocks.is_empty() {
            self.blocks.push(vec![entry]);
            self.rebuild();
            return;
        }
        // The first block whose last entry is not below the new one; past the end, the last.
        let b = self
            .blocks
            .partition_point(|block| block_last(block).cmp_key(entry.ms, entry.id()).is_lt())
            .min(self.blocks.len() - 1);
        let block = &mut self.blocks[b];
        let at = block.partition_point(|e| e.cmp_key(entry.ms, entry.id()).is_lt());
        block.insert(at, entry);
        if block.len() > MAX_BLOCK {
            let upper = block.split_off(block.len() / 2);
            self.blocks.insert(b + 1, upper);
            self.rebuild();
        } else {
            self.add(b, 1);
        }
    }

    /// Removes the entry with this key; true when there was one.
    pub fn remove(&mut self, ms: i64, id: &str) -> bool {
        let b = self
            .blocks
            .partition_point(|block| block_last(block).cmp_key(ms, id).is_lt());
        let Some(block) = self.blocks.get_mut(b) else {
            return false;
        };
        let Ok(at) = block.binary_search_by(|e| e.cmp_key(ms, id)) else {
            return false;
        };
        block.remove(at);
        self.len -= 1;
        if block.is_empty() {
            self.blocks.remove(b);
            self.rebuild();
        } else {
            self.add(b, usize::MAX); // wrapping -1
        }
        true
    }

    /// How many entries satisfy `below`, which must hold for a prefix of the order (every
    /// entry for which it holds comes before every entry for which it does not).
    pub fn rank(&self, below: impl Fn(&Entry) -> bool) -> usize {
        let b = self
            .blocks
            .partition_point(|block| below(block_last(block)));
        match self.blocks.get(b) {
            None => self.len,
            Some(block) => self.prefix(b) + block.partition_point(&below),
        }
    }

    /// The entry at `position` (0-based, ascending order).
    pub fn get(&self, position: usize) -> Option<&Entry> {
        let (b, offset) = self.locate(position)?;
        self.blocks[b].get(offset)
    }

    /// The entries at positions `start..end`, in ascending order.
    pub fn range(&self, start: usize, end: usize) -> impl Iterator<Item = &Entry> {
        let end = end.min(self.len);
        let (first, rest) = match self.locate(start).filter(|_| start < end) {
            Some((b, offset)) => (&self.blocks[b][offset..], &self.blocks[b + 1..]),
            None => (&[][..], &[][..]),
        };
        first
            .iter()
            .chain(rest.iter().flatten())
            .take(end.saturating_sub(start))
    }

    /// The block holding `position` and the offset in it.
    fn locate(&self, position: usize) -> Option<(usize, usize)> {
        if position >= self.len {
            return None;
        }
        // Fenwick descent: the largest prefix of blocks holding at most `position` entries.
        let mut b = 0;
        let mut left = position;
        let mut step = self.fenwick.len().next_power_of_two();
        while step > 0 {
            let next = b + step;
            if next < self.fenwick.len() && self.fenwick[next] <= left {
                b = next;
                left -= self.fenwick[next];
            }
            step /= 2;
        }
        Some((b, left))
    }

    /// Entries in blocks `0..b`.
    fn prefix(&self, b: usize) -> usize {
        let mut i = b;
        let mut sum = 0;
        while i > 0 {
            sum += self.fenwick[i];
            i &= i - 1;
        }
        sum
    }

    /// Adds `delta` (wrapping, so `usize::MAX` is -1) to block `b`'s count.
    fn add(&mut self, b: usize, delta: usize) {
        let mut i = b + 1;
        while i < self.fenwick.len() {
            self.fenwick[i] = self.fenwick[i].wrapping_add(delta);
            i += i & i.wrapping_neg();
        }
    }

    /// Builds the Fenwick tree from the block sizes in O(blocks).
    fn rebuild(&mut self) {
        let n = self.blocks.len();
        self.fenwick = vec![0; n + 1];
        for (i, block) in self.blocks.iter().enumerate() {
            self.fenwick[i + 1] += block.len();
            let parent = (i + 1) + ((i + 1) & (i + 1).wrapping_neg());
            if parent <= n {
                self.fenwick[parent] += self.fenwick[i + 1];
            }
        }
    }
}

fn block_last(block: &[Entry]) -> &Entry {
    block.last().expect("blocks are never empty")
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    use serde_json::json;

    fn entry(ms: i64, id: &str) -> Entry {
        let user = json!({"user_id": id}).as_object().cloned().unwrap();
        Entry {
            ms,
            user: Arc::new(Stored::new(id, &user)),
        }
    }

    /// Random inserts and removals, checked after each batch against a sorted vector: length,
    /// every position, ranks of instants and ranges.
    #[test]
    fn agrees_with_a_sorted_vector_through_inserts_and_removals() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut index = OrderIndex::default();
        let mut truth: Vec<(i64, String)> = Vec::new();
        for round in 0..40 {
            for _ in 0..300 {
                let ms = rng.random_range(0..200);
                let id = format!("u{:05}", rng.random_range(0..20_000));
                match truth.binary_search(&(ms, id.clone())) {
                    Ok(at) if rng.random_bool(0.5) => {
                        truth.remove(at);
                        assert!(index.remove(ms, &id));
                    }
                    Ok(_) => assert!(!index.remove(ms + 1000, &id)),
                    Err(at) => {
                        truth.insert(at, (ms, id.clone()));
                        index.insert(entry(ms, &id));
                    }
                }
            }
            // Shrink now and then, so blocks empty out and go.
            if round % 7 == 6 {
                for (ms, id) in truth.drain(..truth.len() / 2) {
                    assert!(index.remove(ms, &id));
                }
            }
            assert_eq!(index.len(), truth.len());
            let listed: Vec<(i64, String)> = index
                .range(0, index.len())
                .map(|e| (e.ms, e.id().to_string()))
                .collect();
            assert_eq!(listed, truth);
            for _ in 0..50 {
                let t = rng.random_range(-1..201);
                let expected = truth.partition_point(|(ms, _)| *ms < t);
                assert_eq!(index.rank(|e| e.ms < t), expected, "rank of {t}");
                if let Some(p) = (!truth.is_empty()).then(|| rng.random_range(0..truth.len())) {
                    let e = index.get(p).unwrap();
                    assert_eq!((e.ms, e.id()), (truth[p].0, truth[p].1.as_str()));
                    let end = (p + rng.random_range(0..150)).min(truth.len() + 3);
                    let got: Vec<&str> = index.range(p, end).map(Entry::id).collect();
                    let want: Vec<&str> = truth[p..end.min(truth.len())]
                        .iter()
                        .map(|(_, id)| id.as_str())
                        .collect();
                    assert_eq!(got, want);
                }
            }
        }
        assert!(index.get(index.len()).is_none());
        assert_eq!(index.range(index.len(), index.len() + 5).count(), 0);
        // Built in bulk from the same entries: the same answers, and it takes writes.
        let mut bulk = OrderIndex::from_sorted(index.range(0, index.len()).cloned().collect());
        assert_eq!(bulk.len(), truth.len());
        for p in (0..truth.len()).step_by(37) {
            assert_eq!(bulk.get(p).map(Entry::id), Some(truth[p].1.as_str()));
        }
        bulk.insert(entry(-5, "first"));
        assert_eq!(bulk.get(0).map(Entry::id), Some("first"));
        assert!(bulk.remove(truth[0].0, &truth[0].1));
        assert_eq!(bulk.len(), truth.len());
        assert_eq!(index.range(index.len(), index.len() + 5).count(), 0);
    }
}
