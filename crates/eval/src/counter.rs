//! A string counter that remembers first-insertion order, so that `most_common` breaks ties the
//! way Python's `collections.Counter.most_common` does.

use std::collections::HashMap;

/// Counts strings; [`most_common`](Self::most_common) orders equal counts by first insertion.
#[derive(Debug, Default, Clone)]
pub struct OrderedCounter {
    index: HashMap<String, usize>,
    items: Vec<(String, u64)>,
}

impl OrderedCounter {
    /// An empty counter.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one to `key`.
    pub fn add(&mut self, key: &str) {
        match self.index.get(key) {
            Some(&i) => {
                if let Some(item) = self.items.get_mut(i) {
                    item.1 += 1;
                }
            }
            None => {
                self.index.insert(key.to_string(), self.items.len());
                self.items.push((key.to_string(), 1));
            }
        }
    }

    /// The sum of all counts.
    pub fn total(&self) -> u64 {
        self.items.iter().map(|(_, n)| n).sum()
    }

    /// The `n` most common keys, most frequent first, ties in first-insertion order (as
    /// `Counter.most_common(n)`, which is `heapq.nlargest`, a stable selection).
    pub fn most_common(&self, n: usize) -> Vec<(String, u64)> {
        let mut order: Vec<usize> = (0..self.items.len()).collect();
        // stable: equal counts keep insertion order
        order.sort_by_key(|&i| std::cmp::Reverse(self.items[i].1));
        order
            .into_iter()
            .take(n)
            .map(|i| self.items[i].clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ties_keep_first_insertion_order() {
        let mut c = OrderedCounter::new();
        for k in ["b", "a", "c", "a", "d", "c", "e"] {
            c.add(k);
        }
        // Python: Counter("bacadce").most_common() == [('a',2),('c',2),('b',1),('d',1),('e',1)]
        let got = c.most_common(10);
        let want = [("a", 2), ("c", 2), ("b", 1), ("d", 1), ("e", 1)];
        assert_eq!(got.len(), want.len());
        for ((k, n), (wk, wn)) in got.iter().zip(want) {
            assert_eq!((k.as_str(), *n), (wk, wn));
        }
        assert_eq!(c.most_common(1), [("a".to_string(), 2)]);
        assert!(c.most_common(0).is_empty());
        assert_eq!(c.total(), 7);
    }
}
