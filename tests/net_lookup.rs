//! Name resolution: `lookup_host` resolves on the blocking pool, parses IP addresses at once,
//! and refuses a name without a port. Only `localhost` (from /etc/hosts) and IP addresses: no
//! query leaves the machine.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use ringloop::net::{lookup_host, TcpListener, TcpStream};
use support::watchdog;

const LIMIT: Duration = Duration::from_secs(60);

#[test]
fn localhost_resolves_to_loopback_addresses_with_the_port() {
    watchdog("lookup localhost", LIMIT, || {
        ringloop::block_on(async {
            let addrs = lookup_host("localhost:8080").await.unwrap();
            assert!(!addrs.is_empty());
            for addr in &addrs {
                assert!(addr.ip().is_loopback(), "{addr}");
                assert_eq!(addr.port(), 8080);
            }
        })
    });
}

#[test]
fn ip_addresses_are_parsed_without_a_lookup() {
    watchdog("lookup ip", LIMIT, || {
        let rt = ringloop::Runtime::new().unwrap();
        rt.block_on(async {
            let v4 = lookup_host("127.0.0.1:9").await.unwrap();
            assert_eq!(v4, ["127.0.0.1:9".parse::<SocketAddr>().unwrap()]);
            let v6 = lookup_host(String::from("[::1]:443")).await.unwrap();
            assert_eq!(v6, ["[::1]:443".parse::<SocketAddr>().unwrap()]);
        });
        assert_eq!(
            rt.stats().tasks_spawned,
            0,
            "no trip to the blocking pool for an IP address"
        );
    });
}

#[test]
fn a_name_without_a_port_is_an_invalid_input() {
    // (An unknown name is not tried: the resolver would ask a DNS server, off loopback.)
    watchdog("lookup errors", LIMIT, || {
        ringloop::block_on(async {
            let no_port = lookup_host("localhost").await.unwrap_err();
            assert_eq!(
                no_port.kind(),
                std::io::ErrorKind::InvalidInput,
                "{no_port}"
            );
        })
    });
}

#[test]
fn a_looked_up_address_connects() {
    watchdog("lookup connect", LIMIT, || {
        ringloop::block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let port = listener.local_addr().unwrap().port();
            let addrs = lookup_host(format!("127.0.0.1:{port}")).await.unwrap();
            let (stream, accepted) =
                ringloop::join!(TcpStream::connect(&addrs[..]), listener.accept());
            stream.unwrap();
            accepted.unwrap();
        })
    });
}
