//! oneshot: send, drop of either side, close, cancellation of the receive.

mod support;

use std::future::Future;
use std::task::{Context, Poll, Waker};

use ringloop::sync::oneshot::{self, error::TryRecvError};
use ringloop::time::timeout;
use support::{run, LIMIT};

#[test]
fn a_sent_value_is_received_across_tasks() {
    run(async {
        let (tx, rx) = oneshot::channel();
        ringloop::spawn(async move {
            ringloop::task::yield_now().await;
            tx.send("done").unwrap();
        });
        assert_eq!(timeout(LIMIT, rx).await.unwrap(), Ok("done"));
    });
}

#[test]
fn dropping_the_sender_gives_recv_error_to_a_waiting_receiver() {
    run(async {
        let (tx, rx) = oneshot::channel::<u32>();
        let waiter = ringloop::spawn(rx);
        ringloop::task::yield_now().await;
        drop(tx);
        let res = timeout(LIMIT, waiter).await.unwrap().unwrap();
        assert!(res.is_err());
    });
}

#[test]
fn dropping_the_receiver_hands_the_value_back_and_wakes_closed() {
    run(async {
        let (mut tx, rx) = oneshot::channel::<String>();
        let dropper = ringloop::spawn(async move { drop(rx) });
        timeout(LIMIT, tx.closed()).await.unwrap();
        dropper.await.unwrap();
        assert!(tx.is_closed());
        assert_eq!(tx.send("x".into()), Err("x".to_string()));
    });
}

#[test]
fn a_receive_dropped_while_pending_loses_nothing_polled_again() {
    let (tx, mut rx) = oneshot::channel::<u32>();
    assert!(std::pin::Pin::new(&mut rx)
        .poll(&mut Context::from_waker(Waker::noop()))
        .is_pending());
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    tx.send(5).unwrap();
    assert_eq!(
        std::pin::Pin::new(&mut rx).poll(&mut Context::from_waker(Waker::noop())),
        Poll::Ready(Ok(5))
    );
    assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
}

#[test]
fn close_refuses_later_sends_but_keeps_an_earlier_one() {
    let (tx, mut rx) = oneshot::channel::<u32>();
    rx.close();
    assert_eq!(tx.send(1), Err(1));

    let (tx, mut rx) = oneshot::channel::<u32>();
    tx.send(2).unwrap();
    rx.close();
    assert_eq!(rx.try_recv(), Ok(2));
}
