//! Waiting on several futures at once: [`select!`](crate::select) (the first to finish wins)
//! and [`join!`](crate::join) (wait for all). Plain `macro_rules`, no allocation, no
//! randomness: branches are polled in the order they are written, every time the task wakes.
//!
//! They live beside the channels because that is what they are mostly used with
//! (`recv` against a timeout or a shutdown signal); both are exported at the crate root.
//!
//! Implementation note: each recursive step of the macros writes the identifiers `fut`,
//! `out` and `on` afresh, and macro hygiene makes every step's identifiers distinct, so
//! every branch gets its own pinned future and output slot without naming them.

/// Waits on several futures and runs the handler of the first that completes with a value
/// matching its pattern; the other futures are dropped (cancelled) before the handler runs.
///
/// ```text
/// ringloop::select! {
///     biased;                          // optional: branches are always polled in order
///     <pattern> = <future> => <handler>,
///     ...
///     else => <handler>,               // optional: when every branch is disabled
/// }
/// ```
///
/// * Branches are polled top to bottom on every wake, so an earlier branch wins when several
///   are ready (tokio's `biased;` mode; there is no random mode).
/// * A future that completes with a value that does not match its pattern disables its
///   branch; the others keep going. If every branch is disabled, the `else` handler runs
///   (without one, `select!` panics).
/// * Handlers run outside the macro's polling, after the losing futures are dropped, so a
///   handler may use `.await`, `break`, `continue`, `return` and `?`, and may touch what the
///   futures borrowed (for example the receiver of a `recv()` branch).
/// * Patterns are matched through a reference first (to check them without moving the
///   value), so a by-value `mut` binding of a non-`Copy` value (`Some(mut v)`) does not
///   compile; bind `Some(v)` and write `let mut v = v;` in the handler.
///
/// # Cancel safety
///
/// The losers are dropped, so use futures that are cancel safe: every `recv`, `acquire`,
/// `notified` and `changed` in [`ringloop::sync`](crate::sync) is.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use ringloop::sync::mpsc;
///
/// ringloop::block_on(async {
///     let (tx, mut rx) = mpsc::channel::<u32>(8);
///     let (stop_tx, mut stop_rx) = mpsc::channel::<()>(1);
///     ringloop::spawn(async move {
///         for i in 1..=3 {
///             tx.send(i).await.unwrap();
///         }
///         stop_tx.send(()).await.unwrap();
///     });
///
///     let mut sum = 0;
///     loop {
///         ringloop::select! {
///             biased;
///             Some(v) = rx.recv() => sum += v,
///             _ = stop_rx.recv() => break,
///             _ = ringloop::time::sleep(Duration::from_secs(10)) => panic!("stuck"),
///         }
///     }
///     assert_eq!(sum, 6); // biased: buffered values are taken before the stop signal
/// });
/// ```
#[macro_export]
macro_rules! select {
    // Parsing, one branch at a time, into `{fut out on (pattern) (future) (handler)}`.
    (@parse [$($done:tt)*]) => {
        $crate::select!(@emit [$($done)*] [panic!(
            "ringloop::select!: every branch is disabled and there is no `else` branch"
        )])
    };
    (@parse [$($done:tt)*] else => $else:expr $(,)?) => {
        $crate::select!(@emit [$($done)*] [$else])
    };
    (@parse [$($done:tt)*] $p:pat = $f:expr => $body:block $(,)? $($rest:tt)*) => {
        $crate::select!(@parse [$($done)* {fut out on ($p) ($f) ($body)}] $($rest)*)
    };
    (@parse [$($done:tt)*] $p:pat = $f:expr => $body:expr, $($rest:tt)*) => {
        $crate::select!(@parse [$($done)* {fut out on ($p) ($f) ($body)}] $($rest)*)
    };
    (@parse [$($done:tt)*] $p:pat = $f:expr => $body:expr) => {
        $crate::select!(@parse [$($done)* {fut out on ($p) ($f) ($body)}])
    };

    (@emit [$({$fut:ident $out:ident $on:ident ($p:pat) ($f:expr) ($body:expr)})+] [$else:expr]) => {{
        $( let mut $out = ::core::option::Option::None; )+
        {
            $(
                let mut $fut = ::core::pin::pin!(::core::future::IntoFuture::into_future($f));
                let mut $on = true;
            )+
            ::core::future::poll_fn(|cx| {
                let mut any_pending = false;
                $(
                    if $on {
                        match ::core::future::Future::poll($fut.as_mut(), cx) {
                            ::core::task::Poll::Ready(value) => {
                                #[allow(unused_variables)]
                                let matched = match &value {
                                    $p => true,
                                    _ => false,
                                };
                                if matched {
                                    $out = ::core::option::Option::Some(value);
                                    return ::core::task::Poll::Ready(());
                                }
                                // Completed without a match: this branch is out for good.
                                $on = false;
                            }
                            ::core::task::Poll::Pending => any_pending = true,
                        }
                    }
                )+
                if any_pending {
                    ::core::task::Poll::Pending
                } else {
                    ::core::task::Poll::Ready(())
                }
            })
            .await;
        }
        $crate::select!(@handle [$({$out ($p) ($body)})+] [$else])
    }};

    (@handle [{$out:ident ($p:pat) ($body:expr)} $($rest:tt)*] [$else:expr]) => {
        if let ::core::option::Option::Some(value) = $out {
            #[allow(unreachable_patterns)]
            match value {
                $p => $body,
                _ => ::core::unreachable!("the pattern matched when the branch completed"),
            }
        } else {
            $crate::select!(@handle [$($rest)*] [$else])
        }
    };
    (@handle [] [$else:expr]) => {
        $else
    };

    // The entry points, last so that the `@` rules above match first.
    (biased; $($branches:tt)*) => {
        $crate::select!(@parse [] $($branches)*)
    };
    ($($branches:tt)*) => {
        $crate::select!(@parse [] $($branches)*)
    };
}

/// Waits for every future and returns their outputs as a tuple, in the order written.
///
/// The futures run concurrently on the current task: each wake polls, in order, those not
/// finished yet.
///
/// # Examples
///
/// ```
/// use ringloop::sync::oneshot;
///
/// ringloop::block_on(async {
///     let (tx, rx) = oneshot::channel();
///     let (a, b) = ringloop::join!(
///         async {
///             ringloop::task::yield_now().await;
///             tx.send(40).unwrap();
///             1
///         },
///         async { rx.await.unwrap() + 1 },
///     );
///     assert_eq!((a, b), (1, 41));
/// });
/// ```
#[macro_export]
macro_rules! join {
    (@parse [$($done:tt)*]) => {
        $crate::join!(@emit $($done)*)
    };
    (@parse [$($done:tt)*] $f:expr $(, $($rest:tt)*)?) => {
        $crate::join!(@parse [$($done)* {fut out ($f)}] $($($rest)*)?)
    };
    (@emit $({$fut:ident $out:ident ($f:expr)})*) => {{
        $(
            let mut $fut = ::core::pin::pin!(::core::future::IntoFuture::into_future($f));
            let mut $out = ::core::option::Option::None;
        )*
        ::core::future::poll_fn(|cx| {
            let mut all_done = true;
            $(
                if $out.is_none() {
                    match ::core::future::Future::poll($fut.as_mut(), cx) {
                        ::core::task::Poll::Ready(value) => {
                            $out = ::core::option::Option::Some(value);
                        }
                        ::core::task::Poll::Pending => all_done = false,
                    }
                }
            )*
            if all_done {
                ::core::task::Poll::Ready(())
            } else {
                ::core::task::Poll::Pending
            }
        })
        .await;
        ($($out.expect("joined future finished"),)*)
    }};
    ($($futures:tt)*) => {
        $crate::join!(@parse [] $($futures)*)
    };
}
