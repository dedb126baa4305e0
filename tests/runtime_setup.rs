//! Building a runtime: ring flag fallbacks and a clear error when io_uring is unavailable.
//!
//! HARDENING rows 12 (RLIMIT_MEMLOCK), 14 (built on the thread that runs it) and 15 (flags
//! forced off, io_uring denied).

mod support;

/// Installs a seccomp filter that fails `io_uring_setup` with `EPERM`, as a container's
/// default profile does.
fn deny_io_uring_setup() {
    const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;
    const SECCOMP_RET_ERRNO: u32 = 0x0005_0000;
    let filter = [
        // A = seccomp_data.nr
        libc::sock_filter {
            code: (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16,
            jt: 0,
            jf: 0,
            k: 0,
        },
        // if A == io_uring_setup: fall through to deny, else skip to allow
        libc::sock_filter {
            code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
            jt: 0,
            jf: 1,
            k: libc::SYS_io_uring_setup as u32,
        },
        libc::sock_filter {
            code: (libc::BPF_RET | libc::BPF_K) as u16,
            jt: 0,
            jf: 0,
            k: SECCOMP_RET_ERRNO | libc::EPERM as u32,
        },
        libc::sock_filter {
            code: (libc::BPF_RET | libc::BPF_K) as u16,
            jt: 0,
            jf: 0,
            k: SECCOMP_RET_ALLOW,
        },
    ];
    let prog = libc::sock_fprog {
        len: filter.len() as u16,
        filter: filter.as_ptr() as *mut _,
    };
    // SAFETY: plain prctl calls with a valid, live filter program.
    let rc = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
    assert_eq!(rc, 0, "PR_SET_NO_NEW_PRIVS");
    // SAFETY: as above; the kernel copies the program.
    let rc = unsafe {
        libc::prctl(
            libc::PR_SET_SECCOMP,
            libc::SECCOMP_MODE_FILTER,
            &prog as *const libc::sock_fprog,
        )
    };
    assert_eq!(rc, 0, "PR_SET_SECCOMP: {}", std::io::Error::last_os_error());
}

#[test]
fn io_uring_denied_by_seccomp_is_a_clear_error_not_a_panic() {
    if support::is_child() {
        deny_io_uring_setup();
        let err = ringloop::Runtime::new().unwrap_err();
        println!("error: {err}");
        assert_eq!(err.kind(), std::io::ErrorKind::PermissionDenied);
        assert!(err.to_string().contains("io_uring is disabled"), "{err}");
        assert!(err.to_string().contains("seccomp"), "{err}");
        return;
    }
    let (status, out) = support::run_child(
        "io_uring_denied_by_seccomp_is_a_clear_error_not_a_panic",
        &[],
    );
    assert!(status.success(), "child failed ({status}):\n{out}");
    assert!(
        out.contains("error: ringloop: cannot create an io_uring"),
        "{out}"
    );
}

#[test]
fn every_ring_flag_combination_runs_tasks_timers_and_files() {
    let path = std::env::temp_dir().join(format!("ringloop-flags-{}", std::process::id()));
    for (single_issuer, defer_taskrun, coop_taskrun) in [
        (true, true, true),
        (false, true, true),
        (true, false, true),
        (true, true, false),
        (false, false, false),
    ] {
        let rt = ringloop::Builder::new()
            .single_issuer(single_issuer)
            .defer_taskrun(defer_taskrun)
            .coop_taskrun(coop_taskrun)
            .build()
            .unwrap();
        let stats = rt.stats();
        assert!(single_issuer || !stats.single_issuer);
        assert!(defer_taskrun || !stats.defer_taskrun);
        assert!(coop_taskrun || !stats.coop_taskrun);
        rt.block_on(async {
            assert_eq!(ringloop::spawn(async { 1 }).await.unwrap(), 1);
            ringloop::time::sleep(std::time::Duration::from_micros(200)).await;
            let file = ringloop::fs::File::create(&path).await.unwrap();
            let (res, _) = file.write_all_at(b"flags".to_vec(), 0).await;
            res.unwrap();
            let (res, buf) = file.read_at(vec![0; 5], 0).await;
            assert_eq!(&buf[..res.unwrap()], b"flags");
        });
    }
    std::fs::remove_file(path).unwrap();
}

#[test]
fn the_newest_flags_are_used_where_the_kernel_has_them() {
    if std::env::var("RINGLOOP_RING_FLAGS").is_ok() {
        println!("skipped: RINGLOOP_RING_FLAGS forces the fallback");
        return;
    }
    let stats = ringloop::Runtime::new().unwrap().stats();
    println!(
        "ring flags: single_issuer={} defer_taskrun={} coop_taskrun={}",
        stats.single_issuer, stats.defer_taskrun, stats.coop_taskrun
    );
    assert!(stats.single_issuer || stats.coop_taskrun || !stats.defer_taskrun);
}

#[test]
fn a_tiny_memlock_limit_still_builds_a_runtime_or_says_why() {
    let name = "a_tiny_memlock_limit_still_builds_a_runtime_or_says_why";
    if support::is_child() {
        nix::sys::resource::setrlimit(
            nix::sys::resource::Resource::RLIMIT_MEMLOCK,
            64 << 10,
            64 << 10,
        )
        .expect("lower RLIMIT_MEMLOCK");
        match ringloop::Runtime::new() {
            Ok(rt) => {
                assert_eq!(
                    rt.block_on(async { ringloop::spawn(async { 3 }).await.unwrap() }),
                    3
                );
                println!("built with a 64 KiB memlock limit");
            }
            Err(e) => {
                println!("error: {e}");
                assert!(e.to_string().contains("RLIMIT_MEMLOCK"), "{e}");
            }
        }
        return;
    }
    let (status, out) = support::run_child(name, &[]);
    assert!(status.success(), "child failed ({status}):\n{out}");
}

#[test]
fn a_builder_moved_to_another_thread_builds_and_runs_there() {
    let builder = ringloop::Builder::new();
    let out = std::thread::spawn(move || {
        let rt = builder.build().unwrap();
        rt.block_on(async { ringloop::spawn(async { 5 }).await.unwrap() })
    })
    .join()
    .unwrap();
    assert_eq!(out, 5);
}

/// Drops `CAP_IPC_LOCK` from this (child) process, so `RLIMIT_MEMLOCK` binds even as root.
fn drop_ipc_lock_capability() {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const VERSION_3: u32 = 0x2008_0522;
    const CAP_IPC_LOCK: u32 = 14;
    let mut header = Header {
        version: VERSION_3,
        pid: 0,
    };
    let mut data = [Data::default(); 2];
    // SAFETY: capget writes two `Data` records for a version-3 header; both are live locals.
    let rc = unsafe { libc::syscall(libc::SYS_capget, &mut header, data.as_mut_ptr()) };
    assert_eq!(rc, 0, "capget: {}", std::io::Error::last_os_error());
    data[0].effective &= !(1 << CAP_IPC_LOCK);
    data[0].permitted &= !(1 << CAP_IPC_LOCK);
    // SAFETY: capset reads the header and two `Data` records, all live locals.
    let rc = unsafe { libc::syscall(libc::SYS_capset, &header, data.as_ptr()) };
    assert_eq!(rc, 0, "capset: {}", std::io::Error::last_os_error());
}

#[test]
fn a_registered_buffer_pool_under_a_64_kib_memlock_limit_works_or_says_why() {
    // HARDENING row 12: a 4 MiB provided-buffer pool registered under RLIMIT_MEMLOCK = 64 KiB,
    // without CAP_IPC_LOCK (which would lift the limit for root). Either the pool works, or
    // building the runtime or the pool fails with an error naming the limit: never a panic.
    let name = "a_registered_buffer_pool_under_a_64_kib_memlock_limit_works_or_says_why";
    if support::is_child() {
        drop_ipc_lock_capability();
        nix::sys::resource::setrlimit(
            nix::sys::resource::Resource::RLIMIT_MEMLOCK,
            64 << 10,
            64 << 10,
        )
        .expect("lower RLIMIT_MEMLOCK");
        // The limit binds: locking 128 KiB is refused.
        let probe = vec![1u8; 128 << 10];
        // SAFETY: mlock only reads the range, which is a live allocation.
        let rc = unsafe { libc::mlock(probe.as_ptr().cast(), probe.len()) };
        assert_eq!(
            rc, -1,
            "mlock of 128 KiB succeeded: the memlock limit does not bind"
        );
        let rt = match ringloop::Runtime::new() {
            Ok(rt) => rt,
            Err(e) => {
                println!("outcome: runtime error: {e}");
                assert!(e.to_string().contains("RLIMIT_MEMLOCK"), "{e}");
                return;
            }
        };
        rt.block_on(async {
            let pool = match ringloop::net::BufferPool::new(256, 16 << 10) {
                Ok(pool) => pool,
                Err(e) => {
                    println!("outcome: pool error: {e}");
                    assert!(e.to_string().contains("RLIMIT_MEMLOCK"), "{e}");
                    return;
                }
            };
            let (a, b) = ringloop::net::UnixStream::pair().unwrap();
            let (res, _) = a.write_all(b"through the pool".to_vec()).await;
            res.unwrap();
            let mut rx = b.recv_pooled(&pool);
            let chunk = rx.next().await.expect("a chunk").expect("pooled receive");
            assert_eq!(&chunk[..], b"through the pool");
            println!("outcome: the pool works under a 64 KiB memlock limit");
        });
        return;
    }
    let (status, out) = support::run_child(name, &[]);
    assert!(status.success(), "child failed ({status}):\n{out}");
    assert!(out.contains("outcome: "), "{out}");
    for line in out.lines().filter_map(|l| l.split_once("outcome: ")) {
        println!("{}", line.1);
    }
}
