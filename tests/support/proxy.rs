//! [`CutProxy`]: a loopback TCP forwarder a test stalls or cuts at will.
//!
//! [`StallProxy`]: a TCP proxy on loopback that forwards a connection both ways until the
//! server has sent `limit` bytes through it, then stops forwarding in both
//! directions while keeping both connections open: what a stuck proxy or
//! a half-dead network path looks like to a client (no RST, no FIN, no
//! data, no answer to pings).
//!
//! Every thread polls a stop flag at least every 50 ms; dropping the
//! [`StallProxy`] stops and joins them all and closes every socket.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// How often a blocked thread looks at the stop flag.
const POLL: Duration = Duration::from_millis(50);

#[derive(Default)]
struct State {
    stop: AtomicBool,
    stalled: AtomicBool,
    /// Bytes forwarded from the server to clients (all connections).
    down: AtomicU64,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

/// A running proxy (see the module doc).
pub struct StallProxy {
    addr: SocketAddr,
    state: Arc<State>,
    acceptor: Option<JoinHandle<()>>,
}

impl StallProxy {
    /// Listens on 127.0.0.1 (a free port) and forwards to `upstream`
    /// until `limit` bytes came back from it.
    pub fn start(upstream: SocketAddr, limit: u64) -> StallProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("proxy address");
        let state = Arc::new(State::default());
        let st = Arc::clone(&state);
        let acceptor = std::thread::spawn(move || {
            while !st.stop.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((client, _)) => {
                        let _ = client.set_nonblocking(false);
                        let Ok(server) = TcpStream::connect(upstream) else {
                            continue;
                        };
                        let (c2, s2) = match (client.try_clone(), server.try_clone()) {
                            (Ok(c), Ok(s)) => (c, s),
                            _ => continue,
                        };
                        let up = {
                            let st = Arc::clone(&st);
                            std::thread::spawn(move || pump(client, server, &st, None))
                        };
                        let down = {
                            let st = Arc::clone(&st);
                            std::thread::spawn(move || pump(s2, c2, &st, Some(limit)))
                        };
                        if let Ok(mut t) = st.threads.lock() {
                            t.push(up);
                            t.push(down);
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => std::thread::sleep(POLL),
                    Err(_) => std::thread::sleep(POLL),
                }
            }
        });
        StallProxy {
            addr,
            state,
            acceptor: Some(acceptor),
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Whether the limit was reached and forwarding stopped.
    pub fn stalled(&self) -> bool {
        self.state.stalled.load(Ordering::SeqCst)
    }

    /// Bytes forwarded from the server so far.
    pub fn forwarded(&self) -> u64 {
        self.state.down.load(Ordering::SeqCst)
    }
}

/// What a [`Valve`] lets through now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    /// Forward what arrives.
    Pass,
    /// Forward nothing, holding both connections open.
    Hold,
    /// Stop forwarding for good.
    End,
}

/// How one direction of a proxied connection forwards: the part of the
/// loop [`relay`] that a [`StallProxy`] and a [`CutProxy`] do differently.
trait Valve {
    /// Whether to forward now.
    fn flow(&self) -> Flow;
    /// `n` bytes were read: how many of them to write.
    fn pass(&mut self, n: usize) -> usize {
        n
    }
    /// The bytes [`Valve::pass`] allowed were written to `to`.
    fn passed(&mut self, _to: &mut TcpStream) {}
}

/// Copies `from` to `to` as `valve` lets it, until `stop`, the end of the
/// stream, an error, or [`Flow::End`]; the caller decides what becomes of
/// the sockets then.
fn relay(from: &mut TcpStream, to: &mut TcpStream, stop: &AtomicBool, valve: &mut impl Valve) {
    let _ = from.set_read_timeout(Some(POLL));
    let mut buf = vec![0u8; 64 << 10];
    while !stop.load(Ordering::SeqCst) {
        match valve.flow() {
            Flow::End => break,
            Flow::Hold => {
                std::thread::sleep(POLL);
                continue;
            }
            Flow::Pass => {}
        }
        let n = match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => continue,
            Err(_) => break,
        };
        let n = valve.pass(n);
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
        valve.passed(to);
    }
}

/// A [`StallProxy`] direction: `limit` (server to client) stalls the whole
/// proxy once that many bytes went through.
struct StallValve<'a> {
    st: &'a State,
    limit: Option<u64>,
}

impl Valve for StallValve<'_> {
    fn flow(&self) -> Flow {
        if self.st.stalled.load(Ordering::SeqCst) {
            Flow::Hold
        } else {
            Flow::Pass
        }
    }

    fn pass(&mut self, n: usize) -> usize {
        let Some(limit) = self.limit else {
            return n;
        };
        let before = self.st.down.fetch_add(n as u64, Ordering::SeqCst);
        if before + n as u64 >= limit {
            self.st.stalled.store(true, Ordering::SeqCst);
            return usize::try_from(limit.saturating_sub(before))
                .unwrap_or(n)
                .min(n);
        }
        n
    }
}

/// Copies `from` to `to` until the proxy stops (see [`StallValve`]), then
/// parks until the proxy stops, so the sockets stay open.
fn pump(mut from: TcpStream, mut to: TcpStream, st: &State, limit: Option<u64>) {
    relay(&mut from, &mut to, &st.stop, &mut StallValve { st, limit });
    while !st.stop.load(Ordering::SeqCst) {
        std::thread::sleep(POLL);
    }
}

/// Sets a proxy's stop flag and joins its acceptor and forwarding threads.
fn stop_and_join(
    stop: &AtomicBool,
    acceptor: Option<JoinHandle<()>>,
    threads: &Mutex<Vec<JoinHandle<()>>>,
) {
    stop.store(true, Ordering::SeqCst);
    if let Some(a) = acceptor {
        let _ = a.join();
    }
    let threads = std::mem::take(&mut *threads.lock().unwrap_or_else(|p| p.into_inner()));
    for t in threads {
        let _ = t.join();
    }
}

impl Drop for StallProxy {
    fn drop(&mut self) {
        stop_and_join(&self.state.stop, self.acceptor.take(), &self.state.threads);
    }
}

/// A server that accepts TCP connections and never sends a byte (nor
/// closes them) until dropped.
pub struct SilentServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl SilentServer {
    /// Listens on 127.0.0.1 (a free port).
    pub fn start() -> SilentServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("address");
        let stop = Arc::new(AtomicBool::new(false));
        let s = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let mut held = Vec::new();
            while !s.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((c, _)) => held.push(c),
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        SilentServer {
            addr,
            stop,
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for SilentServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// What a [`CutProxy`] does with its connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    /// Forwards both ways.
    Up,
    /// Holds every connection open and forwards nothing (new ones are
    /// accepted and held too): a network path that went silent, with no
    /// RST and no FIN, which only the client's timeouts notice.
    Stalled,
    /// Shuts every open connection down (the client sees its peer close)
    /// and closes new ones as soon as they are accepted: a refused path.
    Cut,
}

impl Link {
    fn code(self) -> u8 {
        match self {
            Link::Up => 0,
            Link::Stalled => 1,
            Link::Cut => 2,
        }
    }
    fn of(code: u8) -> Link {
        match code {
            0 => Link::Up,
            1 => Link::Stalled,
            _ => Link::Cut,
        }
    }
}

#[derive(Default)]
struct CutState {
    stop: AtomicBool,
    link: std::sync::atomic::AtomicU8,
    /// Both ends of every connection, to shut them down on a cut.
    open: Mutex<Vec<(TcpStream, TcpStream)>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    accepted: AtomicU64,
    /// Bytes forwarded from the upstream to clients (all connections).
    down: AtomicU64,
    /// The `down` count at which `trip_link` is set (`u64::MAX`: none).
    trip_at: AtomicU64,
    trip_link: std::sync::atomic::AtomicU8,
    /// Trips taken so far.
    trips: AtomicU64,
    /// Connections accepted before this count (their serial number) were
    /// abandoned ([`CutProxy::abandon`]): held silent until the proxy drops.
    abandoned_below: AtomicU64,
}

impl CutState {
    fn set(&self, link: Link) {
        self.link.store(link.code(), Ordering::SeqCst);
        if link == Link::Cut {
            let open = std::mem::take(&mut *self.open.lock().unwrap_or_else(|p| p.into_inner()));
            for (c, s) in open {
                let _ = c.shutdown(std::net::Shutdown::Both);
                let _ = s.shutdown(std::net::Shutdown::Both);
            }
        }
    }
}

/// A loopback TCP forwarder to one upstream address that a test switches
/// between [`Link::Up`], [`Link::Stalled`] and [`Link::Cut`] at any time.
/// A connection whose upstream closes (a killed member) is closed on the
/// client's side too. Every thread polls a stop flag at least every 50 ms;
/// dropping the proxy stops and joins them and closes every socket.
pub struct CutProxy {
    addr: SocketAddr,
    state: Arc<CutState>,
    acceptor: Option<JoinHandle<()>>,
}

impl CutProxy {
    /// Listens on 127.0.0.1 (a free port) and forwards to `upstream`.
    pub fn start(upstream: SocketAddr) -> CutProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("proxy address");
        let state = Arc::new(CutState {
            trip_at: AtomicU64::new(u64::MAX),
            ..CutState::default()
        });
        let st = Arc::clone(&state);
        let acceptor = std::thread::spawn(move || {
            while !st.stop.load(Ordering::SeqCst) {
                let client = match listener.accept() {
                    Ok((c, _)) => c,
                    Err(_) => {
                        std::thread::sleep(POLL);
                        continue;
                    }
                };
                let serial = st.accepted.fetch_add(1, Ordering::SeqCst);
                if Link::of(st.link.load(Ordering::SeqCst)) == Link::Cut {
                    let _ = client.shutdown(std::net::Shutdown::Both);
                    continue;
                }
                let _ = client.set_nonblocking(false);
                let Ok(server) = TcpStream::connect_timeout(&upstream, Duration::from_secs(1))
                else {
                    // Upstream down: the client sees the connection close.
                    let _ = client.shutdown(std::net::Shutdown::Both);
                    continue;
                };
                let clones = (
                    client.try_clone(),
                    server.try_clone(),
                    client.try_clone(),
                    server.try_clone(),
                );
                let (Ok(c2), Ok(s2), Ok(c3), Ok(s3)) = clones else {
                    continue;
                };
                if let Ok(mut o) = st.open.lock() {
                    o.push((c3, s3));
                }
                let up = {
                    let st = Arc::clone(&st);
                    std::thread::spawn(move || forward(client, server, &st, false, serial))
                };
                let down = {
                    let st = Arc::clone(&st);
                    std::thread::spawn(move || forward(s2, c2, &st, true, serial))
                };
                if let Ok(mut t) = st.threads.lock() {
                    t.push(up);
                    t.push(down);
                }
            }
        });
        CutProxy {
            addr,
            state,
            acceptor: Some(acceptor),
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Switches the link; [`Link::Cut`] shuts every open connection down.
    pub fn set(&self, link: Link) {
        self.state.set(link);
    }

    /// Switches the link to `link` (as [`CutProxy::set`]) once `bytes` more
    /// bytes came back from the upstream, forwarding exactly that many:
    /// a connection that breaks (or goes silent) mid-response, at a byte a
    /// test chooses. Replaces a trip not taken yet.
    pub fn set_after(&self, bytes: u64, link: Link) {
        self.state.trip_link.store(link.code(), Ordering::SeqCst);
        let at = self.state.down.load(Ordering::SeqCst).saturating_add(bytes);
        self.state.trip_at.store(at, Ordering::SeqCst);
    }

    /// Leaves every connection open now silent for good (no byte, no FIN,
    /// no RST until the proxy drops) and lets new ones through: a response
    /// that stalled and never recovers, which only a client that gives up
    /// on it and asks again gets past.
    pub fn abandon(&self) {
        let now = self.state.accepted.load(Ordering::SeqCst);
        self.state.abandoned_below.store(now, Ordering::SeqCst);
        self.state.set(Link::Up);
    }

    /// Trips ([`CutProxy::set_after`]) taken so far.
    pub fn trips(&self) -> u64 {
        self.state.trips.load(Ordering::SeqCst)
    }

    /// Bytes forwarded from the upstream so far.
    pub fn forwarded(&self) -> u64 {
        self.state.down.load(Ordering::SeqCst)
    }

    /// The current link.
    pub fn link(&self) -> Link {
        Link::of(self.state.link.load(Ordering::SeqCst))
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> u64 {
        self.state.accepted.load(Ordering::SeqCst)
    }
}

/// A [`CutProxy`] direction: forwards while the link is up, waits while it
/// is stalled, ends on a cut. `down` (upstream to client) counts the bytes
/// and takes a trip armed by [`CutProxy::set_after`] once the bytes before
/// it are written.
struct CutValve<'a> {
    st: &'a CutState,
    down: bool,
    trip: Option<Link>,
    /// The connection's serial number (see [`CutState::abandoned_below`]).
    serial: u64,
}

impl Valve for CutValve<'_> {
    fn flow(&self) -> Flow {
        if self.serial < self.st.abandoned_below.load(Ordering::SeqCst) {
            return Flow::Hold;
        }
        match Link::of(self.st.link.load(Ordering::SeqCst)) {
            Link::Cut => Flow::End,
            Link::Stalled => Flow::Hold,
            Link::Up => Flow::Pass,
        }
    }

    fn pass(&mut self, n: usize) -> usize {
        if !self.down {
            return n;
        }
        let st = self.st;
        let before = st.down.fetch_add(n as u64, Ordering::SeqCst);
        let at = st.trip_at.load(Ordering::SeqCst);
        if before < at
            && before + n as u64 >= at
            && st
                .trip_at
                .compare_exchange(at, u64::MAX, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
        {
            self.trip = Some(Link::of(st.trip_link.load(Ordering::SeqCst)));
            return usize::try_from(at - before).unwrap_or(n).min(n);
        }
        n
    }

    fn passed(&mut self, to: &mut TcpStream) {
        if let Some(link) = self.trip.take() {
            let _ = to.flush();
            self.st.set(link);
            self.st.trips.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// Copies `from` to `to` (see [`CutValve`]); on a cut, an end of stream or
/// an error shuts both sockets down (so the other direction ends too).
fn forward(mut from: TcpStream, mut to: TcpStream, st: &CutState, down: bool, serial: u64) {
    let mut valve = CutValve {
        st,
        down,
        trip: None,
        serial,
    };
    relay(&mut from, &mut to, &st.stop, &mut valve);
    let _ = from.shutdown(std::net::Shutdown::Both);
    let _ = to.shutdown(std::net::Shutdown::Both);
}

impl Drop for CutProxy {
    fn drop(&mut self) {
        stop_and_join(&self.state.stop, self.acceptor.take(), &self.state.threads);
        self.state.set(Link::Cut);
    }
}
