//! The connection table: `conn_id` → per-connection state, bounded, with
//! least-recently-used eviction.
//!
//! Why this shape: every data event looks its connection up, and a busy
//! machine can have tens of thousands of connections, so lookup, touch,
//! insert, remove and evict must all be O(1). A `HashMap` gives the index
//! into a slab of slots; the slots form an intrusive doubly-linked list in
//! recency order (head = most recent), so touching a connection is a few
//! index writes and evicting is unlinking the tail. No per-event allocation.
//!
//! Keys are kernel-assigned connection ids (not chosen by traffic), so a
//! cheap multiplicative hash is used instead of SipHash.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// "No slot" in the intrusive list.
const NIL: u32 = u32::MAX;

/// Multiplicative hash for 64-bit ids (fxhash-like, with a final fold so
/// both high and low bits vary).
#[derive(Default, Clone, Copy)]
pub(crate) struct IdHasher(u64);

const K: u64 = 0x9e37_79b9_7f4a_7c15;

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(K);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(K);
    }
    fn finish(&self) -> u64 {
        self.0 ^ (self.0 >> 29)
    }
}

/// A slot of the slab. The value is boxed: the slab grows by doubling and
/// keeps its free slots, so an inline value (a connection is a few hundred
/// bytes) made every free or spare slot cost as much as a live connection;
/// boxed, a live connection costs its size and a free slot 24 bytes.
#[derive(Debug)]
struct Slot<T> {
    id: u64,
    val: Option<Box<T>>,
    prev: u32,
    next: u32,
}

/// A bounded map from connection id to `T` that evicts the least recently
/// used entry when full.
#[derive(Debug)]
pub(crate) struct LruTable<T> {
    map: HashMap<u64, u32, BuildHasherDefault<IdHasher>>,
    slots: Vec<Slot<T>>,
    free: Vec<u32>,
    /// Most recently used slot.
    head: u32,
    /// Least recently used slot.
    tail: u32,
    cap: usize,
}

impl<T> LruTable<T> {
    /// A table holding at most `cap` entries (at least 1).
    pub fn new(cap: usize) -> Self {
        let cap = cap.clamp(1, (NIL - 1) as usize);
        LruTable {
            map: HashMap::default(),
            slots: Vec::new(),
            free: Vec::new(),
            head: NIL,
            tail: NIL,
            cap,
        }
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    fn slot(&mut self, i: u32) -> Option<&mut Slot<T>> {
        self.slots.get_mut(i as usize)
    }

    fn unlink(&mut self, i: u32) {
        let (prev, next) = match self.slot(i) {
            Some(s) => (s.prev, s.next),
            None => return,
        };
        match self.slot(prev) {
            Some(p) => p.next = next,
            None => self.head = next,
        }
        match self.slot(next) {
            Some(n) => n.prev = prev,
            None => self.tail = prev,
        }
        if let Some(s) = self.slot(i) {
            s.prev = NIL;
            s.next = NIL;
        }
    }

    fn push_front(&mut self, i: u32) {
        let old = self.head;
        if let Some(s) = self.slot(i) {
            s.prev = NIL;
            s.next = old;
        }
        match self.slot(old) {
            Some(o) => o.prev = i,
            None => self.tail = i,
        }
        self.head = i;
    }

    fn touch(&mut self, i: u32) {
        if self.head != i {
            self.unlink(i);
            self.push_front(i);
        }
    }

    /// The entry for `id`, without marking it used.
    pub fn peek(&self, id: u64) -> Option<&T> {
        let i = *self.map.get(&id)?;
        self.slots.get(i as usize)?.val.as_deref()
    }

    /// The entry for `id`, mutable, without marking it used.
    pub fn peek_mut(&mut self, id: u64) -> Option<&mut T> {
        let i = *self.map.get(&id)?;
        self.slots.get_mut(i as usize)?.val.as_deref_mut()
    }

    /// The entry for `id`, marked most recently used.
    #[cfg(test)]
    pub fn get_mut(&mut self, id: u64) -> Option<&mut T> {
        let i = *self.map.get(&id)?;
        self.touch(i);
        self.slots.get_mut(i as usize)?.val.as_deref_mut()
    }

    /// The entry for `id` (marked most recently used), created with `make`
    /// if absent. Creating may evict the least recently used entry, which is
    /// returned with its id.
    pub fn entry(
        &mut self,
        id: u64,
        make: impl FnOnce() -> T,
    ) -> (Option<&mut T>, Option<(u64, T)>) {
        if let Some(&i) = self.map.get(&id) {
            self.touch(i);
            return (
                self.slots
                    .get_mut(i as usize)
                    .and_then(|s| s.val.as_deref_mut()),
                None,
            );
        }
        let evicted = if self.map.len() >= self.cap {
            self.pop_lru()
        } else {
            None
        };
        let slot = Slot {
            id,
            val: Some(Box::new(make())),
            prev: NIL,
            next: NIL,
        };
        let i = match self.free.pop() {
            Some(i) => {
                if let Some(s) = self.slot(i) {
                    *s = slot;
                }
                i
            }
            None => {
                // len < cap <= NIL - 1, so the index fits.
                let i = self.slots.len() as u32;
                self.slots.push(slot);
                i
            }
        };
        self.map.insert(id, i);
        self.push_front(i);
        (
            self.slots
                .get_mut(i as usize)
                .and_then(|s| s.val.as_deref_mut()),
            evicted,
        )
    }

    fn take(&mut self, i: u32) -> Option<(u64, T)> {
        self.unlink(i);
        let s = self.slot(i)?;
        let id = s.id;
        let val = s.val.take()?;
        self.map.remove(&id);
        self.free.push(i);
        Some((id, *val))
    }

    /// Remove and return the least recently used entry.
    pub fn pop_lru(&mut self) -> Option<(u64, T)> {
        if self.tail == NIL {
            return None;
        }
        self.take(self.tail)
    }

    /// Remove the entry for `id`.
    pub fn remove(&mut self, id: u64) -> Option<T> {
        let i = *self.map.get(&id)?;
        self.take(i).map(|(_, v)| v)
    }

    /// Every entry, in no particular order.
    pub fn values(&self) -> impl Iterator<Item = &T> {
        self.slots.iter().filter_map(|s| s.val.as_deref())
    }

    /// Every entry, mutably (recency untouched), in no particular order.
    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut T> {
        self.slots.iter_mut().filter_map(|s| s.val.as_deref_mut())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_least_recently_used() {
        let mut t = LruTable::new(3);
        for id in 1..=3 {
            let (_, ev) = t.entry(id, || id * 10);
            assert!(ev.is_none());
        }
        // Touch 1 so that 2 is now the oldest.
        assert_eq!(t.get_mut(1).copied(), Some(10));
        let (v, ev) = t.entry(4, || 40);
        assert_eq!(v.copied(), Some(40));
        assert_eq!(ev, Some((2, 20)));
        assert_eq!(t.len(), 3);
        assert!(t.get_mut(2).is_none());
        // Existing entry: no eviction, value kept.
        let (v, ev) = t.entry(3, || 999);
        assert_eq!((v.copied(), ev), (Some(30), None));
        // Now 1 is the oldest (order: 3, 4, 1).
        assert_eq!(t.pop_lru(), Some((1, 10)));
        assert_eq!(t.pop_lru(), Some((4, 40)));
        assert_eq!(t.pop_lru(), Some((3, 30)));
        assert_eq!(t.pop_lru(), None);
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn remove_and_slot_reuse() {
        let mut t = LruTable::new(10);
        for id in 0..5u64 {
            t.entry(id, || id);
        }
        assert_eq!(t.remove(2), Some(2));
        assert_eq!(t.remove(2), None);
        assert_eq!(t.remove(0), Some(0)); // the tail
        assert_eq!(t.remove(4), Some(4)); // the head
        t.entry(7, || 7);
        assert_eq!(t.slots.len(), 5, "freed slots are reused");
        let mut v: Vec<u64> = t.values().copied().collect();
        v.sort();
        assert_eq!(v, vec![1, 3, 7]);
        assert_eq!(t.pop_lru(), Some((1, 1)));
        assert_eq!(t.pop_lru(), Some((3, 3)));
        assert_eq!(t.pop_lru(), Some((7, 7)));
    }

    #[test]
    fn churn_keeps_bound_and_list_consistent() {
        let mut t = LruTable::new(16);
        let mut x: u64 = 1;
        for _ in 0..10_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let id = x % 64;
            match x % 3 {
                0 => {
                    t.remove(id);
                }
                _ => {
                    t.entry(id, || id);
                }
            }
            assert!(t.len() <= 16);
        }
        // Walking the list from head reaches every entry exactly once.
        let mut n = 0;
        let mut i = t.head;
        while i != NIL {
            n += 1;
            i = t.slots[i as usize].next;
        }
        assert_eq!(n, t.len());
    }
}
