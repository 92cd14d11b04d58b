//! Free TCP ports on 127.0.0.1, found by binding port 0.
//!
//! A port handed out once is never handed out again by this test binary, so tests running in
//! parallel threads do not collide with each other. (Another process can still grab a port
//! between our probe and etcd's bind; `etcd::ClusterSpec::start` retries once on that.)

use std::collections::HashSet;
use std::net::{Ipv4Addr, TcpListener};
use std::sync::Mutex;

static GIVEN: Mutex<Option<HashSet<u16>>> = Mutex::new(None);

/// `n` distinct free ports on 127.0.0.1.
pub fn free_ports(n: usize) -> Vec<u16> {
    let mut held = Vec::new();
    let mut ports = Vec::new();
    let mut given = GIVEN.lock().unwrap_or_else(|p| p.into_inner());
    let given = given.get_or_insert_with(HashSet::new);
    let mut tries = 0;
    while ports.len() < n {
        tries += 1;
        assert!(tries < 10_000, "cannot find {n} free loopback ports");
        let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
        let port = l
            .local_addr()
            .expect("local_addr of a bound listener")
            .port();
        if given.insert(port) {
            ports.push(port);
        }
        held.push(l); // keep bound until all are chosen, so they are distinct
    }
    ports
}

/// One free port on 127.0.0.1.
pub fn free_port() -> u16 {
    free_ports(1)[0]
}
