//! hyper's runtime traits on ringloop: a timer on the runtime's wheel and an executor that
//! spawns on the current runtime.
//!
//! hyper asks for sleeps that are `Send + Sync`, and ringloop's [`Sleep`](crate::time::Sleep)
//! is neither (it holds its runtime by `Rc`). [`HyperTimer`]'s sleeps hold only their
//! deadline, their wheel entry's key and the runtime's [`Handle`]: they register on the
//! runtime whose thread polls them, and a sleep dropped on another thread has its entry
//! removed by a task sent to its runtime.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crate::runtime::context;
use crate::time::sleep::poll_wheel;
use crate::Handle;

/// hyper's [`Timer`](hyper::rt::Timer) on the timer wheel of the runtime that polls each
/// sleep, with the wheel's microsecond precision.
///
/// Give it to hyper's connection builders to enable their timeouts, which panic without a
/// timer (`header_read_timeout`, a slow-loris defence, and the keep-alive timeouts):
///
/// ```
/// use std::time::Duration;
/// use ringloop::compat::{Compat, HyperTimer};
///
/// # async fn serve(stream: ringloop::net::TcpStream) {
/// let service = hyper::service::service_fn(|_req| async {
///     Ok::<_, std::convert::Infallible>(hyper::Response::new(String::from("hello")))
/// });
/// let served = hyper::server::conn::http1::Builder::new()
///     .timer(HyperTimer)
///     .header_read_timeout(Duration::from_secs(5))
///     .serve_connection(Compat::new(stream), service)
///     .await;
/// # let _ = served;
/// # }
/// ```
///
/// # Panics
///
/// Its sleeps panic if polled outside a ringloop runtime.
#[derive(Clone, Copy, Debug, Default)]
pub struct HyperTimer;

impl hyper::rt::Timer for HyperTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        let now = self.now();
        // A deadline past what `Instant` holds: about 30 years is never enough.
        let deadline = now
            .checked_add(duration)
            .unwrap_or_else(|| now + Duration::from_secs(86_400 * 365 * 30));
        Box::pin(SendSleep::new(deadline))
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(SendSleep::new(deadline))
    }

    /// The runtime's clock (paused in a test that pauses it).
    fn now(&self) -> Instant {
        crate::time::Instant::now().into_std()
    }
}

/// hyper's [`Executor`](hyper::rt::Executor): runs each future as a task on the current
/// runtime (as [`spawn`](crate::spawn), so the futures need not be `Send`). hyper's HTTP/2
/// connections spawn their streams through it.
///
/// # Panics
///
/// `execute` panics outside a ringloop runtime.
#[derive(Clone, Copy, Debug, Default)]
pub struct HyperExecutor;

impl<F> hyper::rt::Executor<F> for HyperExecutor
where
    F: Future + 'static,
{
    fn execute(&self, future: F) {
        drop(crate::spawn(future));
    }
}

/// A sleep hyper may move between threads: see the module's docs.
struct SendSleep {
    deadline: Instant,
    /// The runtime it is registered on, and its wheel entry there.
    registered: Option<(Handle, usize)>,
}

impl SendSleep {
    fn new(deadline: Instant) -> SendSleep {
        SendSleep {
            deadline,
            registered: None,
        }
    }

    /// Removes the wheel entry: here if this thread runs its runtime, else by a task sent to
    /// that runtime (the key stays reserved until then, so no other timer can take it).
    fn unregister(&mut self) {
        let Some((handle, key)) = self.registered.take() else {
            return;
        };
        let removed = context::with_current(|core| {
            if core.is_handled_by(&handle) {
                drop(core.timers.wheel.borrow_mut().remove(key));
                true
            } else {
                false
            }
        });
        if removed != Some(true) {
            drop(handle.spawn(async move {
                context::with_current(|core| drop(core.timers.wheel.borrow_mut().remove(key)));
            }));
        }
    }
}

impl Future for SendSleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let core = context::current();
        if let Some((handle, _)) = &this.registered {
            if !core.is_handled_by(handle) {
                // Moved to another runtime's thread: register there instead.
                this.unregister();
            }
        }
        let mut entry = this.registered.as_ref().map(|(_, key)| *key);
        let poll = poll_wheel(&core, this.deadline, &mut entry, cx);
        if let (None, Some(key)) = (&this.registered, entry) {
            this.registered = Some((core.handle(), key));
        }
        poll
    }
}

impl hyper::rt::Sleep for SendSleep {}

impl Drop for SendSleep {
    fn drop(&mut self) {
        self.unregister();
    }
}
