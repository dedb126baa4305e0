//! Which ready task runs next: one FIFO run queue per task class, and a choice between the
//! classes by virtual runtime.
//!
//! Each class has `shares`. The time its polls take is charged to it as virtual time,
//! `elapsed × 1024 / shares`, and the ready class with the least virtual time runs next, so
//! busy classes share the CPU in proportion to their shares whatever their task counts or poll
//! lengths (a weighted fair queue over time, not round-robin by count). A class that was idle
//! rejoins at the busy classes' virtual time, so sleeping banks no credit.
//!
//! A [`Latency::Sensitive`] class that becomes ready runs at the next scheduling point, ahead
//! of the others, as long as it is less than [`SENSITIVE_LEAD`] of real CPU time ahead of its
//! fair share: it cannot starve batch work.
//!
//! A task is in its class's queue at most once (the slab's `Scheduled` state guarantees it), so
//! the queues' lengths add up to the number of ready tasks. The pure data structure knows
//! nothing of the slab or the ring: the reactor turn pushes, picks, pops and charges.

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::task::TaskId;

/// How far ahead of its fair share a latency-sensitive class may run before it waits its turn
/// like any other.
pub(crate) const SENSITIVE_LEAD: Duration = Duration::from_millis(2);

/// Virtual time per nanosecond of CPU is `VIRTUAL_SCALE / shares`.
const VIRTUAL_SCALE: u128 = 1024;

/// Whether a class's tasks should run as soon as they are ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Latency {
    /// Ready tasks take their turn by the class's share of CPU time.
    #[default]
    Normal,
    /// Ready tasks run at the next scheduling point, ahead of `Normal` classes, within a
    /// bounded lead over the class's fair share.
    Sensitive,
}

/// A scheduling class configured with [`Builder::task_class`](crate::Builder::task_class);
/// spawn into it with [`spawn_in`](crate::spawn_in).
///
/// Cheap to clone. A class belongs to the runtimes built by the builder that made it.
#[derive(Clone)]
pub struct TaskClass {
    pub(crate) index: u8,
    pub(crate) name: Arc<str>,
}

impl TaskClass {
    /// The name given to [`Builder::task_class`](crate::Builder::task_class).
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl fmt::Debug for TaskClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("TaskClass").field(&self.name).finish()
    }
}

/// A class's configuration, as the builder keeps it.
#[derive(Debug, Clone)]
pub(crate) struct ClassConfig {
    pub(crate) name: Arc<str>,
    pub(crate) shares: u32,
    pub(crate) latency: Latency,
    pub(crate) max_tasks: Option<usize>,
}

impl ClassConfig {
    pub(crate) fn default_class() -> ClassConfig {
        ClassConfig {
            name: Arc::from("default"),
            shares: 100,
            latency: Latency::Normal,
            max_tasks: None,
        }
    }
}

/// One class's queue and accounts.
#[derive(Debug)]
pub(crate) struct Class {
    pub(crate) config: ClassConfig,
    ready: VecDeque<TaskId>,
    /// CPU time charged, scaled by 1024 / shares, nanoseconds.
    vruntime: u128,
    /// The most virtual time the class may have and still jump the queue (Sensitive only).
    lead: u128,
    pub(crate) cpu: Duration,
    pub(crate) polls: u64,
}

/// The run queues of all classes.
#[derive(Debug)]
pub(crate) struct Scheduler {
    classes: Vec<Class>,
    /// Ready tasks across classes.
    ready: usize,
    /// The least virtual time of the classes that were busy at the last pick: where an idle
    /// class rejoins.
    floor: u128,
    /// Some Sensitive class has ready tasks.
    sensitive_ready: bool,
}

impl Scheduler {
    /// Class 0 is the default class `spawn` uses.
    pub(crate) fn new(configs: &[ClassConfig], capacity: usize) -> Scheduler {
        let classes = configs
            .iter()
            .enumerate()
            .map(|(i, config)| Class {
                config: config.clone(),
                ready: VecDeque::with_capacity(if i == 0 { capacity } else { 0 }),
                vruntime: 0,
                lead: SENSITIVE_LEAD.as_nanos() * VIRTUAL_SCALE / u128::from(config.shares.max(1)),
                cpu: Duration::ZERO,
                polls: 0,
            })
            .collect();
        Scheduler {
            classes,
            ready: 0,
            floor: 0,
            sensitive_ready: false,
        }
    }

    pub(crate) fn classes(&self) -> &[Class] {
        &self.classes
    }

    /// More than one class: the turn must time every poll.
    pub(crate) fn is_multi_class(&self) -> bool {
        self.classes.len() > 1
    }

    #[inline]
    pub(crate) fn push(&mut self, class: u8, id: TaskId) {
        let class = &mut self.classes[usize::from(class)];
        if class.ready.is_empty() {
            class.vruntime = class.vruntime.max(self.floor);
            if class.config.latency == Latency::Sensitive {
                self.sensitive_ready = true;
            }
        }
        class.ready.push_back(id);
        self.ready += 1;
    }

    /// The class to run next, if any task is ready.
    pub(crate) fn pick(&mut self) -> Option<u8> {
        if self.ready == 0 {
            return None;
        }
        let mut best: Option<(usize, u128)> = None;
        let mut sensitive: Option<(usize, u128)> = None;
        for (i, class) in self.classes.iter().enumerate() {
            if class.ready.is_empty() {
                continue;
            }
            if best.is_none_or(|(_, v)| class.vruntime < v) {
                best = Some((i, class.vruntime));
            }
            if class.config.latency == Latency::Sensitive
                && sensitive.is_none_or(|(_, v)| class.vruntime < v)
            {
                sensitive = Some((i, class.vruntime));
            }
        }
        let (best, floor) = best?;
        self.floor = self.floor.max(floor);
        self.sensitive_ready = sensitive.is_some();
        let chosen = match sensitive {
            Some((i, v)) if v <= floor + self.classes[i].lead => i,
            _ => best,
        };
        Some(chosen as u8)
    }

    #[inline]
    pub(crate) fn pop(&mut self, class: u8) -> Option<TaskId> {
        let id = self.classes[usize::from(class)].ready.pop_front()?;
        self.ready -= 1;
        Some(id)
    }

    /// Counts `polls` polls of `class` whose time was not measured (a runtime with one class).
    pub(crate) fn count_polls(&mut self, class: u8, polls: u64) {
        self.classes[usize::from(class)].polls += polls;
    }

    /// Charges `polls` polls that took `elapsed` to `class`.
    pub(crate) fn charge(&mut self, class: u8, elapsed: Duration, polls: u64) {
        self.count_polls(class, polls);
        let class = &mut self.classes[usize::from(class)];
        class.cpu += elapsed;
        class.vruntime +=
            elapsed.as_nanos() * VIRTUAL_SCALE / u128::from(class.config.shares.max(1));
    }

    /// A Sensitive class other than `running` is waiting: end the current batch.
    pub(crate) fn should_preempt(&self, running: u8) -> bool {
        self.sensitive_ready
            && self.classes[usize::from(running)].config.latency != Latency::Sensitive
    }

    pub(crate) fn len(&self) -> usize {
        self.ready
    }

    /// Forgets every queued task (shutdown drops them).
    pub(crate) fn clear(&mut self) {
        for class in &mut self.classes {
            class.ready.clear();
        }
        self.ready = 0;
        self.sensitive_ready = false;
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.ready == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(key: u32) -> TaskId {
        TaskId { key, generation: 0 }
    }

    fn config(name: &str, shares: u32, latency: Latency) -> ClassConfig {
        ClassConfig {
            name: Arc::from(name),
            shares,
            latency,
            max_tasks: None,
        }
    }

    /// Two always-ready classes, each poll costing 1 ms: the CPU splits by shares.
    #[test]
    fn busy_classes_share_time_by_shares() {
        let mut s = Scheduler::new(
            &[
                ClassConfig::default_class(),
                config("a", 1, Latency::Normal),
                config("b", 3, Latency::Normal),
            ],
            0,
        );
        s.push(1, id(1));
        s.push(2, id(2));
        let mut ran = [0u32; 3];
        for _ in 0..4000 {
            let class = s.pick().unwrap();
            let task = s.pop(class).unwrap();
            s.charge(class, Duration::from_millis(1), 1);
            ran[usize::from(class)] += 1;
            s.push(class, task);
        }
        assert_eq!(ran[0], 0);
        assert!((990..=1010).contains(&ran[1]), "{ran:?}");
        assert!((2990..=3010).contains(&ran[2]), "{ran:?}");
    }

    /// A class that slept does not come back with credit for the time it was away.
    #[test]
    fn an_idle_class_rejoins_at_the_floor() {
        let mut s = Scheduler::new(
            &[
                ClassConfig::default_class(),
                config("a", 100, Latency::Normal),
            ],
            0,
        );
        s.push(0, id(1));
        for _ in 0..1000 {
            let class = s.pick().unwrap();
            let task = s.pop(class).unwrap();
            s.charge(class, Duration::from_millis(1), 1);
            s.push(class, task);
        }
        s.push(1, id(2));
        let mut ran = [0u32; 2];
        for _ in 0..100 {
            let class = s.pick().unwrap();
            let task = s.pop(class).unwrap();
            s.charge(class, Duration::from_millis(1), 1);
            ran[usize::from(class)] += 1;
            s.push(class, task);
        }
        assert!((45..=55).contains(&ran[1]), "{ran:?}");
    }

    /// A sensitive class jumps the queue, but only within its lead.
    #[test]
    fn a_sensitive_class_runs_first_within_its_lead() {
        let mut s = Scheduler::new(
            &[
                ClassConfig::default_class(),
                config("rt", 100, Latency::Sensitive),
            ],
            0,
        );
        for k in 0..10 {
            s.push(0, id(k));
        }
        s.charge(0, Duration::from_millis(50), 1);
        s.push(1, id(100));
        assert!(s.should_preempt(0));
        assert_eq!(s.pick(), Some(1));
        // Hog: always ready, 1 ms a poll. It runs ahead by its lead, then alternates.
        let mut in_a_row = 0;
        loop {
            let class = s.pick().unwrap();
            let task = s.pop(class).unwrap();
            s.charge(class, Duration::from_millis(1), 1);
            s.push(class, task);
            if class != 1 {
                break;
            }
            in_a_row += 1;
            assert!(
                in_a_row < 100,
                "the sensitive class starves the default one"
            );
        }
        assert!(in_a_row >= 50, "ran {in_a_row} in a row");
    }
}
