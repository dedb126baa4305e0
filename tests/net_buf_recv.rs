//! `BufRecv`: lines and frames from a pooled receive, whole across chunk boundaries, kept
//! across dropped calls, with bad lines reported and skipped.

mod support;

use std::time::Duration;

use ringloop::net::{BufRecv, BufferPool, UnixStream};
use ringloop::time::{sleep, timeout};
use support::watchdog;

const LIMIT: Duration = Duration::from_secs(60);

/// Writes `bytes` in pieces of the given sizes (cycled), yielding between them so the reader
/// sees them as separate chunks.
async fn write_in_pieces(stream: &UnixStream, bytes: &[u8], sizes: &[usize]) {
    let mut at = 0;
    for size in sizes.iter().cycle() {
        if at == bytes.len() {
            break;
        }
        let end = (at + size).min(bytes.len());
        let (res, _) = stream.write_all(bytes[at..end].to_vec()).await;
        res.unwrap();
        at = end;
        sleep(Duration::from_micros(50)).await;
    }
}

#[test]
fn lines_arrive_whole_whatever_the_chunk_boundaries() {
    watchdog("lines", LIMIT, || {
        ringloop::block_on(async {
            let (a, b) = UnixStream::pair().unwrap();
            let expected: Vec<String> = (0..500)
                .map(|i| format!("line {i} {}", "·".repeat(i % 37)))
                .collect();
            let mut text = Vec::new();
            for (i, line) in expected.iter().enumerate() {
                text.extend_from_slice(line.as_bytes());
                text.extend_from_slice(if i % 3 == 0 { b"\r\n" } else { b"\n" });
            }
            let writer = ringloop::spawn(async move {
                write_in_pieces(&a, &text, &[1, 7, 64, 3, 500, 2]).await;
            });
            let pool = BufferPool::new(8, 128).unwrap();
            let mut lines = BufRecv::new(b.recv_pooled(&pool)).lines();
            let mut got = Vec::new();
            while let Some(line) = lines.next_line().await.unwrap() {
                got.push(line);
                if got.len() == expected.len() {
                    break;
                }
            }
            assert_eq!(got, expected);
            writer.await.unwrap();
        });
    });
}

#[test]
fn a_dropped_read_line_keeps_the_part_it_had_read() {
    watchdog("dropped", LIMIT, || {
        ringloop::block_on(async {
            let (a, b) = UnixStream::pair().unwrap();
            let pool = BufferPool::new(4, 64).unwrap();
            let mut reader = BufRecv::new(b.recv_pooled(&pool));
            let (res, _) = a.write_all(b"hel".to_vec()).await;
            res.unwrap();
            // The first half is buffered; the read takes it, waits for the rest and is dropped.
            assert_eq!(reader.fill_buf().await.unwrap(), b"hel");
            let mut line = String::new();
            let gave_up = timeout(Duration::from_millis(20), reader.read_line(&mut line)).await;
            assert!(gave_up.is_err());
            assert_eq!(line, "", "only whole lines reach the caller");
            assert_eq!(reader.buffer(), b"", "the half line moved into the reader");
            let (res, _) = a.write_all(b"lo\nnext\n".to_vec()).await;
            res.unwrap();
            assert_eq!(reader.read_line(&mut line).await.unwrap(), 6);
            assert_eq!(line, "hello\n");
            line.clear();
            reader.read_line(&mut line).await.unwrap();
            assert_eq!(line, "next\n");
        });
    });
}

#[test]
fn an_overlong_line_is_an_error_and_the_next_line_reads() {
    watchdog("overlong", LIMIT, || {
        ringloop::block_on(async {
            let (a, b) = UnixStream::pair().unwrap();
            let mut text = b"short\n".to_vec();
            text.extend(std::iter::repeat_n(b'x', 1000));
            text.extend_from_slice(b"\nafter\n");
            let writer = ringloop::spawn(async move {
                write_in_pieces(&a, &text, &[5, 100, 9]).await;
            });
            let pool = BufferPool::new(8, 64).unwrap();
            let mut reader = BufRecv::new(b.recv_pooled(&pool));
            reader.set_max_line(16);
            let mut lines = reader.lines();
            assert_eq!(lines.next_line().await.unwrap().as_deref(), Some("short"));
            let err = lines.next_line().await.unwrap_err();
            assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
            assert!(err.to_string().contains("longer than 16 bytes"), "{err}");
            assert_eq!(lines.next_line().await.unwrap().as_deref(), Some("after"));
            writer.await.unwrap();
        });
    });
}

#[test]
fn a_line_that_is_not_utf8_is_an_error_and_the_next_line_reads() {
    watchdog("utf8", LIMIT, || {
        ringloop::block_on(async {
            let (a, b) = UnixStream::pair().unwrap();
            let (res, _) = a.write_all(b"ok\n\xff\xfe bad\nfine\n".to_vec()).await;
            res.unwrap();
            drop(a);
            let pool = BufferPool::new(4, 64).unwrap();
            let mut lines = BufRecv::new(b.recv_pooled(&pool)).lines();
            assert_eq!(lines.next_line().await.unwrap().as_deref(), Some("ok"));
            let err = lines.next_line().await.unwrap_err();
            assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
            assert_eq!(lines.next_line().await.unwrap().as_deref(), Some("fine"));
            assert_eq!(lines.next_line().await.unwrap(), None);
        });
    });
}

#[test]
fn read_until_splits_frames_and_returns_the_tail_at_end_of_stream() {
    watchdog("until", LIMIT, || {
        ringloop::block_on(async {
            let (a, b) = UnixStream::pair().unwrap();
            let writer = ringloop::spawn(async move {
                write_in_pieces(&a, b"a\0bb\0ccc", &[2, 1]).await;
            });
            let pool = BufferPool::new(4, 64).unwrap();
            let mut reader = BufRecv::new(b.recv_pooled(&pool));
            let mut frames = Vec::new();
            loop {
                let mut frame = Vec::new();
                if reader.read_until(0, &mut frame).await.unwrap() == 0 {
                    break;
                }
                frames.push(frame);
            }
            assert_eq!(frames, [b"a\0".to_vec(), b"bb\0".to_vec(), b"ccc".to_vec()]);
            writer.await.unwrap();
        });
    });
}

#[test]
fn a_line_longer_than_the_whole_pool_is_assembled() {
    watchdog("pool", LIMIT, || {
        ringloop::block_on(async {
            let (a, b) = UnixStream::pair().unwrap();
            // 2 buffers of 64 bytes, lines of 4 KiB: chunks must go back as they are read.
            let line = "y".repeat(4096);
            let text = format!("{line}\n{line}\n");
            let writer = ringloop::spawn(async move {
                let (res, _) = a.write_all(text.into_bytes()).await;
                res.unwrap();
            });
            let pool = BufferPool::new(2, 64).unwrap();
            let mut lines = BufRecv::new(b.recv_pooled(&pool)).lines();
            for _ in 0..2 {
                assert_eq!(
                    lines.next_line().await.unwrap().as_deref(),
                    Some(line.as_str())
                );
            }
            assert_eq!(pool.available(), pool.count(), "every buffer is back");
            writer.await.unwrap();
        });
    });
}

#[test]
fn into_parts_gives_back_the_bytes_not_consumed() {
    watchdog("parts", LIMIT, || {
        ringloop::block_on(async {
            let (a, b) = UnixStream::pair().unwrap();
            let (res, _) = a.write_all(b"first\nrest of it".to_vec()).await;
            res.unwrap();
            let pool = BufferPool::new(4, 64).unwrap();
            let mut reader = BufRecv::new(b.recv_pooled(&pool));
            // One send of 16 bytes on a Unix socket arrives as one chunk.
            assert_eq!(reader.fill_buf().await.unwrap(), b"first\nrest of it");
            let mut line = String::new();
            reader.read_line(&mut line).await.unwrap();
            assert_eq!(line, "first\n");
            let (_stream, rest) = reader.into_parts();
            assert_eq!(rest, b"rest of it");
        });
    });
}

/// What `Lines::next_line` must return for `text`, line by line: `Ok(line)` without its `\n`
/// or `\r\n`, or `Err(())` for a line over `max_line` bytes (its `\n` counted) or not UTF-8.
fn model_lines(text: &[u8], max_line: usize) -> Vec<Result<String, ()>> {
    let mut out = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let (line, next) = match rest.iter().position(|&b| b == b'\n') {
            Some(i) => (&rest[..=i], &rest[i + 1..]),
            None => (rest, &rest[rest.len()..]),
        };
        rest = next;
        if line.len() > max_line {
            out.push(Err(()));
            continue;
        }
        // `\r` is stripped only before a `\n`.
        let line = match line.strip_suffix(b"\n") {
            Some(line) => line.strip_suffix(b"\r").unwrap_or(line),
            None => line,
        };
        out.push(String::from_utf8(line.to_vec()).map_err(|_| ()));
    }
    out
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]

    #[test]
    fn lines_match_a_model_whatever_the_chunking_and_limit(
        pieces in proptest::collection::vec(
            proptest::prop_oneof![
                proptest::strategy::Just(b"\n".to_vec()),
                proptest::strategy::Just(b"\r\n".to_vec()),
                proptest::strategy::Just(vec![0xff]),
                proptest::collection::vec(b'a'..=b'z', 0..40),
            ],
            0..60,
        ),
        chunks in proptest::collection::vec(1usize..90, 1..8),
        max_line in 1usize..64,
    ) {
        let text: Vec<u8> = pieces.concat();
        let expected = model_lines(&text, max_line);
        let got = ringloop::block_on(async {
            let (a, b) = UnixStream::pair().unwrap();
            let sender = text.clone();
            let writer = ringloop::spawn(async move {
                let mut at = 0;
                for size in chunks.iter().cycle() {
                    if at == sender.len() {
                        break;
                    }
                    let end = (at + size).min(sender.len());
                    let (res, _) = a.write_all(sender[at..end].to_vec()).await;
                    res.unwrap();
                    at = end;
                    ringloop::task::yield_now().await;
                }
            });
            let pool = BufferPool::new(4, 64).unwrap();
            let mut reader = BufRecv::new(b.recv_pooled(&pool));
            reader.set_max_line(max_line);
            let mut lines = reader.lines();
            let mut got = Vec::new();
            loop {
                let next = timeout(Duration::from_secs(10), lines.next_line())
                    .await
                    .expect("a line or the end within 10 s");
                match next {
                    Ok(Some(line)) => got.push(Ok(line)),
                    Ok(None) => break,
                    Err(e) => {
                        assert_eq!(e.kind(), std::io::ErrorKind::InvalidData);
                        got.push(Err(()));
                    }
                }
            }
            // The writer's end closed when it finished: that was the end of the stream.
            writer.await.unwrap();
            got
        });
        proptest::prop_assert_eq!(got, expected);
    }
}
