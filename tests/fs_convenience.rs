//! `tokio::fs`'s whole-file and directory helpers on ringloop: `read`, `read_to_string`,
//! `write`, `write_owned`, `File::read_to_end_at`, `File::set_len`, `create_dir_all`, `copy`,
//! `read_dir`, `remove_dir_all`, `canonicalize`, `symlink_metadata`, `hard_link`, `symlink`.
//!
//! Each test works in a fresh temp directory of its own, removed when the test ends.

mod support;

use std::io::{ErrorKind, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::task::Poll;
use std::time::Duration;

use ringloop::fs::{self, File, OpenOptions};
use support::watchdog;

const LIMIT: Duration = Duration::from_secs(30);

/// A fresh directory under the temp dir, removed (with everything in it) on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(test: &str) -> TempDir {
        let path = std::env::temp_dir().join(format!(
            "ringloop-fs-convenience-{}-{test}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&path); // left over by a killed run
        std::fs::create_dir(&path).expect("create the test's temp dir");
        TempDir(path)
    }

    fn join(&self, name: impl AsRef<Path>) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `len` bytes of a pattern that does not repeat at any power-of-two period.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

/// Whether the environment sends link, symlink and set_len to the blocking pool
/// (`RINGLOOP_FALLBACK=ops` or `all`).
fn fallback_forced() -> bool {
    std::env::var("RINGLOOP_FALLBACK")
        .is_ok_and(|v| v.split(',').any(|f| matches!(f.trim(), "ops" | "all")))
}

/// Whether the running kernel is at least `major.minor`.
fn kernel_at_least(major: u32, minor: u32) -> bool {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut parts = release
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|p| p.parse::<u32>().ok());
    let version = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    version >= (major, minor)
}

/// Runs `op` and says whether it went to the blocking pool: `spawn_blocking` spawns the task
/// that waits for the job; a ring op spawns nothing.
async fn used_blocking_pool<T>(op: impl std::future::Future<Output = T>) -> (T, bool) {
    let before = ringloop::RuntimeStats::current().tasks_spawned;
    let out = op.await;
    let after = ringloop::RuntimeStats::current().tasks_spawned;
    (out, after > before)
}

#[test]
fn empty_small_and_multi_megabyte_files_round_trip() {
    let dir = TempDir::new("round-trip");
    watchdog("round trip", LIMIT, || {
        ringloop::block_on(async {
            let empty = dir.join("empty");
            fs::write(&empty, b"").await.unwrap();
            assert_eq!(fs::read(&empty).await.unwrap(), b"");
            assert_eq!(fs::read_to_string(&empty).await.unwrap(), "");
            assert_eq!(std::fs::metadata(&empty).unwrap().len(), 0);

            let small = dir.join("small");
            fs::write(&small, "hello, ring").await.unwrap();
            assert_eq!(fs::read(&small).await.unwrap(), b"hello, ring");
            assert_eq!(fs::read_to_string(&small).await.unwrap(), "hello, ring");

            // Not a multiple of any page or read size.
            let big = pattern(9 * 1024 * 1024 + 13);
            let path = dir.join("big");
            fs::write(&path, &big).await.unwrap();
            assert_eq!(std::fs::read(&path).unwrap(), big, "write wrote every byte");
            let read = fs::read(&path).await.unwrap();
            assert!(read == big, "read returned every byte in order");
            assert_eq!(read.capacity(), big.len(), "sized by statx, never regrown");

            // The owned-buffer form writes without a copy and hands the buffer back.
            let owned = dir.join("owned");
            let (res, back) = fs::write_owned(&owned, big).await;
            res.unwrap();
            assert_eq!(back.len(), 9 * 1024 * 1024 + 13);
            assert!(std::fs::read(&owned).unwrap() == back);
            let (res, _) = fs::write_owned(&owned, &b"static bytes"[..]).await;
            res.unwrap();
            assert_eq!(fs::read(&owned).await.unwrap(), b"static bytes");
        });
    });
}

#[test]
fn read_to_end_at_appends_from_the_offset_and_ignores_the_capacity_as_a_size() {
    let dir = TempDir::new("read-to-end-at");
    let data = pattern(100_000);
    std::fs::write(dir.join("f"), &data).unwrap();
    watchdog("read_to_end_at", LIMIT, || {
        ringloop::block_on(async {
            let file = File::open(dir.join("f")).await.unwrap();

            // Exactly sized: appended after the existing bytes, with no reallocation.
            let mut buf = Vec::with_capacity(2 + 60_000);
            buf.extend_from_slice(b"xy");
            let (res, buf) = file.read_to_end_at(buf, 40_000).await;
            assert_eq!(res.unwrap(), 60_000);
            assert_eq!(&buf[..2], b"xy");
            assert!(buf[2..] == data[40_000..]);
            assert_eq!(buf.capacity(), 2 + 60_000);

            // Less capacity than the file has, as a size hint gone stale would give: the
            // capacity is not taken for the end of the file.
            let (res, buf) = file.read_to_end_at(Vec::with_capacity(10), 0).await;
            assert_eq!(res.unwrap(), data.len());
            assert!(buf == data);

            // No capacity: grows as needed.
            let (res, buf) = file.read_to_end_at(Vec::new(), 0).await;
            assert_eq!(res.unwrap(), data.len());
            assert!(buf == data);

            // Far more capacity than the file: the short end is the end, not an error.
            let (res, buf) = file
                .read_to_end_at(Vec::with_capacity(1 << 20), 99_990)
                .await;
            assert_eq!(res.unwrap(), 10);
            assert!(buf == data[99_990..]);

            // At or past the end: nothing, and the buffer is untouched.
            let (res, buf) = file.read_to_end_at(b"keep".to_vec(), 100_000).await;
            assert_eq!(res.unwrap(), 0);
            assert_eq!(buf, b"keep");
            let (res, _) = file.read_to_end_at(Vec::new(), 1 << 40).await;
            assert_eq!(res.unwrap(), 0);
            file.close().await.unwrap();
        });
    });
}

#[test]
fn read_follows_a_fifo_to_its_end_though_its_size_is_zero() {
    let dir = TempDir::new("fifo");
    let fifo = dir.join("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    // Many times a pipe's buffer: many reads.
    let data = pattern(1024 * 1024 + 7);
    // Read-write: opening does not wait for a reader, and the FIFO stays open for ours.
    let mut writer = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&fifo)
        .unwrap();
    let sent = data.clone();
    let feeder = std::thread::spawn(move || {
        for chunk in sent.chunks(10_000) {
            writer.write_all(chunk).unwrap();
        }
        // Dropping the last writer is the end of the file for the reader.
    });
    let read = watchdog("fifo read", LIMIT, || {
        ringloop::block_on(async { fs::read(&fifo).await.unwrap() })
    });
    feeder.join().unwrap();
    assert_eq!(read.len(), data.len());
    assert!(read == data);
}

#[test]
fn read_of_a_file_another_thread_appends_to_is_always_a_prefix_of_what_was_written() {
    const CHUNK: usize = 16 * 1024;
    const CHUNKS: usize = 256; // 4 MiB in the end
    const MAX_ROUNDS: usize = 500;
    let dir = TempDir::new("appended");
    let path = dir.join("growing");
    let data = Arc::new(pattern(CHUNK * CHUNKS));
    std::fs::write(&path, &data[..CHUNK]).unwrap();
    let written = Arc::new(AtomicUsize::new(CHUNK));
    let start = Arc::new(Barrier::new(2));

    let appender = {
        let (data, written, start) = (data.clone(), written.clone(), start.clone());
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        std::thread::spawn(move || {
            start.wait();
            for k in 1..CHUNKS {
                file.write_all(&data[k * CHUNK..(k + 1) * CHUNK]).unwrap();
                written.store((k + 1) * CHUNK, Ordering::Release);
                // Paces the appends so that many reads overlap them; no result depends on it.
                std::thread::sleep(Duration::from_micros(100));
            }
        })
    };

    watchdog("read while appending", LIMIT, || {
        ringloop::block_on(async {
            start.wait();
            for _ in 0..MAX_ROUNDS {
                // Whatever the interleaving: at least what was in the file when the read
                // began, at most that plus the one append that may be under way when it ended.
                let before = written.load(Ordering::Acquire);
                let read = fs::read(&path).await.unwrap();
                let after = (written.load(Ordering::Acquire) + CHUNK).min(data.len());
                assert!(
                    (before..=after).contains(&read.len()),
                    "read {} bytes while the file grew from {before} to at most {after}",
                    read.len()
                );
                assert!(read[..] == data[..read.len()], "a prefix of the data");
                if before == data.len() {
                    break;
                }
            }
        });
    });
    appender.join().unwrap();
    let last = ringloop::block_on(fs::read(&path)).unwrap();
    assert!(last == *data);
}

#[test]
fn read_of_a_file_another_thread_truncates_returns_the_data_up_to_a_size_it_had() {
    const STEP: usize = 64 * 1024;
    const STEPS: usize = 64; // 4 MiB at the start
    const MAX_ROUNDS: usize = 500;
    let dir = TempDir::new("truncated");
    let path = dir.join("shrinking");
    let data = pattern(STEP * STEPS);
    std::fs::write(&path, &data).unwrap();
    let size = Arc::new(AtomicUsize::new(data.len()));
    let start = Arc::new(Barrier::new(2));

    let cutter = {
        let (size, start) = (size.clone(), start.clone());
        let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        std::thread::spawn(move || {
            start.wait();
            for k in (0..STEPS).rev() {
                file.set_len((k * STEP) as u64).unwrap();
                size.store(k * STEP, Ordering::Release);
                // Paces the cuts so that many reads overlap them; no result depends on it.
                std::thread::sleep(Duration::from_micros(400));
            }
        })
    };

    watchdog("read while truncating", LIMIT, || {
        ringloop::block_on(async {
            start.wait();
            for _ in 0..MAX_ROUNDS {
                // The file only shrinks: at most its size when the read began, at least its
                // size when it ended, less the one cut that may be under way.
                let before = size.load(Ordering::Acquire);
                let read = fs::read(&path).await.unwrap();
                let after = size.load(Ordering::Acquire).saturating_sub(STEP);
                assert!(
                    (after..=before).contains(&read.len()),
                    "read {} bytes while the file shrank from {before} to no less than {after}",
                    read.len()
                );
                // Below `after` no cut happened during the read: the data, exactly. Above it,
                // a cut inside a (large) folio zeroes the folio's tail before dropping it, and
                // a read that began before the cut may copy those zeros: std::fs::read does too.
                assert!(read[..after] == data[..after], "a prefix of the data");
                let tail = read[after..].iter().zip(&data[after..]);
                assert!(
                    tail.into_iter().all(|(&got, &was)| got == was || got == 0),
                    "beyond the last cut: the data, or zeros of a cut under way"
                );
                if before == 0 {
                    break;
                }
            }
        });
    });
    cutter.join().unwrap();
    assert_eq!(ringloop::block_on(fs::read(&path)).unwrap(), b"");
}

#[test]
fn read_to_string_of_invalid_utf8_is_invalid_data() {
    let dir = TempDir::new("utf8");
    let path = dir.join("latin1");
    std::fs::write(&path, b"caf\xe9").unwrap();
    ringloop::block_on(async {
        let err = fs::read_to_string(&path).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidData);
        // The bytes are still readable as bytes.
        assert_eq!(fs::read(&path).await.unwrap(), b"caf\xe9");
        fs::write(&path, "café").await.unwrap();
        assert_eq!(fs::read_to_string(&path).await.unwrap(), "café");
    });
}

#[test]
fn reading_or_writing_a_directory_as_a_file_fails_with_is_a_directory() {
    let dir = TempDir::new("dir-as-file");
    ringloop::block_on(async {
        let err = fs::read(&dir.0).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::IsADirectory);
        let err = fs::read_to_string(&dir.0).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::IsADirectory);
        let err = fs::write(&dir.0, "x").await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::IsADirectory);
    });
}

#[test]
fn write_over_an_existing_longer_file_truncates_it() {
    let dir = TempDir::new("overwrite");
    let path = dir.join("f");
    std::fs::write(&path, pattern(100_000)).unwrap();
    ringloop::block_on(async {
        fs::write(&path, "short").await.unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"short");
        let (res, _) = fs::write_owned(&path, b"s".to_vec()).await;
        res.unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"s");
    });
}

#[test]
fn set_len_grows_with_zeros_and_shrinks() {
    let dir = TempDir::new("set-len");
    let path = dir.join("f");
    watchdog("set_len", LIMIT, || {
        ringloop::block_on(async {
            let file = File::create(&path).await.unwrap();
            file.write_all_at(b"hello world".to_vec(), 0)
                .await
                .0
                .unwrap();

            let (res, pooled) = used_blocking_pool(file.set_len(5)).await;
            res.unwrap();
            let expect_pool = fallback_forced() || !kernel_at_least(6, 9);
            assert_eq!(
                pooled, expect_pool,
                "IORING_OP_FTRUNCATE when the kernel has it"
            );
            assert_eq!(fs::read(&path).await.unwrap(), b"hello");

            file.set_len(8).await.unwrap();
            assert_eq!(fs::read(&path).await.unwrap(), b"hello\0\0\0");
            assert_eq!(file.metadata().await.unwrap().len(), 8);

            // Past 4 GiB (a hole): the length is not cut to 32 bits anywhere.
            let big = (1u64 << 32) + 5;
            file.set_len(big).await.unwrap();
            assert_eq!(fs::metadata(&path).await.unwrap().len(), big);
            file.set_len(0).await.unwrap();
            assert_eq!(fs::metadata(&path).await.unwrap().len(), 0);

            let err = file.set_len(u64::MAX).await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput);
            file.close().await.unwrap();

            let read_only = File::open(&path).await.unwrap();
            let err = read_only.set_len(1).await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "not open for writing");
        });
    });
}

#[test]
fn create_dir_all_makes_nested_paths_and_accepts_existing_ones() {
    let dir = TempDir::new("create-dir-all");
    ringloop::block_on(async {
        let nested = dir.join("a/b/c/d");
        fs::create_dir_all(&nested).await.unwrap();
        assert!(std::fs::metadata(&nested).unwrap().is_dir());

        // Existing, in full or in part.
        fs::create_dir_all(&nested).await.unwrap();
        fs::create_dir_all(dir.join("a/b")).await.unwrap();
        fs::create_dir_all(dir.join("a/b/e/f/")).await.unwrap();
        assert!(std::fs::metadata(dir.join("a/b/e/f")).unwrap().is_dir());
        fs::create_dir_all(&dir.0).await.unwrap();
        fs::create_dir_all("").await.unwrap();

        // A file in the way.
        std::fs::write(dir.join("file"), b"").unwrap();
        let err = fs::create_dir_all(dir.join("file")).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::AlreadyExists);
        let err = fs::create_dir_all(dir.join("file/sub")).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotADirectory);
    });
}

#[test]
fn copy_keeps_contents_and_mode_and_replaces_the_destination() {
    let dir = TempDir::new("copy");
    let from = dir.join("from");
    let data = pattern(3 * 1024 * 1024 + 1);
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o640)
        .open(&from)
        .unwrap()
        .write_all(&data)
        .unwrap();
    std::fs::set_permissions(&from, std::fs::Permissions::from_mode(0o750)).unwrap();
    let to = dir.join("to");
    std::fs::write(&to, pattern(5 * 1024 * 1024)).unwrap(); // longer, mode 0o644-ish

    ringloop::block_on(async {
        let copied = fs::copy(&from, &to).await.unwrap();
        assert_eq!(copied, data.len() as u64);
        assert!(fs::read(&to).await.unwrap() == data);
        assert_eq!(fs::metadata(&to).await.unwrap().mode(), 0o750);

        let err = fs::copy(&dir.0, dir.join("dir-copy")).await.unwrap_err();
        assert_eq!(
            err.kind(),
            ErrorKind::InvalidInput,
            "a directory is not copied"
        );
    });
}

#[test]
fn read_dir_lists_exactly_the_created_entries_with_their_types() {
    let dir = TempDir::new("read-dir");
    let listed = dir.join("listed");
    std::fs::create_dir(&listed).unwrap();
    std::fs::create_dir(dir.join("empty")).unwrap();
    ringloop::block_on(async {
        fs::write(listed.join("file"), "x").await.unwrap();
        fs::create_dir(listed.join("dir")).await.unwrap();
        fs::symlink("file", listed.join("link")).await.unwrap();
        // More than one batch of 32.
        for i in 0..100 {
            fs::write(listed.join(format!("n{i:03}")), "")
                .await
                .unwrap();
        }

        let mut seen = Vec::new();
        let mut entries = fs::read_dir(&listed).await.unwrap();
        while let Some(entry) = entries.next_entry().await.unwrap() {
            let name = entry.file_name().into_string().unwrap();
            assert_eq!(entry.path(), listed.join(&name));
            assert_eq!(
                entry.ino(),
                std::fs::symlink_metadata(entry.path()).unwrap().ino()
            );
            let file_type = entry.file_type().await.unwrap();
            let kind = if file_type.is_symlink() {
                "symlink"
            } else if file_type.is_dir() {
                "dir"
            } else if file_type.is_file() {
                "file"
            } else {
                "other"
            };
            let meta = entry.metadata().await.unwrap();
            assert_eq!(meta.is_symlink(), file_type.is_symlink(), "{name}");
            assert_eq!(meta.is_dir(), file_type.is_dir(), "{name}");
            seen.push((name, kind));
        }
        assert!(entries.next_entry().await.unwrap().is_none(), "stays ended");
        seen.sort();

        let mut expected = vec![
            ("dir".to_string(), "dir"),
            ("file".to_string(), "file"),
            ("link".to_string(), "symlink"),
        ];
        expected.extend((0..100).map(|i| (format!("n{i:03}"), "file")));
        expected.sort();
        assert_eq!(seen, expected);

        let mut empty = fs::read_dir(dir.join("empty")).await.unwrap();
        assert!(empty.next_entry().await.unwrap().is_none());
    });
}

#[test]
fn read_dir_loses_no_entry_when_a_next_entry_future_is_dropped() {
    let dir = TempDir::new("read-dir-cancel");
    for i in 0..100 {
        std::fs::write(dir.join(format!("{i}")), b"").unwrap();
    }
    watchdog("read_dir cancel", LIMIT, || {
        ringloop::block_on(async {
            let mut entries = fs::read_dir(&dir.0).await.unwrap();
            let mut names = Vec::new();
            let mut dropped_at = None;
            for _ in 0..200 {
                // At each batch boundary (every 32 entries) the next call must go to the
                // blocking pool: start it, walk away from it, twice, then carry on.
                if names.len() % 32 == 0 && dropped_at != Some(names.len()) {
                    dropped_at = Some(names.len());
                    for _ in 0..2 {
                        let mut next = Box::pin(entries.next_entry());
                        if let Poll::Ready(entry) = support::poll_once(&mut next).await {
                            if let Some(entry) = entry.unwrap() {
                                names.push(entry.file_name());
                            }
                        }
                    }
                    continue;
                }
                match entries.next_entry().await.unwrap() {
                    Some(entry) => names.push(entry.file_name()),
                    None => break,
                }
            }
            names.sort();
            let mut expected: Vec<std::ffi::OsString> =
                (0..100).map(|i| format!("{i}").into()).collect();
            expected.sort();
            assert_eq!(names, expected);
        });
    });
}

#[test]
fn remove_dir_all_removes_a_nested_tree_but_not_what_its_symlinks_point_to() {
    let dir = TempDir::new("remove-dir-all");
    let outside = dir.join("outside");
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(outside.join("keep"), b"keep me").unwrap();
    let tree = dir.join("tree");
    ringloop::block_on(async {
        fs::create_dir_all(tree.join("a/b/c")).await.unwrap();
        fs::create_dir_all(tree.join("x/y")).await.unwrap();
        for (i, sub) in ["", "a", "a/b", "a/b/c", "x", "x/y"].iter().enumerate() {
            fs::write(tree.join(sub).join(format!("f{i}")), pattern(i * 1000))
                .await
                .unwrap();
        }
        fs::symlink(&outside, tree.join("a/to-outside"))
            .await
            .unwrap();
        fs::symlink(outside.join("keep"), tree.join("x/to-keep"))
            .await
            .unwrap();

        fs::remove_dir_all(&tree).await.unwrap();
        let err = fs::symlink_metadata(&tree).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound);
        assert_eq!(fs::read(outside.join("keep")).await.unwrap(), b"keep me");

        // A file is not a directory.
        let err = fs::remove_dir_all(outside.join("keep")).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotADirectory);
    });
}

#[test]
fn links_metadata_and_canonicalize_agree_with_std() {
    let dir = TempDir::new("links");
    watchdog("links", LIMIT, || {
        ringloop::block_on(async {
            let original = dir.join("original");
            fs::write(&original, "linked").await.unwrap();

            let expect_pool = fallback_forced() || !kernel_at_least(5, 15);
            let hard = dir.join("hard");
            let (res, pooled) = used_blocking_pool(fs::hard_link(&original, &hard)).await;
            res.unwrap();
            assert_eq!(
                pooled, expect_pool,
                "IORING_OP_LINKAT when the kernel has it"
            );
            assert_eq!(
                fs::metadata(&hard).await.unwrap().ino(),
                fs::metadata(&original).await.unwrap().ino()
            );
            assert_eq!(std::fs::metadata(&original).unwrap().nlink(), 2);
            let err = fs::hard_link(&original, &hard).await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::AlreadyExists);

            // Relative target, resolved from the link's directory.
            let soft = dir.join("soft");
            let (res, pooled) = used_blocking_pool(fs::symlink("original", &soft)).await;
            res.unwrap();
            assert_eq!(
                pooled, expect_pool,
                "IORING_OP_SYMLINKAT when the kernel has it"
            );
            assert_eq!(std::fs::read_link(&soft).unwrap(), Path::new("original"));
            assert_eq!(fs::read_to_string(&soft).await.unwrap(), "linked");
            let link_meta = fs::symlink_metadata(&soft).await.unwrap();
            assert!(link_meta.is_symlink() && !link_meta.is_file());
            assert_eq!(link_meta.len(), "original".len() as u64);
            let target_meta = fs::metadata(&soft).await.unwrap();
            assert!(target_meta.is_file() && !target_meta.is_symlink());
            assert!(fs::symlink_metadata(&original).await.unwrap().is_file());
            let err = fs::symlink("elsewhere", &soft).await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::AlreadyExists);

            // A hard link to a symlink links the symlink itself.
            let hard_to_soft = dir.join("hard-to-soft");
            fs::hard_link(&soft, &hard_to_soft).await.unwrap();
            assert!(fs::symlink_metadata(&hard_to_soft)
                .await
                .unwrap()
                .is_symlink());

            // Dangling symlinks are allowed; following one is NotFound.
            let dangling = dir.join("dangling");
            fs::symlink(dir.join("nowhere"), &dangling).await.unwrap();
            assert!(fs::symlink_metadata(&dangling).await.unwrap().is_symlink());
            let err = fs::metadata(&dangling).await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::NotFound);

            fs::create_dir(dir.join("sub")).await.unwrap();
            let winding = dir.join("sub/../sub/./../soft");
            let canonical = fs::canonicalize(&winding).await.unwrap();
            assert_eq!(canonical, std::fs::canonicalize(&original).unwrap());
            assert!(canonical.is_absolute());
        });
    });
}

#[test]
fn missing_paths_are_not_found() {
    let dir = TempDir::new("missing");
    let missing = dir.join("missing");
    let in_missing = dir.join("missing/inner");
    let existing = dir.join("existing");
    std::fs::write(&existing, b"x").unwrap();
    ringloop::block_on(async {
        let not_found = |e: std::io::Error, what: &str| {
            assert_eq!(e.kind(), ErrorKind::NotFound, "{what}: {e}");
        };
        not_found(fs::read(&missing).await.unwrap_err(), "read");
        not_found(
            fs::read_to_string(&missing).await.unwrap_err(),
            "read_to_string",
        );
        not_found(fs::write(&in_missing, "x").await.unwrap_err(), "write");
        not_found(
            fs::write_owned(&in_missing, vec![1]).await.0.unwrap_err(),
            "write_owned",
        );
        not_found(
            fs::copy(&missing, dir.join("to")).await.unwrap_err(),
            "copy from",
        );
        not_found(
            fs::copy(&existing, &in_missing).await.unwrap_err(),
            "copy to",
        );
        not_found(fs::read_dir(&missing).await.unwrap_err(), "read_dir");
        not_found(
            fs::remove_dir_all(&missing).await.unwrap_err(),
            "remove_dir_all",
        );
        not_found(
            fs::canonicalize(&missing).await.unwrap_err(),
            "canonicalize",
        );
        not_found(
            fs::symlink_metadata(&missing).await.unwrap_err(),
            "symlink_metadata",
        );
        not_found(
            fs::hard_link(&missing, dir.join("l")).await.unwrap_err(),
            "hard_link from",
        );
        not_found(
            fs::hard_link(&existing, &in_missing).await.unwrap_err(),
            "hard_link to",
        );
        not_found(
            fs::symlink(&existing, &in_missing).await.unwrap_err(),
            "symlink",
        );
        let opened = OpenOptions::new().write(true).open(&missing).await;
        not_found(opened.unwrap_err(), "open for set_len");
        assert_eq!(
            std::fs::read_dir(&dir.0).unwrap().count(),
            1,
            "nothing was created"
        );
    });
}

/// The blocking-pool fallbacks (taken on kernels without the opcodes) behave as the ring ops:
/// the set_len and link tests again, in child processes with `RINGLOOP_FALLBACK=ops`, where
/// they also check that the pool was used.
#[test]
fn blocking_pool_fallbacks_pass_the_same_tests() {
    if support::is_child() || fallback_forced() {
        return; // already the fallback run
    }
    for test in [
        "set_len_grows_with_zeros_and_shrinks",
        "links_metadata_and_canonicalize_agree_with_std",
    ] {
        let (status, output) = support::run_child(test, &[("RINGLOOP_FALLBACK", "ops")]);
        assert!(
            status.success(),
            "`{test}` with RINGLOOP_FALLBACK=ops:\n{output}"
        );
        assert!(
            output.contains("1 passed"),
            "child ran no `{test}`:\n{output}"
        );
    }
}
