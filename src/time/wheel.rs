//! A hierarchical hashed timer wheel: pure data, ticks in, keys out.
//!
//! There are [`LEVELS`] levels of 64 slots. Level `k` slot `s` holds the entries whose deadline
//! agrees with `elapsed` on every bit above group `k` (a group is 6 bits) and has `s` in group
//! `k`; so level 0 slots are single ticks, level 1 slots span 64 ticks, and so on, and 11 levels
//! cover every `u64` tick. Each slot is an intrusive doubly linked list through the entries'
//! slab, so insert and cancel are O(1); an `occupied` bitmask per level finds the next
//! non-empty slot in O(levels).
//!
//! # Ground rules
//!
//! - An entry never fires before its deadline: it fires only from a level-0 slot, whose tick is
//!   exactly its deadline, or from the expired list when it was inserted already due.
//! - [`Wheel::advance`] processes slots in order of their start tick; a higher-level slot is
//!   cascaded (its entries relinked below) when `elapsed` reaches its start, so entries fire in
//!   deadline order and at most one `advance` after their deadline.
//! - A fired entry stays in the slab, marked fired, until its owner removes or resets it: the
//!   owner holds the key, so a key is never reused while someone can still name it.

use slab::Slab;

/// Number of levels; `6 * LEVELS >= 64`, so every deadline has a slot.
pub(crate) const LEVELS: usize = 11;
const SLOTS: usize = 64;
const NIL: usize = usize::MAX;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    Slot { level: u8, slot: u8 },
    Expired,
    Fired,
}

#[derive(Debug)]
struct Entry<T> {
    deadline: u64,
    place: Place,
    prev: usize,
    next: usize,
    value: T,
}

#[derive(Debug)]
struct Level {
    occupied: u64,
    heads: [usize; SLOTS],
}

/// Timers keyed by `usize`, each carrying a `T` (the runtime stores the `Waker` to wake).
#[derive(Debug)]
pub(crate) struct Wheel<T> {
    elapsed: u64,
    entries: Slab<Entry<T>>,
    levels: [Level; LEVELS],
    /// Entries inserted already due (deadline <= elapsed): fired by the next `advance`.
    expired: usize,
}

impl<T> Default for Wheel<T> {
    fn default() -> Self {
        Self::new()
    }
}

fn level_for(elapsed: u64, deadline: u64) -> usize {
    let masked = (elapsed ^ deadline) | (SLOTS as u64 - 1);
    let significant = 63 - masked.leading_zeros() as usize;
    significant / 6
}

fn slot_for(deadline: u64, level: usize) -> usize {
    ((deadline >> (6 * level)) & (SLOTS as u64 - 1)) as usize
}

/// The first tick of `slot` at `level`, in the level-`level + 1` block that contains `elapsed`.
fn slot_start(elapsed: u64, level: usize, slot: usize) -> u64 {
    let block_bits = 6 * (level + 1);
    let block = if block_bits >= 64 {
        0
    } else {
        elapsed & !((1u64 << block_bits) - 1)
    };
    block | ((slot as u64) << (6 * level))
}

impl<T> Wheel<T> {
    pub(crate) fn new() -> Self {
        Wheel {
            elapsed: 0,
            entries: Slab::new(),
            levels: std::array::from_fn(|_| Level {
                occupied: 0,
                heads: [NIL; SLOTS],
            }),
            expired: NIL,
        }
    }

    /// Entries in the wheel, fired or not.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// The tick up to which the wheel has advanced.
    pub(crate) fn elapsed(&self) -> u64 {
        self.elapsed
    }

    /// Adds a timer for `deadline`. A deadline already due fires at the next `advance`.
    pub(crate) fn insert(&mut self, deadline: u64, value: T) -> usize {
        let key = self.entries.insert(Entry {
            deadline,
            place: Place::Fired,
            prev: NIL,
            next: NIL,
            value,
        });
        self.link(key);
        key
    }

    /// Removes a timer, fired or not, and returns its value.
    ///
    /// # Panics
    ///
    /// If `key` is not in the wheel.
    pub(crate) fn remove(&mut self, key: usize) -> T {
        self.unlink(key);
        self.entries.remove(key).value
    }

    /// Moves a timer, fired or not, to a new deadline.
    pub(crate) fn reset(&mut self, key: usize, deadline: u64) {
        self.unlink(key);
        self.entries[key].deadline = deadline;
        self.link(key);
    }

    /// Whether the timer has fired (and not been reset since).
    pub(crate) fn is_fired(&self, key: usize) -> bool {
        self.entries[key].place == Place::Fired
    }

    /// The value stored with a timer.
    pub(crate) fn value_mut(&mut self, key: usize) -> &mut T {
        &mut self.entries[key].value
    }

    /// The earliest tick at which `advance` would fire or cascade something, if any.
    #[inline]
    pub(crate) fn next_deadline(&self) -> Option<u64> {
        if self.expired != NIL {
            return Some(self.elapsed);
        }
        if self.len() == 0 {
            // The reactor asks before every sleep; most servers have no timer pending.
            return None;
        }
        self.next_slot().map(|(_, _, start)| start)
    }

    /// Fires, in deadline order, every timer with `deadline <= now`, calling `fire` on each.
    pub(crate) fn advance(&mut self, now: u64, mut fire: impl FnMut(usize, &mut T)) {
        while self.expired != NIL {
            let key = self.expired;
            self.unlink(key);
            self.entries[key].place = Place::Fired;
            fire(key, &mut self.entries[key].value);
        }
        while let Some((level, slot, start)) = self.next_slot() {
            if start > now {
                break;
            }
            self.elapsed = self.elapsed.max(start);
            // One entry at a time, unlinked before `fire` runs: if `fire` unwinds, the wheel is
            // consistent and the rest of the slot fires on the next `advance`.
            loop {
                let key = self.levels[level].heads[slot];
                if key == NIL {
                    break;
                }
                self.unlink(key);
                if level == 0 {
                    fire(key, &mut self.entries[key].value);
                } else {
                    // Cascade: relative to the slot's start it lands on a lower level.
                    self.link_at(key, false);
                }
            }
        }
        self.elapsed = self.elapsed.max(now);
    }

    fn next_slot(&self) -> Option<(usize, usize, u64)> {
        let mut best: Option<(usize, usize, u64)> = None;
        for (level, lvl) in self.levels.iter().enumerate() {
            let current = slot_for(self.elapsed, level);
            let ahead = lvl.occupied & (u64::MAX << current);
            if ahead == 0 {
                continue;
            }
            let slot = ahead.trailing_zeros() as usize;
            let start = slot_start(self.elapsed, level, slot);
            if best.is_none_or(|(_, _, s)| start < s) {
                best = Some((level, slot, start));
            }
        }
        best
    }

    fn link(&mut self, key: usize) {
        self.link_at(key, true);
    }

    /// Links an unlinked entry. A user insert that is already due goes to the expired list; a
    /// cascaded entry due exactly now goes to the current level-0 slot.
    fn link_at(&mut self, key: usize, user_insert: bool) {
        let deadline = self.entries[key].deadline;
        let head = if user_insert && deadline <= self.elapsed {
            self.entries[key].place = Place::Expired;
            &mut self.expired
        } else {
            let level = level_for(self.elapsed, deadline);
            let slot = slot_for(deadline, level);
            self.entries[key].place = Place::Slot {
                level: level as u8,
                slot: slot as u8,
            };
            self.levels[level].occupied |= 1 << slot;
            &mut self.levels[level].heads[slot]
        };
        let old = std::mem::replace(head, key);
        self.entries[key].next = old;
        self.entries[key].prev = NIL;
        if old != NIL {
            self.entries[old].prev = key;
        }
    }

    fn unlink(&mut self, key: usize) {
        let Entry {
            place, prev, next, ..
        } = self.entries[key];
        let head = match place {
            Place::Fired => return,
            Place::Expired => &mut self.expired,
            Place::Slot { level, slot } => &mut self.levels[level as usize].heads[slot as usize],
        };
        if *head == key {
            *head = next;
            if next == NIL {
                if let Place::Slot { level, slot } = place {
                    self.levels[level as usize].occupied &= !(1 << slot);
                }
            }
        } else {
            self.entries[prev].next = next;
        }
        if next != NIL {
            self.entries[next].prev = prev;
        }
        let entry = &mut self.entries[key];
        entry.prev = NIL;
        entry.next = NIL;
        entry.place = Place::Fired;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    #[test]
    fn a_panicking_fire_callback_leaves_the_wheel_consistent() {
        let mut wheel = Wheel::new();
        for v in 0..5u32 {
            wheel.insert(10, v);
        }
        wheel.insert(5000, 99);
        let mut seen = Vec::new();
        let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            wheel.advance(20, |_, v| {
                seen.push(*v);
                assert!(seen.len() != 2, "second timer's waker panics");
            })
        }));
        assert!(unwound.is_err());
        let rest = fired(&mut wheel, 20);
        assert_eq!(
            seen.len() + rest.len(),
            5,
            "every due timer fires exactly once"
        );
        assert_eq!(fired(&mut wheel, 5000), vec![99]);
    }

    fn fired(wheel: &mut Wheel<u32>, now: u64) -> Vec<u32> {
        let mut out = Vec::new();
        wheel.advance(now, |_, v| out.push(*v));
        out
    }

    #[test]
    fn fires_at_the_deadline_not_before() {
        let mut wheel = Wheel::new();
        wheel.insert(100, 1);
        assert!(fired(&mut wheel, 99).is_empty());
        assert_eq!(fired(&mut wheel, 100), vec![1]);
        assert!(fired(&mut wheel, 1000).is_empty());
    }

    #[test]
    fn crosses_level_boundaries_in_order() {
        let mut wheel = Wheel::new();
        let deadlines = [
            63,
            64,
            65,
            4095,
            4096,
            4097,
            262_143,
            262_144,
            1 << 40,
            u64::MAX,
        ];
        for (i, d) in deadlines.iter().enumerate() {
            wheel.insert(*d, i as u32);
        }
        let mut order = Vec::new();
        for d in deadlines {
            assert_eq!(wheel.next_deadline().map(|n| n <= d), Some(true));
            order.extend(
                fired(&mut wheel, d - 1)
                    .iter()
                    .map(|v| deadlines[*v as usize]),
            );
            assert!(order.iter().all(|fired_d| *fired_d < d), "fired early");
            order.extend(fired(&mut wheel, d).iter().map(|v| deadlines[*v as usize]));
        }
        assert_eq!(order, deadlines);
    }

    #[test]
    fn already_due_insert_fires_on_next_advance() {
        let mut wheel = Wheel::new();
        wheel.advance(500, |_, _: &mut u32| {});
        let key = wheel.insert(10, 7);
        assert_eq!(wheel.next_deadline(), Some(500));
        assert_eq!(fired(&mut wheel, 500), vec![7]);
        assert!(wheel.is_fired(key));
        wheel.reset(key, 600);
        assert!(!wheel.is_fired(key));
        assert_eq!(fired(&mut wheel, 600), vec![7]);
        wheel.remove(key);
        assert_eq!(wheel.len(), 0);
    }

    #[test]
    fn removing_a_million_pending_timers_empties_the_wheel() {
        let mut wheel = Wheel::new();
        let keys: Vec<_> = (0..1_000_000u64)
            .map(|i| wheel.insert(i * 7919 % 10_000_000 + 1, 0u32))
            .collect();
        for key in keys {
            wheel.remove(key);
        }
        assert_eq!(wheel.len(), 0);
        assert_eq!(wheel.next_deadline(), None);
    }

    #[derive(Debug, Clone)]
    enum Action {
        Insert(u64),
        Cancel(usize),
        Reset(usize, u64),
        Advance(u64),
    }

    fn delay() -> impl Strategy<Value = u64> {
        prop_oneof![
            0..3u64,
            60..70u64,
            4090..4100u64,
            0..300_000u64,
            (0..64u32).prop_map(|shift| 1u64 << shift),
            Just(u64::MAX / 2),
        ]
    }

    fn action() -> impl Strategy<Value = Action> {
        prop_oneof![
            4 => delay().prop_map(Action::Insert),
            1 => any::<usize>().prop_map(Action::Cancel),
            1 => (any::<usize>(), delay()).prop_map(|(i, d)| Action::Reset(i, d)),
            3 => delay().prop_map(Action::Advance),
        ]
    }

    proptest! {
        /// The wheel against a `BTreeMap` model: never early, never late, deadline order.
        #[test]
        fn wheel_matches_btreemap_model(actions in proptest::collection::vec(action(), 1..200)) {
            let mut wheel = Wheel::new();
            // model: (deadline, id) -> key; live ids with their deadlines and fired state.
            let mut model: BTreeMap<(u64, u32), usize> = BTreeMap::new();
            let mut live: Vec<(u32, usize, u64, bool)> = Vec::new();
            let mut now = 0u64;
            let mut next_id = 0u32;
            for action in actions {
                match action {
                    Action::Insert(d) => {
                        let deadline = now.saturating_add(d);
                        let key = wheel.insert(deadline, next_id);
                        model.insert((deadline, next_id), key);
                        live.push((next_id, key, deadline, false));
                        next_id += 1;
                    }
                    Action::Cancel(i) if !live.is_empty() => {
                        let (id, key, deadline, _) = live.swap_remove(i % live.len());
                        prop_assert_eq!(wheel.remove(key), id);
                        model.remove(&(deadline, id));
                    }
                    Action::Reset(i, d) if !live.is_empty() => {
                        let i = i % live.len();
                        let (id, key, old, _) = live[i];
                        let deadline = now.saturating_add(d);
                        model.remove(&(old, id));
                        wheel.reset(key, deadline);
                        model.insert((deadline, id), key);
                        live[i] = (id, key, deadline, false);
                    }
                    Action::Advance(d) => {
                        now = now.saturating_add(d);
                        let mut got = Vec::new();
                        wheel.advance(now, |_, v| got.push(*v));
                        let due: Vec<(u64, u32)> = model.range(..=(now, u32::MAX)).map(|(k, _)| *k).collect();
                        for k in &due {
                            model.remove(k);
                        }
                        // Same set, and deadlines non-decreasing in firing order.
                        let mut got_sorted = got.clone();
                        got_sorted.sort_unstable();
                        let mut want: Vec<u32> = due.iter().map(|(_, id)| *id).collect();
                        want.sort_unstable();
                        prop_assert_eq!(got_sorted, want);
                        let deadline_of = |id: u32| live.iter().find(|l| l.0 == id).unwrap().2;
                        for pair in got.windows(2) {
                            prop_assert!(deadline_of(pair[0]) <= deadline_of(pair[1]));
                        }
                        for l in live.iter_mut() {
                            if got.contains(&l.0) {
                                prop_assert!(!l.3, "fired twice");
                                l.3 = true;
                            }
                        }
                        for l in &live {
                            prop_assert_eq!(wheel.is_fired(l.1), l.3 || l.2 <= now);
                        }
                        if let Some(next) = wheel.next_deadline() {
                            let earliest = model.keys().next().map(|k| k.0);
                            prop_assert!(earliest.is_none_or(|e| next <= e), "next_deadline after the earliest timer");
                        } else {
                            prop_assert!(model.is_empty());
                        }
                    }
                    _ => {}
                }
            }
            prop_assert_eq!(wheel.len(), live.len());
        }
    }
}
