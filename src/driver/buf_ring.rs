//! Provided-buffer rings (`IORING_REGISTER_PBUF_RING`): a pool of equal buffers the kernel
//! picks from when a receive completes, so an idle connection holds no buffer at all.
//!
//! The pool owns two allocations: the ring of `entries` descriptors the kernel reads (page
//! aligned, as the kernel requires) and one slab of `entries * buf_size` bytes the kernel writes
//! into. A [`PooledBuf`] owns one buffer id from the moment the kernel hands it out in a CQE
//! until it is dropped, which puts the buffer back in the ring.
//!
//! # Invariants
//!
//! - (P1) A buffer id is either in the ring (the kernel may write into it at any time) or owned
//!   by exactly one `PooledBuf` (the kernel will not touch it). Only a `PooledBuf` creates a
//!   slice over its buffer.
//! - (P2) Both allocations live until the group is unregistered, or are leaked if that cannot be
//!   done (the runtime shut down first).
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
    ring: NonNull<RawEntry>,
    ring_layout: Layout,
    bufs: NonNull<u8>,
    bufs_layout: Layout,
    tail: Cell<u16>,
    registered: Cell<bool>,
    /// Buffers currently in the ring.
    available: Cell<u16>,
    /// Receivers that found the ring empty, woken when a buffer comes back.
    waiters: RefCell<Vec<Waker>>,
}

impl std::fmt::Debug for PoolShared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BufferPool")
            .field("group", &self.bgid)
            .field("entries", &self.entries)
            .field("buf_size", &self.buf_size)
            .field("available", &self.available.get())
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
        let page = 4096;
        let ring_layout = Layout::from_size_align(usize::from(entries) * size_of_entry(), page)
            .map_err(io::Error::other)?;
        let bufs_layout = Layout::from_size_align(usize::from(entries) * buf_size, 64)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "buffer pool too large"))?;
        // SAFETY: both layouts have a non-zero size (entries >= 1, buf_size >= 1).
        let ring = NonNull::new(unsafe { alloc::alloc_zeroed(ring_layout) }.cast::<RawEntry>());
        // SAFETY: as above.
        let bufs = NonNull::new(unsafe { alloc::alloc(bufs_layout) });
        let (Some(ring), Some(bufs)) = (ring, bufs) else {
            return Err(io::Error::from(io::ErrorKind::OutOfMemory));
        };
        let bgid = driver.next_buf_group();
        let pool = Rc::new(PoolShared {
            driver,
            bgid,
            entries,
            buf_size,
            ring,
            ring_layout,
            bufs,
            bufs_layout,
            tail: Cell::new(0),
            registered: Cell::new(false),
            available: Cell::new(0),
            waiters: RefCell::new(Vec::new()),
        });
        for bid in 0..entries {
            pool.publish(bid);
        }
        // SAFETY: (P2) the ring memory lives until `Drop` unregisters the group.
        let registered = unsafe {
            pool.driver
                .register_buf_ring(ring.as_ptr() as u64, entries, bgid)
        };
        if let Err(e) = registered {
            // Never registered: the kernel never saw the memory; Drop frees it.
            return Err(io::Error::new(
                e.kind(),
                format!("cannot register a provided-buffer ring (Linux 5.19+): {e}"),
            ));
        }
        pool.registered.set(true);
        Ok(pool)
    }

    pub(crate) fn driver_rc(&self) -> Rc<Driver> {
        self.driver.clone()
    }

    pub(crate) fn group(&self) -> u16 {
        self.bgid
    }

    pub(crate) fn available(&self) -> u16 {
        self.available.get()
    }

    pub(crate) fn entries(&self) -> u16 {
        self.entries
    }

    /// Puts buffer `bid` (back) in the ring.
    fn publish(&self, bid: u16) {
        let tail = self.tail.get();
        let index = usize::from(tail & (self.entries - 1));
        let addr = self.buf_ptr(bid) as u64;
        // Field pointers by offset: no reference ever covers entry 0's `resv`, the tail the
        // kernel reads.
        let entry = self.ring.as_ptr().wrapping_add(index).cast::<u8>();
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
        let next = tail.wrapping_add(1);
        self.tail.set(next);
        let tail_ptr = self
            .ring
            .as_ptr()
            .cast::<u8>()
            .wrapping_add(offset_of!(RawEntry, resv));
        // SAFETY: the tail lives in entry 0's `resv`, is u16-aligned, valid for the ring's
        // life, and (P3) only written here, atomically.
        let tail_field = unsafe { AtomicU16::from_ptr(tail_ptr.cast::<u16>()) };
        tail_field.store(next, Ordering::Release);
        self.available.set(self.available.get() + 1);
    }

    fn buf_ptr(&self, bid: u16) -> *mut u8 {
        self.bufs
            .as_ptr()
            .wrapping_add(usize::from(bid) * self.buf_size)
    }

    /// Takes ownership of buffer `bid`, which the kernel just filled with `len` bytes.
    pub(crate) fn take(self: &Rc<Self>, bid: u16, len: usize) -> PooledBuf {
        debug_assert!(bid < self.entries && len <= self.buf_size);
        self.available.set(self.available.get().saturating_sub(1));
        PooledBuf {
            pool: self.clone(),
            bid,
            len: len.min(self.buf_size),
        }
    }

    /// A buffer the kernel selected but that carries nothing for us (an error, end of file,
    /// or a result nobody will read): straight back to the ring.
    pub(crate) fn recycle(&self, bid: u16) {
        self.available.set(self.available.get().saturating_sub(1));
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

    /// Registers `waker` to be woken when a buffer comes back to an empty ring.
    pub(crate) fn wait_for_buffer(&self, waker: &Waker) {
        let mut waiters = self.waiters.borrow_mut();
        if !waiters.iter().any(|w| w.will_wake(waker)) {
            waiters.push(waker.clone());
        }
    }
}

fn size_of_entry() -> usize {
    std::mem::size_of::<RawEntry>()
}

impl Drop for PoolShared {
    fn drop(&mut self) {
        let released = !self.registered.get() || self.driver.unregister_buf_ring(self.bgid).is_ok();
        if released {
            // SAFETY: (P2) the kernel no longer references either allocation; they were
            // allocated with exactly these layouts.
            unsafe { alloc::dealloc(self.ring.as_ptr().cast(), self.ring_layout) };
            // SAFETY: as above.
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
