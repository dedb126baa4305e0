//! A short tour of ringloop: spawn, join, timers, a timeout, files and a cross-thread spawn.
//!
//! ```text
//! cargo run --release --example tour
//! ```
//!
//! Each step prints what it did and how long it took.

use std::time::{Duration, Instant};

fn main() -> std::io::Result<()> {
    let rt = ringloop::Builder::new().entries(256).build()?;
    let handle = rt.handle();
    let path = std::env::temp_dir().join(format!("ringloop-tour-{}", std::process::id()));

    rt.block_on(async {
        let t = Instant::now();
        let h = ringloop::spawn(async { 40 + 2 });
        println!(
            "spawn + join        -> {} in {:?}",
            h.await.unwrap(),
            t.elapsed()
        );

        let t = Instant::now();
        let tasks: Vec<_> = (0..10_000u64)
            .map(|i| ringloop::spawn(async move { i }))
            .collect();
        let mut sum = 0;
        for task in tasks {
            sum += task.await.unwrap();
        }
        println!("10,000 tasks        -> sum {sum} in {:?}", t.elapsed());

        let t = Instant::now();
        ringloop::time::sleep(Duration::from_micros(300)).await;
        println!("sleep(300 µs)       -> woke after {:?}", t.elapsed());

        let t = Instant::now();
        let r =
            ringloop::time::timeout(Duration::from_millis(1), std::future::pending::<()>()).await;
        println!(
            "timeout(1 ms)       -> {:?} after {:?}",
            r.map_err(|e| e.to_string()),
            t.elapsed()
        );

        let panicked = ringloop::spawn(async { panic!("a task may panic") }).await;
        println!(
            "panicking task      -> {}; the runtime goes on",
            panicked.unwrap_err()
        );

        let t = Instant::now();
        let file = ringloop::fs::File::create(&path).await?;
        let (res, _buf) = file.write_all_at(b"hello, io_uring".to_vec(), 0).await;
        res?;
        file.sync_all().await?;
        let (res, buf) = file.read_at(vec![0u8; 64], 0).await;
        let n = res?;
        file.close().await?;
        println!(
            "file write+fsync+read -> {:?} in {:?}",
            String::from_utf8_lossy(&buf[..n]),
            t.elapsed()
        );

        let t = Instant::now();
        let remote = handle.clone();
        let join = std::thread::spawn(move || {
            remote.spawn(async { std::thread::current().name().map(str::to_owned) })
        })
        .join()
        .expect("the spawning thread does not panic");
        let ran_on = join.await.unwrap();
        println!(
            "spawn from a thread -> ran on thread {:?} in {:?}",
            ran_on.as_deref().unwrap_or("?"),
            t.elapsed()
        );
        Ok::<_, std::io::Error>(())
    })?;
    std::fs::remove_file(&path)?;
    println!("stats: {:?}", rt.stats());
    Ok(())
}
