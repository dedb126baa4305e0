//! Files through the ring: round trips, errors, short writes, many ops on a small ring,
//! and dropped reads that must not break the runtime.

mod support;

use std::os::fd::AsRawFd;
use std::time::Duration;

use ringloop::fs::File;
use support::watchdog;

const LIMIT: Duration = Duration::from_secs(120);

fn temp_path(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("ringloop-test-{}-{name}", std::process::id()))
}

#[test]
fn write_then_read_back_returns_the_same_bytes_and_the_buffers() {
    let path = temp_path("roundtrip");
    ringloop::block_on(async {
        let file = File::create(&path).await.unwrap();
        let (res, buf) = file.write_at(b"hello world".to_vec(), 0).await;
        assert_eq!(res.unwrap(), 11);
        assert_eq!(buf, b"hello world");
        file.sync_all().await.unwrap();
        file.sync_data().await.unwrap();
        let (res, buf) = file.read_at(Vec::with_capacity(32), 6).await;
        assert_eq!(res.unwrap(), 5);
        assert_eq!(
            buf, b"world",
            "a read sets the Vec's length to what it read"
        );
        let (res, buf) = file.read_at(vec![0u8; 4].into_boxed_slice(), 0).await;
        assert_eq!((res.unwrap(), &buf[..]), (4, &b"hell"[..]));
        let (res, buf) = file.read_at(bytes::BytesMut::with_capacity(8), 100).await;
        assert_eq!(
            (res.unwrap(), buf.len()),
            (0, 0),
            "reading past the end gives 0"
        );
        file.close().await.unwrap();
    });
    std::fs::remove_file(path).unwrap();
}

#[test]
fn every_buffer_kind_can_be_written() {
    let path = temp_path("buffers");
    ringloop::block_on(async {
        let file = File::create(&path).await.unwrap();
        let mut pos = 0;
        let (r, _) = file
            .write_all_at(bytes::Bytes::from_static(b"ab"), pos)
            .await;
        r.unwrap();
        pos += 2;
        let (r, _) = file.write_all_at(&b"cd"[..], pos).await;
        r.unwrap();
        pos += 2;
        let (r, _) = file.write_all_at("ef", pos).await;
        r.unwrap();
        pos += 2;
        let (r, _) = file
            .write_all_at(bytes::BytesMut::from(&b"gh"[..]), pos)
            .await;
        r.unwrap();
        let (r, _) = file
            .write_all_at(vec![b'i'].into_boxed_slice(), pos + 2)
            .await;
        r.unwrap();
        let (r, buf) = file.read_exact_at(Vec::with_capacity(9), 0).await;
        r.unwrap();
        assert_eq!(buf, b"abcdefghi");
    });
    std::fs::remove_file(path).unwrap();
}

#[test]
fn create_truncates_and_opens_read_write() {
    let path = temp_path("truncate");
    std::fs::write(&path, b"old contents that are long").unwrap();
    ringloop::block_on(async {
        let file = File::create(&path).await.unwrap();
        let (res, _) = file.write_all_at(b"new".to_vec(), 0).await;
        res.unwrap();
        let (res, buf) = file.read_at(vec![0u8; 64], 0).await;
        assert_eq!(&buf[..res.unwrap()], b"new");
    });
    std::fs::remove_file(path).unwrap();
}

#[test]
fn opening_a_missing_file_is_not_found_and_bad_paths_are_invalid_input() {
    ringloop::block_on(async {
        let err = File::open("/nonexistent/ringloop/file").await.unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
        let err = File::open("bad\0path").await.unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    });
}

#[test]
fn writing_to_a_read_only_file_is_an_error_not_a_panic() {
    let path = temp_path("readonly");
    std::fs::write(&path, b"x").unwrap();
    ringloop::block_on(async {
        let file = File::open(&path).await.unwrap();
        let (res, buf) = file.write_at(b"y".to_vec(), 0).await;
        assert_eq!(res.unwrap_err().raw_os_error(), Some(libc::EBADF));
        assert_eq!(buf, b"y", "the buffer comes back on error too");
    });
    std::fs::remove_file(path).unwrap();
}

#[test]
fn read_exact_at_reports_early_end_of_file() {
    let path = temp_path("short");
    std::fs::write(&path, b"abc").unwrap();
    ringloop::block_on(async {
        let file = File::open(&path).await.unwrap();
        let (res, buf) = file.read_exact_at(Vec::with_capacity(10), 0).await;
        assert_eq!(res.unwrap_err().kind(), std::io::ErrorKind::UnexpectedEof);
        assert_eq!(buf, b"abc");
    });
    std::fs::remove_file(path).unwrap();
}

#[test]
fn write_all_at_writes_four_mebibytes_exactly_in_order() {
    let path = temp_path("big");
    let data: Vec<u8> = (0..4 << 20).map(|i: u32| (i % 251) as u8).collect();
    ringloop::block_on(async {
        let file = File::create(&path).await.unwrap();
        let (res, data_back) = file.write_all_at(data.clone(), 0).await;
        res.unwrap();
        let (res, read) = file.read_exact_at(Vec::with_capacity(data.len()), 0).await;
        res.unwrap();
        assert!(read == data_back);
    });
    assert_eq!(std::fs::read(&path).unwrap(), data);
    std::fs::remove_file(path).unwrap();
}

#[test]
fn dropped_read_on_an_empty_pipe_then_data_written_keeps_the_runtime_working() {
    watchdog("dropped pipe read", LIMIT, || {
        let rt = ringloop::Runtime::new().unwrap();
        let (r, w) = support::pipe();
        rt.block_on(async {
            let reader = File::from_std(std::fs::File::from(r));
            let res =
                ringloop::time::timeout(Duration::from_millis(2), reader.read_at(vec![0u8; 64], 0))
                    .await;
            assert!(res.is_err(), "nothing was written yet");
            // The read is being cancelled; its buffer stays with the runtime until the kernel
            // lets go. Wait for that: bytes written earlier may legitimately go to the dropped
            // read (without DEFER_TASKRUN the kernel can complete it before the cancel arrives).
            while rt.stats().ops_in_flight > 0 {
                ringloop::task::yield_now().await;
            }
            nix::unistd::write(&w, b"after").unwrap();
            let (res, buf) = reader.read_at(vec![0u8; 64], 0).await;
            assert_eq!(
                &buf[..res.unwrap()],
                b"after",
                "the cancelled read must not eat the bytes"
            );
            ringloop::time::sleep(Duration::from_millis(1)).await;
        });
        let stats = rt.stats();
        assert_eq!(stats.ops_in_flight, 0, "{stats:?}");
        assert!(stats.cancels_submitted >= 1);
    });
}

#[test]
fn ten_thousand_reads_on_a_64_entry_ring_all_complete() {
    watchdog("10k reads", LIMIT, || {
        let path = temp_path("many");
        std::fs::write(&path, (0..=255u8).collect::<Vec<u8>>()).unwrap();
        let rt = ringloop::Builder::new().entries(64).build().unwrap();
        rt.block_on(async {
            let file = std::rc::Rc::new(File::open(&path).await.unwrap());
            let tasks: Vec<_> = (0..10_000u64)
                .map(|i| {
                    let file = file.clone();
                    ringloop::spawn(async move {
                        let (res, buf) = file.read_at(vec![0u8; 1], i % 256).await;
                        assert_eq!(res.unwrap(), 1);
                        assert_eq!(buf[0], (i % 256) as u8);
                    })
                })
                .collect();
            for t in tasks {
                t.await.unwrap();
            }
        });
        assert_eq!(rt.stats().ops_in_flight, 0);
        std::fs::remove_file(path).unwrap();
    });
}

#[test]
fn close_waits_for_operations_in_flight_and_frees_the_fd() {
    support::isolated(
        "close_waits_for_operations_in_flight_and_frees_the_fd",
        || {
            watchdog("close", LIMIT, || {
                let before = support::open_fds();
                let (r, w) = support::pipe();
                ringloop::block_on(async {
                    let reader = File::from_std(std::fs::File::from(r));
                    let raw = reader.as_raw_fd();
                    // A read dropped while pending: close must still finish.
                    let _ = ringloop::time::timeout(
                        Duration::from_millis(1),
                        reader.read_at(vec![0u8; 8], 0),
                    )
                    .await;
                    reader.close().await.unwrap();
                    let open = std::path::Path::new(&format!("/proc/self/fd/{raw}")).exists();
                    assert!(!open, "fd {raw} still open");
                });
                drop(w);
                assert_eq!(support::open_fds(), before);
            })
        },
    );
}

#[test]
fn a_file_is_a_stream_read_and_written_at_its_position() {
    use ringloop::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
    use std::io::SeekFrom;
    let path = temp_path("stream");
    ringloop::block_on(async {
        let file = File::create(&path).await.unwrap();
        for part in [&b"one "[..], b"two ", b"three"] {
            let (res, _) = file.write_all(part.to_vec()).await;
            res.unwrap();
        }
        assert_eq!(
            file.seek(SeekFrom::Current(0)).unwrap(),
            13,
            "writes moved the position"
        );
        // Positional calls neither use nor move it.
        let (res, _) = file.write_at(b"ONE".to_vec(), 0).await;
        res.unwrap();
        assert_eq!(file.seek(SeekFrom::Current(0)).unwrap(), 13);
        assert_eq!(file.seek(SeekFrom::Start(4)).unwrap(), 4);
        let (res, buf) = file.read(Vec::with_capacity(4)).await;
        assert_eq!((res.unwrap(), &buf[..]), (4, &b"two "[..]));
        let (res, rest) = file.read_to_end(Vec::new()).await;
        res.unwrap();
        assert_eq!(rest, b"three");
        assert_eq!(file.seek(SeekFrom::End(-5)).unwrap(), 8);
        let (res, buf) = file.read(Vec::with_capacity(64)).await;
        assert_eq!((res.unwrap(), &buf[..]), (5, &b"three"[..]));
        let err = file.seek(SeekFrom::Current(-100)).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
        let (res, all) = file.read_to_end_at(Vec::new(), 0).await;
        res.unwrap();
        assert_eq!(all, b"ONE two three");
    });
    std::fs::remove_file(path).unwrap();
}

#[test]
fn an_appending_file_writes_at_its_end_whatever_the_position() {
    use ringloop::io::AsyncWriteExt;
    use std::io::SeekFrom;
    let path = temp_path("append");
    std::fs::write(&path, b"log:").unwrap();
    ringloop::block_on(async {
        let file = ringloop::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .await
            .unwrap();
        file.seek(SeekFrom::Start(0)).unwrap();
        let (res, _) = file.write_all(b" a".to_vec()).await;
        res.unwrap();
        let (res, _) = file.write_all(b" b".to_vec()).await;
        res.unwrap();
    });
    assert_eq!(std::fs::read(&path).unwrap(), b"log: a b");
    std::fs::remove_file(path).unwrap();
}

#[test]
fn io_copy_sends_a_file_down_a_socket_whole() {
    use ringloop::io::AsyncReadExt;
    let path = temp_path("copy");
    let data: Vec<u8> = (0..(1 << 20) + 12_345)
        .map(|i| (i * 7 % 251) as u8)
        .collect();
    std::fs::write(&path, &data).unwrap();
    watchdog("copy", LIMIT, || {
        ringloop::block_on(async {
            let (a, b) = ringloop::net::UnixStream::pair().unwrap();
            let reader = ringloop::spawn(async move {
                let (res, got) = b.read_to_end(Vec::new()).await;
                res.unwrap();
                got
            });
            let file = File::open(&path).await.unwrap();
            let copied = ringloop::io::copy(&file, &a).await.unwrap();
            assert_eq!(copied, data.len() as u64);
            a.shutdown(std::net::Shutdown::Write).unwrap();
            assert!(
                reader.await.unwrap() == data,
                "the socket got the file's bytes"
            );
        });
    });
    std::fs::remove_file(path).unwrap();
}
