//! Local mpsc channels: order, backpressure, close, drop and cancellation, against a
//! `VecDeque` model (proptest) and on a running runtime.

mod support;

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use proptest::prelude::*;
use ringloop::sync::mpsc::{self, error::SendError, error::TryRecvError, error::TrySendError};
use ringloop::time::timeout;
use support::{run, LIMIT};

type SendFuture = Pin<Box<dyn Future<Output = Result<(), SendError<u32>>>>>;

fn poll_once<F: Future + ?Sized>(fut: Pin<&mut F>) -> Poll<F::Output> {
    fut.poll(&mut Context::from_waker(Waker::noop()))
}

#[derive(Debug, Clone)]
enum Op {
    TrySend,
    TryRecv,
    StartSend,
    PollPending(usize),
    DropPending(usize),
    CloneSender,
    DropSender,
    Close,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => Just(Op::TrySend),
        4 => Just(Op::TryRecv),
        2 => Just(Op::StartSend),
        2 => any::<usize>().prop_map(Op::PollPending),
        1 => any::<usize>().prop_map(Op::DropPending),
        1 => Just(Op::CloneSender),
        1 => Just(Op::DropSender),
        1 => Just(Op::Close),
    ]
}

/// A waiting `send` of the model: its value, and whether a freed slot was handed to it.
struct PendingModel {
    value: u32,
    granted: bool,
}

/// What the channel must do, written as plainly as possible.
struct Model {
    capacity: usize,
    queue: VecDeque<u32>,
    pending: Vec<PendingModel>,
    senders: usize,
    closed: bool,
}

impl Model {
    fn granted(&self) -> usize {
        self.pending.iter().filter(|p| p.granted).count()
    }

    fn any_ungranted(&self) -> bool {
        self.pending.iter().any(|p| !p.granted)
    }

    /// A slot came free: the oldest waiting send that has none gets it.
    fn grant(&mut self) {
        if self.closed || self.queue.len() + self.granted() >= self.capacity {
            return;
        }
        if let Some(p) = self.pending.iter_mut().find(|p| !p.granted) {
            p.granted = true;
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Random try_send / try_recv / pending sends (polled, dropped) / sender clones and drops /
    /// close against a VecDeque model: same values, same order, same errors, nothing lost.
    #[test]
    fn bounded_channel_matches_a_vecdeque_model(
        capacity in 1usize..5,
        ops in proptest::collection::vec(op(), 0..120),
    ) {
        let (tx, mut rx) = mpsc::channel::<u32>(capacity);
        let mut senders = vec![tx];
        let mut futures: Vec<SendFuture> = Vec::new();
        let mut model = Model {
            capacity,
            queue: VecDeque::new(),
            pending: Vec::new(),
            senders: 1,
            closed: false,
        };
        let mut next_value = 0u32;
        for op in ops {
            match op {
                Op::TrySend => {
                    let Some(tx) = senders.first() else { continue };
                    let v = next_value;
                    next_value += 1;
                    let got = tx.try_send(v);
                    let want = if model.closed {
                        Err(TrySendError::Closed(v))
                    } else if model.queue.len() + model.granted() >= capacity
                        || model.any_ungranted()
                    {
                        Err(TrySendError::Full(v))
                    } else {
                        model.queue.push_back(v);
                        Ok(())
                    };
                    prop_assert_eq!(got, want);
                }
                Op::TryRecv => {
                    let got = rx.try_recv();
                    let want = match model.queue.pop_front() {
                        Some(v) => {
                            model.grant();
                            Ok(v)
                        }
                        None if (model.closed || model.senders == 0)
                            && model.granted() == 0 => Err(TryRecvError::Disconnected),
                        None => Err(TryRecvError::Empty),
                    };
                    prop_assert_eq!(got, want);
                }
                Op::StartSend => {
                    let Some(tx) = senders.first() else { continue };
                    let tx = tx.clone();
                    let v = next_value;
                    next_value += 1;
                    let mut fut: SendFuture = Box::pin(async move { tx.send(v).await });
                    match poll_once(fut.as_mut()) {
                        Poll::Ready(Ok(())) => {
                            prop_assert!(!model.closed);
                            prop_assert!(!model.any_ungranted());
                            prop_assert!(model.queue.len() + model.granted() < capacity);
                            model.queue.push_back(v);
                        }
                        Poll::Ready(Err(SendError(back))) => {
                            prop_assert!(model.closed);
                            prop_assert_eq!(back, v);
                        }
                        Poll::Pending => {
                            prop_assert!(!model.closed);
                            futures.push(fut);
                            model.senders += 1;
                            model.pending.push(PendingModel { value: v, granted: false });
                        }
                    }
                }
                Op::PollPending(i) => {
                    if futures.is_empty() {
                        continue;
                    }
                    let i = i % futures.len();
                    match poll_once(futures[i].as_mut()) {
                        Poll::Pending => {
                            prop_assert!(!model.closed);
                            prop_assert!(!model.pending[i].granted);
                        }
                        Poll::Ready(res) => {
                            let p = model.pending.remove(i);
                            drop(futures.remove(i));
                            model.senders -= 1;
                            if model.closed {
                                prop_assert_eq!(res, Err(SendError(p.value)));
                                if p.granted {
                                    model.grant();
                                }
                            } else {
                                prop_assert!(p.granted, "a send completed without a slot");
                                prop_assert_eq!(res, Ok(()));
                                model.queue.push_back(p.value);
                            }
                        }
                    }
                }
                Op::DropPending(i) => {
                    if futures.is_empty() {
                        continue;
                    }
                    let i = i % futures.len();
                    drop(futures.remove(i));
                    let p = model.pending.remove(i);
                    model.senders -= 1;
                    if p.granted {
                        model.grant();
                    }
                }
                Op::CloneSender => {
                    if let Some(tx) = senders.first() {
                        senders.push(tx.clone());
                        model.senders += 1;
                    }
                }
                Op::DropSender => {
                    if senders.pop().is_some() {
                        model.senders -= 1;
                    }
                }
                Op::Close => {
                    rx.close();
                    model.closed = true;
                }
            }
            prop_assert_eq!(rx.len(), model.queue.len());
        }
        // Whatever was reported as sent is still there, in order.
        drop(senders);
        drop(futures);
        for want in model.queue {
            prop_assert_eq!(rx.try_recv(), Ok(want));
        }
        prop_assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
    }
}

#[test]
fn values_arrive_in_order_and_none_is_lost_under_backpressure() {
    run(async {
        let (tx, mut rx) = mpsc::channel::<(u8, u32)>(4);
        for producer in 0..3u8 {
            let tx = tx.clone();
            ringloop::spawn(async move {
                for n in 0..10_000 {
                    tx.send((producer, n)).await.unwrap();
                }
            });
        }
        drop(tx);
        let mut next = [0u32; 3];
        let received = timeout(LIMIT, async {
            while let Some((producer, n)) = rx.recv().await {
                assert_eq!(
                    n, next[producer as usize],
                    "producer {producer} out of order"
                );
                next[producer as usize] += 1;
            }
        })
        .await;
        received.expect("all producers finish");
        assert_eq!(next, [10_000; 3]);
    });
}

#[test]
fn buffered_values_are_delivered_after_every_sender_drops_then_none() {
    run(async {
        let (tx, mut rx) = mpsc::channel(8);
        for i in 0..5 {
            tx.send(i).await.unwrap();
        }
        drop(tx);
        for i in 0..5 {
            assert_eq!(rx.recv().await, Some(i));
        }
        assert_eq!(rx.recv().await, None);
        assert_eq!(rx.recv().await, None);
    });
}

#[test]
fn a_dropped_receiver_hands_the_value_back_to_send_and_wakes_waiting_senders() {
    run(async {
        let (tx, rx) = mpsc::channel(1);
        tx.send(1).await.unwrap();
        let waiting = ringloop::spawn({
            let tx = tx.clone();
            async move { tx.send(2).await }
        });
        ringloop::task::yield_now().await;
        drop(rx);
        let res = timeout(LIMIT, waiting)
            .await
            .expect("waiter woken")
            .unwrap();
        assert_eq!(res, Err(SendError(2)));
        assert_eq!(tx.send(3).await, Err(SendError(3)));
        assert!(tx.is_closed());
    });
}

#[test]
fn close_keeps_buffered_values_and_fails_new_sends() {
    run(async {
        let (tx, mut rx) = mpsc::channel(4);
        tx.try_send(1).unwrap();
        let permit = tx.try_reserve().unwrap();
        rx.close();
        assert_eq!(tx.try_send(2), Err(TrySendError::Closed(2)));
        // A permit reserved before the close may still send, and recv waits for it.
        assert_eq!(rx.recv().await, Some(1));
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
        permit.send(3);
        assert_eq!(rx.recv().await, Some(3));
        assert_eq!(rx.recv().await, None);
    });
}

#[test]
fn a_dropped_pending_recv_loses_nothing_and_leaves_no_waker() {
    run(async {
        let (tx, mut rx) = mpsc::channel(1);
        // recv pending, then abandoned by a timeout.
        let res = timeout(Duration::from_millis(1), rx.recv()).await;
        assert!(res.is_err());
        tx.send(7).await.unwrap();
        assert_eq!(rx.try_recv(), Ok(7));
    });
    // The waker of a dropped recv is forgotten: a later send wakes nobody.
    let (tx, mut rx) = mpsc::channel::<u32>(1);
    let wakes = Arc::new(WakeCount::default());
    let waker = Waker::from(wakes.clone());
    {
        let mut fut = Box::pin(rx.recv());
        let poll = fut.as_mut().poll(&mut Context::from_waker(&waker));
        assert!(poll.is_pending());
    }
    tx.try_send(1).unwrap();
    assert_eq!(
        wakes.0.load(Ordering::SeqCst),
        0,
        "a dropped recv was woken"
    );
    assert_eq!(rx.try_recv(), Ok(1));
}

/// Counts wakes, to prove who is (not) woken.
#[derive(Default)]
struct WakeCount(AtomicUsize);

impl Wake for WakeCount {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn a_dropped_send_that_was_granted_a_slot_passes_it_to_the_next_sender() {
    let (tx, mut rx) = mpsc::channel::<u32>(1);
    tx.try_send(0).unwrap();
    let mut first = Box::pin(tx.send(1));
    let mut second = Box::pin(tx.send(2));
    assert!(poll_once(first.as_mut()).is_pending());
    assert!(poll_once(second.as_mut()).is_pending());
    // Frees the slot: it goes to `first`, which is then dropped before it could use it.
    assert_eq!(rx.try_recv(), Ok(0));
    drop(first);
    assert_eq!(poll_once(second.as_mut()), Poll::Ready(Ok(())));
    assert_eq!(rx.try_recv(), Ok(2));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    // No waiter left behind: the channel takes a value again at once.
    drop(second);
    assert_eq!(tx.try_send(3), Ok(()));
}

#[test]
fn waiting_senders_are_served_first_come_first_served() {
    run(async {
        let (tx, mut rx) = mpsc::channel::<u32>(1);
        tx.send(0).await.unwrap();
        for i in 1..=5 {
            let tx = tx.clone();
            ringloop::spawn(async move { tx.send(i).await.unwrap() });
            ringloop::task::yield_now().await;
        }
        drop(tx);
        let mut got = Vec::new();
        timeout(LIMIT, async {
            while let Some(v) = rx.recv().await {
                got.push(v);
            }
        })
        .await
        .unwrap();
        assert_eq!(got, vec![0, 1, 2, 3, 4, 5]);
    });
}

#[test]
fn unbounded_send_never_waits_and_close_hands_values_back() {
    run(async {
        let (tx, mut rx) = mpsc::unbounded_channel();
        for i in 0..10_000 {
            tx.send(i).unwrap();
        }
        assert_eq!(rx.len(), 10_000);
        rx.close();
        assert_eq!(tx.send(1), Err(SendError(1)));
        let mut n = 0;
        while let Some(v) = rx.recv().await {
            assert_eq!(v, n);
            n += 1;
        }
        assert_eq!(n, 10_000);
    });
}

#[test]
fn values_owning_a_sender_of_their_own_channel_drop_cleanly_with_the_receiver() {
    let (tx, rx) = mpsc::unbounded_channel::<Option<mpsc::UnboundedSender<u32>>>();
    let (inner_tx, _inner_rx) = mpsc::unbounded_channel::<u32>();
    tx.send(Some(inner_tx)).unwrap();
    let (self_tx, self_rx) = mpsc::channel::<Box<dyn std::any::Any>>(2);
    self_tx.try_send(Box::new(self_tx.clone())).unwrap();
    drop(self_tx);
    // Dropping the receiver drops a value that drops a sender of the same channel.
    drop(self_rx);
    drop(rx);
}

#[test]
fn recv_many_takes_batches_in_order_and_frees_a_slot_for_each_waiting_sender() {
    run(async {
        let (tx, mut rx) = mpsc::channel::<u32>(4);
        // 4 buffered, 3 senders waiting for room.
        for i in 0..4 {
            tx.send(i).await.unwrap();
        }
        for i in 4..7 {
            let tx = tx.clone();
            ringloop::spawn(async move { tx.send(i).await.unwrap() });
        }
        ringloop::task::yield_now().await;
        drop(tx);
        let mut got = Vec::new();
        assert_eq!(rx.recv_many(&mut got, 3).await, 3);
        assert_eq!(got, [0, 1, 2]);
        // The three slots went to the three waiting senders at once, in the order they waited.
        ringloop::task::yield_now().await;
        assert_eq!(
            rx.len(),
            4,
            "every freed slot was handed to a waiting sender"
        );
        let rest = timeout(LIMIT, async {
            let mut n = 0;
            loop {
                match rx.recv_many(&mut got, 100).await {
                    0 => break n,
                    k => n += k,
                }
            }
        })
        .await
        .expect("every sender got its slot");
        assert_eq!(rest, 4);
        assert_eq!(got, [0, 1, 2, 3, 4, 5, 6]);
        assert_eq!(
            rx.recv_many(&mut got, 0).await,
            0,
            "a limit of 0 takes nothing"
        );
    });
}

#[test]
fn a_dropped_pending_recv_many_loses_nothing_and_leaves_no_waker() {
    let (tx, mut rx) = mpsc::unbounded_channel::<u32>();
    let wakes = Arc::new(WakeCount::default());
    let waker = Waker::from(wakes.clone());
    let mut batch = Vec::new();
    {
        let mut fut = Box::pin(rx.recv_many(&mut batch, 8));
        let poll = fut.as_mut().poll(&mut Context::from_waker(&waker));
        assert!(poll.is_pending());
    }
    tx.send(1).unwrap();
    assert_eq!(
        wakes.0.load(Ordering::SeqCst),
        0,
        "a dropped recv_many was woken"
    );
    assert!(batch.is_empty());
    assert_eq!(rx.try_recv(), Ok(1));
}
