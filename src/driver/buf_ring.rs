//! Buffer pools: equal buffers the kernel receives into, each owned by one [`PooledBuf`] while
//! it holds data.
//!
//! On Linux 5.19+ a pool is a provided-buffer ring (`IORING_REGISTER_PBUF_RING`): the kernel
//! picks a buffer only when a receive completes, so an idle connection holds none. Where the
//! kernel has no such rings (or [`Builder::buf_rings`](crate::Builder::buf_rings) turns them
//! off) the pool keeps its buffers as spares instead and lends one to each receive it arms.
//!
//! The pool owns one slab of `entries * buf_size` bytes the kernel writes into and, as a ring,
//! the ring of `entries` descriptors the kernel reads (page aligned, as the kernel requires).
//! A [`PooledBuf`] owns one buffer id from the moment a CQE hands it out until it is dropped,
//! which puts the buffer back.
//!
//! # Invariants
//!
//! - (P1) A buffer id is in exactly one place: in the ring (the kernel may write into it at
//!   any time), among the spares (nobody touches it), lent to one armed receive (the kernel
//!   writes into it until that receive's CQE), or owned by one `PooledBuf` (the kernel will not
//!   touch it). Only a `PooledBuf` creates a slice over its buffer.
//! - (P2) The allocations live until the group is unregistered (as a ring) and no receive
//!   holds the pool (every op that points into it holds an `Rc` to it until its last CQE),
//!   or are leaked if that cannot be done (the runtime shut down first).
//! - (P3) The ring tail is written only here, with a release store after the descriptor it
//!   publishes.

use std::alloc::{self, Layout};
use std::cell::{Cell, RefCell};
use std::io;
use std::mem::offset_of;
use std::ptr::NonNull;
use std::rc::Rc;
use std::sync::atomic::{AtomicU16, Ordering};
use std::task::Waker;

use super::Driver;

/// The kernel's `struct io_uring_buf`; in entry 0, `resv` is the ring's tail.
#[repr(C)]
struct RawEntry {
    addr: u64,
    len: u32,
    bid: u16,
    resv: u16,
}

pub(crate) struct PoolShared {
    driver: Rc<Driver>,
    bgid: u16,
    entries: u16,
    buf_size: usize,
    bufs: NonNull<u8>,
    bufs_layout: Layout,
    /// The provided-buffer ring, if the pool is one; else receives are lent spares.
    ring: Option<BufRing>,
    /// Free buffers outside the ring, last in first out (the next one out is the one most
    /// likely still in the CPU cache): every free buffer of a pool that lends them; those
    /// beyond the warm set of a ring.
    spare: RefCell<Vec<u16>>,
    /// Receivers that found no buffer free, woken when one comes back.
    waiters: RefCell<Vec<Waker>>,
}

/// A provided-buffer ring registered with the kernel, which takes one buffer per receive, in
/// ring order. So that the buffers it writes into stay in the CPU cache, the ring holds at most
/// `target` of them (the warm set): buffers given back go to the ring while it has room, and
/// spares top it up when it falls to half. A receive that finds the ring empty while spares
/// are left doubles `target` (see [`PoolShared::grow`]).
struct BufRing {
    descriptors: NonNull<RawEntry>,
    layout: Layout,
    tail: Cell<u16>,
    /// Buffers in the ring now.
    len: Cell<u16>,
    target: Cell<u16>,
}

impl std::fmt::Debug for PoolShared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BufferPool")
            .field("group", &self.bgid)
            .field("entries", &self.entries)
            .field("buf_size", &self.buf_size)
            .field("available", &self.available())
            .finish()
    }
}

impl PoolShared {
    pub(crate) fn new(
        driver: Rc<Driver>,
        entries: u16,
        buf_size: usize,
    ) -> io::Result<Rc<PoolShared>> {
        if !entries.is_power_of_two() || entries > 1 << 15 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a buffer pool needs a power-of-two number of buffers, at most 32768",
            ));
        }
        if buf_size == 0 || u32::try_from(buf_size).is_err() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "buffer size must be 1..4 GiB",
            ));
        }
        let bufs_layout = Layout::from_size_align(usize::from(entries) * buf_size, 64)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "buffer pool too large"))?;
        // SAFETY: the layout has a non-zero size (entries >= 1, buf_size >= 1).
        let bufs = NonNull::new(unsafe { alloc::alloc(bufs_layout) })
            .ok_or_else(|| io::Error::from(io::ErrorKind::OutOfMemory))?;
        // Owns `bufs` from here: an early return frees it.
        let mut pool = PoolShared {
            bgid: driver.next_buf_group(),
            driver,
            entries,
            buf_size,
            bufs,
            bufs_layout,
            ring: None,
            spare: RefCell::new(Vec::with_capacity(usize::from(entries))),
            waiters: RefCell::new(Vec::new()),
        };
        if pool.driver.buf_rings() {
            match pool.make_ring() {
                Ok(()) => {}
                // The kernel does not know the register opcode (before 5.19): fall back.
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => pool.driver.disable_buf_rings(),
                Err(e) => return Err(explain_register_error(e)),
            }
        }
        for bid in 0..entries {
            pool.publish(bid);
        }
        Ok(Rc::new(pool))
    }

    /// Allocates the descriptor ring and registers it; on success the pool is a ring (empty:
    /// the caller publishes every buffer).
    fn make_ring(&mut self) -> io::Result<()> {
        let page = 4096;
        let ring_layout =
            Layout::from_size_align(usize::from(self.entries) * size_of_entry(), page)
                .map_err(io::Error::other)?;
        // SAFETY: the layout has a non-zero size (entries >= 1).
        let ring = NonNull::new(unsafe { alloc::alloc_zeroed(ring_layout) }.cast::<RawEntry>())
            .ok_or_else(|| io::Error::from(io::ErrorKind::OutOfMemory))?;
        // SAFETY: (P2) the ring memory lives until `Drop` unregisters the group. The kernel
        // reads descriptors only up to the tail, which is 0 until `publish` fills them.
        let registered = unsafe {
            self.driver
                .register_buf_ring(ring.as_ptr() as u64, self.entries, self.bgid)
        };
        if let Err(e) = registered {
            // SAFETY: never registered: the kernel never saw it; allocated with this layout.
            unsafe { alloc::dealloc(ring.as_ptr().cast(), ring_layout) };
            return Err(e);
        }
        // The warm set: about WARM_BYTES of buffers, at least MIN_WARM of them.
        let warm = (WARM_BYTES / self.buf_size).max(MIN_WARM);
        self.ring = Some(BufRing {
            descriptors: ring,
            layout: ring_layout,
            tail: Cell::new(0),
            len: Cell::new(0),
            target: Cell::new(u16::try_from(warm).unwrap_or(u16::MAX).min(self.entries)),
        });
        Ok(())
    }

    pub(crate) fn driver_rc(&self) -> Rc<Driver> {
        self.driver.clone()
    }

    pub(crate) fn group(&self) -> u16 {
        self.bgid
    }

    /// Buffers free for a receive: in the ring, or spare.
    pub(crate) fn available(&self) -> u16 {
        let spare = self.spare.borrow().len() as u16;
        spare + self.ring.as_ref().map_or(0, |ring| ring.len.get())
    }

    pub(crate) fn entries(&self) -> u16 {
        self.entries
    }

    /// Whether the kernel picks buffers (a provided-buffer ring); else receives are lent one.
    #[inline]
    pub(crate) fn kernel_picks(&self) -> bool {
        self.ring.is_some()
    }

    /// Bytes per buffer.
    pub(crate) fn buf_size(&self) -> usize {
        self.buf_size
    }

    /// Puts buffer `bid` (back) among the free ones: in the ring if the warm set has room.
    #[inline]
    fn publish(&self, bid: u16) {
        match &self.ring {
            Some(ring) if ring.len.get() < ring.target.get() => self.publish_in_ring(ring, bid),
            _ => self.spare.borrow_mut().push(bid),
        }
    }

    /// Appends buffer `bid` to the ring, where the kernel may take it at once (P1).
    #[inline]
    fn publish_in_ring(&self, ring: &BufRing, bid: u16) {
        let BufRing {
            descriptors, tail, ..
        } = ring;
        ring.len.set(ring.len.get() + 1);
        let index = usize::from(tail.get() & (self.entries - 1));
        let addr = self.buf_ptr(bid) as u64;
        // Field pointers by offset: no reference ever covers entry 0's `resv`, the tail the
        // kernel reads.
        let entry = descriptors.as_ptr().wrapping_add(index).cast::<u8>();
        let field = |offset: usize| entry.wrapping_add(offset);
        // SAFETY: (P1) `index < entries`: the field lies inside the ring allocation, aligned.
        unsafe { field(offset_of!(RawEntry, addr)).cast::<u64>().write(addr) };
        // SAFETY: as above.
        unsafe {
            field(offset_of!(RawEntry, len))
                .cast::<u32>()
                .write(self.buf_size as u32)
        };
        // SAFETY: as above.
        unsafe { field(offset_of!(RawEntry, bid)).cast::<u16>().write(bid) };
        let next = tail.get().wrapping_add(1);
        tail.set(next);
        let tail_ptr = descriptors
            .as_ptr()
            .cast::<u8>()
            .wrapping_add(offset_of!(RawEntry, resv));
        // SAFETY: the tail lives in entry 0's `resv`, is u16-aligned, valid for the ring's
        // life, and (P3) only written here, atomically.
        let tail_field = unsafe { AtomicU16::from_ptr(tail_ptr.cast::<u16>()) };
        tail_field.store(next, Ordering::Release);
    }

    /// Takes a spare for a receive to write into, with its address (a pool that is not a
    /// ring). The receive must hand it on with [`take`](Self::take) or
    /// [`recycle`](Self::recycle) once its CQE arrives, and not before (P1).
    pub(crate) fn lend(&self) -> Option<(u16, *mut u8)> {
        if self.ring.is_some() {
            return None;
        }
        let bid = self.spare.borrow_mut().pop()?;
        Some((bid, self.buf_ptr(bid)))
    }

    /// A buffer left the free ones: taken from the ring by the kernel, or lent (it left when
    /// lent). A ring down to half its warm set is topped up from the spares, the most recently
    /// returned first; above that, buffers given back refill it directly (no trip through the
    /// spares for the common take-and-give-back).
    #[inline]
    fn taken(&self) {
        let Some(ring) = &self.ring else {
            return;
        };
        ring.len.set(ring.len.get().saturating_sub(1));
        if ring.len.get() < ring.target.get() / 2 {
            self.fill_ring(ring);
        }
    }

    /// Moves spares into the ring until it holds its warm set or no spare is left.
    fn fill_ring(&self, ring: &BufRing) {
        while ring.len.get() < ring.target.get() {
            let Some(bid) = self.spare.borrow_mut().pop() else {
                break;
            };
            self.publish_in_ring(ring, bid);
        }
    }

    /// A receive found the ring empty (`ENOBUFS`): the warm set was too small for the traffic.
    /// Doubles it and fills the ring from the spares. Returns whether a receive may arm now
    /// (the ring, or for a pool that lends, the spares, have a buffer).
    pub(crate) fn grow(&self) -> bool {
        let Some(ring) = &self.ring else {
            return !self.spare.borrow().is_empty();
        };
        ring.target
            .set(ring.target.get().saturating_mul(2).min(self.entries));
        self.fill_ring(ring);
        ring.len.get() > 0
    }

    #[inline]
    fn buf_ptr(&self, bid: u16) -> *mut u8 {
        self.bufs
            .as_ptr()
            .wrapping_add(usize::from(bid) * self.buf_size)
    }

    /// Takes ownership of buffer `bid`, which the kernel just filled with `len` bytes.
    #[inline]
    pub(crate) fn take(self: &Rc<Self>, bid: u16, len: usize) -> PooledBuf {
        debug_assert!(bid < self.entries && len <= self.buf_size);
        self.taken();
        PooledBuf {
            pool: self.clone(),
            bid,
            len: len.min(self.buf_size),
        }
    }

    /// A buffer the kernel selected (or was lent) that carries nothing for us (an error, end
    /// of file, or a result nobody will read): straight back among the free ones.
    pub(crate) fn recycle(&self, bid: u16) {
        self.taken();
        self.give_back(bid);
    }

    #[inline]
    fn give_back(&self, bid: u16) {
        self.publish(bid);
        if self.waiters.borrow().is_empty() {
            return;
        }
        let waiters = std::mem::take(&mut *self.waiters.borrow_mut());
        for waker in waiters {
            waker.wake();
        }
    }

    /// Registers `waker` to be woken when a buffer comes back to an empty pool.
    pub(crate) fn wait_for_buffer(&self, waker: &Waker) {
        let mut waiters = self.waiters.borrow_mut();
        if !waiters.iter().any(|w| w.will_wake(waker)) {
            waiters.push(waker.clone());
        }
    }
}

/// The kernel's refusal to register a ring, with what the caller can do about it.
fn explain_register_error(e: io::Error) -> io::Error {
    let hint = match e.raw_os_error() {
        // Kernels before 6.4 charge the ring's pages to RLIMIT_MEMLOCK.
        Some(libc::ENOMEM) => {
            "not enough locked memory: raise RLIMIT_MEMLOCK (ulimit -l), or turn buffer rings \
             off with Builder::buf_rings(false)"
        }
        Some(libc::EEXIST) => "its buffer group id is taken",
        _ => "turn buffer rings off with Builder::buf_rings(false) to do without",
    };
    io::Error::new(
        e.kind(),
        format!("cannot register a provided-buffer ring: {hint} ({e})"),
    )
}

/// About how many bytes of a ring's buffers the kernel cycles through (its warm set) until
/// traffic needs more: half a typical L2 cache.
const WARM_BYTES: usize = 512 * 1024;
/// The smallest warm set, whatever the buffer size.
const MIN_WARM: usize = 16;

fn size_of_entry() -> usize {
    std::mem::size_of::<RawEntry>()
}

impl Drop for PoolShared {
    fn drop(&mut self) {
        let released = match &self.ring {
            Some(ring) => {
                let released = self.driver.unregister_buf_ring(self.bgid).is_ok();
                if released {
                    // SAFETY: (P2) the kernel no longer references the ring; it was allocated
                    // with exactly this layout.
                    unsafe { alloc::dealloc(ring.descriptors.as_ptr().cast(), ring.layout) };
                }
                released
            }
            // (P2) no receive holds the pool any more: none is armed into its buffers.
            None => true,
        };
        if released {
            // SAFETY: (P2) the kernel no longer references the buffers; they were allocated
            // with exactly this layout.
            unsafe { alloc::dealloc(self.bufs.as_ptr(), self.bufs_layout) };
        }
        // Otherwise (P2): the runtime is gone and the kernel may still hold the pages; leak them.
    }
}

/// One buffer of a [`BufferPool`](crate::net::BufferPool), filled by a receive. Derefs to the
/// bytes received; dropping it returns the buffer to the pool.
///
/// It can be sent back out as-is (`stream.write_all(buf)`): it implements [`IoBuf`](crate::IoBuf).
pub struct PooledBuf {
    pool: Rc<PoolShared>,
    bid: u16,
    len: usize,
}

impl PooledBuf {
    /// The bytes received.
    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: (P1) this PooledBuf owns buffer `bid`, whose first `len` bytes the kernel
        // wrote; the kernel does not touch it until we give it back.
        unsafe { std::slice::from_raw_parts(self.pool.buf_ptr(self.bid), self.len) }
    }

    /// Copies the bytes out, for when they must outlive the pooled buffer.
    pub fn to_vec(&self) -> Vec<u8> {
        self.as_slice().to_vec()
    }
}

impl std::ops::Deref for PooledBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl std::fmt::Debug for PooledBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PooledBuf")
            .field("bid", &self.bid)
            .field("len", &self.len)
            .finish()
    }
}

impl Drop for PooledBuf {
    fn drop(&mut self) {
        self.pool.give_back(self.bid);
    }
}

// SAFETY: (B1, P1) the bytes live in the pool's allocation, kept alive by the `Rc`, owned by
// this value (the kernel does not write them meanwhile) and never moved.
unsafe impl crate::buf::IoBuf for PooledBuf {
    fn stable_ptr(&self) -> *const u8 {
        self.pool.buf_ptr(self.bid)
    }
    fn bytes_init(&self) -> usize {
        self.len
    }
    fn bytes_total(&self) -> usize {
        self.len
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_ring_refused_for_locked_memory_names_the_limit_and_the_switch() {
        let e = explain_register_error(std::io::Error::from_raw_os_error(libc::ENOMEM));
        assert_eq!(e.kind(), std::io::ErrorKind::OutOfMemory);
        let message = e.to_string();
        assert!(message.contains("RLIMIT_MEMLOCK"), "{message}");
        assert!(message.contains("Builder::buf_rings(false)"), "{message}");
    }

    /// What happens to a pool: the kernel fills buffers, receives are armed, buffers dropped.
    #[derive(Debug, Clone)]
    enum Step {
        /// A receive completes into the next buffer (the one at the ring's head, or one that
        /// was lent) with data (`keep`: a `PooledBuf` holds it) or without (it is recycled).
        Receive { keep: bool },
        /// A pool that lends arms a receive with a spare.
        Lend,
        /// The `i`-th held buffer (modulo how many are held) is dropped.
        Drop(usize),
        /// A receive found the ring empty (`ENOBUFS`).
        Grow,
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            4 => any::<bool>().prop_map(|keep| Step::Receive { keep }),
            2 => Just(Step::Lend),
            4 => any::<usize>().prop_map(Step::Drop),
            1 => Just(Step::Grow),
        ]
    }

    /// The kernel's side, played by the test: where it takes the next buffer from the ring,
    /// and the buffers it holds for armed receives (lent) or handed out (held).
    struct Kernel {
        head: u16,
        lent: Vec<u16>,
        held: Vec<PooledBuf>,
    }

    /// The descriptor at ring position `index`: its address, length and buffer id.
    fn descriptor(pool: &PoolShared, ring: &BufRing, index: u16) -> (u64, u32, u16) {
        let entry = ring
            .descriptors
            .as_ptr()
            .wrapping_add(usize::from(index & (pool.entries - 1)));
        // SAFETY: the entry lies inside the ring allocation, aligned; nothing writes it while
        // this reads (the test is single-threaded, and the kernel only reads descriptors: no
        // receive is armed on this group).
        let raw = unsafe { entry.read() };
        (raw.addr, raw.len, raw.bid)
    }

    /// (P1) and the warm set's rules, checked against where the test knows each buffer is.
    fn check(pool: &PoolShared, kernel: &Kernel) -> Result<(), TestCaseError> {
        let mut seen = vec![0u8; usize::from(pool.entries)];
        if let Some(ring) = &pool.ring {
            let len = ring.tail.get().wrapping_sub(kernel.head);
            prop_assert_eq!(len, ring.len.get(), "the ring's count is what it holds");
            prop_assert!(
                ring.len.get() <= ring.target.get(),
                "the ring holds its warm set at most"
            );
            prop_assert!(ring.target.get() <= pool.entries);
            if ring.len.get() < ring.target.get() / 2 {
                prop_assert!(
                    pool.spare.borrow().is_empty(),
                    "a ring below half is topped up"
                );
            }
            for i in 0..len {
                let (addr, buf_len, bid) = descriptor(pool, ring, kernel.head.wrapping_add(i));
                prop_assert_eq!(addr, pool.buf_ptr(bid) as u64);
                prop_assert_eq!(buf_len as usize, pool.buf_size);
                seen[usize::from(bid)] += 1;
            }
        }
        for &bid in pool.spare.borrow().iter() {
            seen[usize::from(bid)] += 1;
        }
        for &bid in &kernel.lent {
            seen[usize::from(bid)] += 1;
        }
        for buf in &kernel.held {
            seen[usize::from(buf.bid)] += 1;
        }
        prop_assert!(
            seen.iter().all(|&n| n == 1),
            "(P1) every buffer in exactly one place: {:?}",
            seen
        );
        let in_ring = pool.ring.as_ref().map_or(0, |ring| ring.len.get());
        prop_assert_eq!(pool.available(), in_ring + pool.spare.borrow().len() as u16);
        Ok(())
    }

    /// Runs `steps` on a fresh pool of `entries` 64 KiB buffers (a warm set of 16), as a ring
    /// or as a pool that lends.
    fn run(entries: u16, rings: bool, steps: &[Step]) -> Result<(), TestCaseError> {
        let rt = crate::Builder::new().buf_rings(rings).build().unwrap();
        rt.block_on(async {
            let driver = crate::runtime::current_driver();
            let pool = PoolShared::new(driver, entries, 64 * 1024).unwrap();
            prop_assert_eq!(pool.kernel_picks(), rings);
            let mut kernel = Kernel {
                head: 0,
                lent: Vec::new(),
                held: Vec::new(),
            };
            check(&pool, &kernel)?;
            for step in steps {
                match *step {
                    Step::Receive { keep } => {
                        let bid = match &pool.ring {
                            Some(ring) if ring.len.get() > 0 => {
                                let (_, _, bid) = descriptor(&pool, ring, kernel.head);
                                kernel.head = kernel.head.wrapping_add(1);
                                bid
                            }
                            Some(_) => continue,
                            None => match kernel.lent.pop() {
                                Some(bid) => bid,
                                None => continue,
                            },
                        };
                        if keep {
                            kernel.held.push(pool.take(bid, 100));
                        } else {
                            pool.recycle(bid);
                        }
                    }
                    Step::Lend => match pool.lend() {
                        Some((bid, addr)) => {
                            prop_assert!(!rings, "a ring lends nothing");
                            prop_assert_eq!(addr, pool.buf_ptr(bid));
                            kernel.lent.push(bid);
                        }
                        None => prop_assert!(rings || pool.spare.borrow().is_empty()),
                    },
                    Step::Drop(i) if !kernel.held.is_empty() => {
                        let i = i % kernel.held.len();
                        drop(kernel.held.swap_remove(i));
                    }
                    Step::Drop(_) => {}
                    Step::Grow => {
                        if pool.ring.as_ref().is_some_and(|ring| ring.len.get() > 0) {
                            continue;
                        }
                        let spares = !pool.spare.borrow().is_empty();
                        prop_assert_eq!(
                            pool.grow(),
                            spares,
                            "a receive may arm iff a spare was left"
                        );
                    }
                }
                check(&pool, &kernel)?;
            }
            // Everything back: the whole pool is free again.
            kernel.held.clear();
            for bid in kernel.lent.drain(..) {
                pool.recycle(bid);
            }
            prop_assert_eq!(pool.available(), entries);
            Ok(())
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        /// (P1) holds and the ring keeps its warm set through any mix of receives and drops.
        #[test]
        fn a_ring_pool_keeps_every_buffer_in_exactly_one_place(
            entries in prop_oneof![Just(16u16), Just(64u16)],
            steps in proptest::collection::vec(step(), 0..300),
        ) {
            run(entries, true, &steps)?;
        }

        /// The same for a pool that lends its buffers to the receives it arms.
        #[test]
        fn a_lending_pool_keeps_every_buffer_in_exactly_one_place(
            entries in prop_oneof![Just(16u16), Just(64u16)],
            steps in proptest::collection::vec(step(), 0..300),
        ) {
            run(entries, false, &steps)?;
        }
    }
}
