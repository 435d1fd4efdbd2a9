//! Puts what finishes out of order back in input order: records are applied concurrently and
//! finish as their requests answer, but a dry-run plan is read top to bottom beside its input.
//!
//! Items are keyed by their record's position (1, 2, 3, … with no gaps in a run that reads
//! every record). One is released as soon as every position before it has come; the rest
//! wait. The wait is bounded: at most `limit` items are held (the pipeline keeps far fewer in
//! flight), and past that the earliest goes out, skipping a position that never came (a
//! record an earlier run finished, the input's broken-off end). [`InOrder::drain`] releases
//! what is left, in order.

use std::collections::BTreeMap;

/// Items waiting for the positions before them.
pub(super) struct InOrder<T> {
    next: u64,
    waiting: BTreeMap<u64, T>,
    limit: usize,
}

impl<T> InOrder<T> {
    /// Starts at position 1; holds at most `limit` items (at least one).
    pub fn new(limit: usize) -> InOrder<T> {
        InOrder {
            next: 1,
            waiting: BTreeMap::new(),
            limit: limit.max(1),
        }
    }

    /// Takes the item of `position`; returns those now released, in order.
    pub fn push(&mut self, position: u64, item: T) -> Vec<T> {
        self.waiting.insert(position, item);
        let mut out = Vec::new();
        while let Some(&first) = self.waiting.keys().next() {
            if first != self.next && self.waiting.len() <= self.limit {
                break;
            }
            self.next = first + 1;
            out.extend(self.waiting.remove(&first));
        }
        out
    }

    /// Releases everything left, in order.
    pub fn drain(&mut self) -> Vec<T> {
        std::mem::take(&mut self.waiting).into_values().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_come_out_in_position_order_whatever_order_they_finish_in() {
        let mut order = InOrder::new(100);
        let mut out = Vec::new();
        for position in [3, 1, 2, 6, 5, 4] {
            out.extend(order.push(position, position));
        }
        assert_eq!(out, [1, 2, 3, 4, 5, 6]);
        assert!(order.drain().is_empty());
    }

    #[test]
    fn a_position_that_never_comes_holds_back_at_most_the_limit() {
        let mut order = InOrder::new(2);
        // Position 1 never comes (an earlier run finished it).
        assert!(order.push(2, 2).is_empty());
        assert!(order.push(3, 3).is_empty());
        assert_eq!(order.push(4, 4), [2, 3, 4]);
        assert_eq!(order.push(5, 5), [5]);
        assert!(order.push(7, 7).is_empty());
        assert_eq!(order.drain(), [7]);
    }
}
