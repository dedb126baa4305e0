//! The delivery load client against the demo (both as child processes): it places orders,
//! follows every one to `delivered` on `/events`, and prints its figures.

mod delivery_support;
mod support;

use std::process::Command;
use std::time::Duration;

use delivery_support::{binary, Server, TempDir};

#[test]
fn the_load_client_follows_every_accepted_order_to_delivered_and_prints_percentiles() {
    let (Some(server_bin), Some(load_bin)) = (binary(), load_binary()) else {
        println!("skipped: the delivery examples are not built (run `cargo test`)");
        return;
    };
    support::watchdog("load client", Duration::from_secs(90), || {
        let dir = TempDir::new("load");
        let server = Server::start(&server_bin, &dir.db(), &["--shards", "2", "--instant"]);
        let out = Command::new(&load_bin)
            .args([
                "--addr",
                &server.addr,
                "--conns",
                "8",
                "--seconds",
                "1",
                "--rate",
                "500",
            ])
            .output()
            .expect("run delivery_load");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "exit {}: {text}", out.status);
        let accepted: u64 = text
            .split(" accepted (")
            .next()
            .and_then(|s| s.rsplit(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no accepted count: {text}"));
        assert!(accepted >= 400, "{text}");
        assert!(
            text.contains(&format!(
                "followed on /events: {accepted} delivered, 0 failed, 0 unfinished"
            )),
            "{text}"
        );
        assert!(text.contains("placed→delivered latency: p50 "), "{text}");

        // The server agrees: it delivered exactly what the client counted.
        let metrics = server.client().get("/metrics").body;
        assert!(
            metrics.contains(&format!(
                "delivery_orders{{status=\"delivered\"}} {accepted}"
            )),
            "{metrics}"
        );
    });
}

/// `target/<profile>/examples/delivery_load`.
fn load_binary() -> Option<std::path::PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let path = exe
        .parent()?
        .parent()?
        .join("examples")
        .join("delivery_load");
    path.exists().then_some(path)
}
