//! A minimal HTTP/1.1 client over `std::net::TcpStream`, for loopback only (etcd's `/health`
//! and the v3 JSON gRPC-gateway). Keep-alive, `Content-Length` and chunked responses.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::Duration;

/// A response.
#[derive(Debug, Clone)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Headers, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// Body (de-chunked).
    pub body: Vec<u8>,
}

impl Response {
    /// The body parsed as JSON.
    pub fn json(&self) -> io::Result<serde_json::Value> {
        serde_json::from_slice(&self.body).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("bad JSON ({e}): {}", String::from_utf8_lossy(&self.body)),
            )
        })
    }
    /// The body as lossy UTF-8.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    /// A header's value (name case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A keep-alive connection to one `http://<loopback>:<port>` base URL.
pub struct HttpClient {
    addr: SocketAddr,
    host: String,
    timeout: Duration,
    conn: Option<BufReader<TcpStream>>,
}

/// Parses `http://127.0.0.1:port` (or `[::1]`, any 127/8 address; a trailing `/` is allowed)
/// and panics on anything but a loopback IP literal.
pub fn parse_loopback_url(url: &str) -> SocketAddr {
    let rest = url
        .strip_prefix("http://")
        .unwrap_or_else(|| panic!("only http:// URLs are supported: {url}"));
    let hostport = rest.trim_end_matches('/');
    let addr: SocketAddr = hostport
        .parse()
        .unwrap_or_else(|e| panic!("URL {url}: host must be an IP literal with a port ({e})"));
    assert!(
        is_loopback(addr.ip()),
        "refusing non-loopback address in {url}"
    );
    addr
}

fn is_loopback(ip: IpAddr) -> bool {
    ip.is_loopback()
}

impl HttpClient {
    /// A client for `base_url` (`http://127.0.0.1:PORT`); nothing is connected yet.
    pub fn new(base_url: &str) -> HttpClient {
        let addr = parse_loopback_url(base_url);
        HttpClient {
            addr,
            host: addr.to_string(),
            timeout: Duration::from_secs(60),
            conn: None,
        }
    }

    /// Read/write timeout per I/O call (default 60 s).
    pub fn with_timeout(mut self, t: Duration) -> HttpClient {
        self.timeout = t;
        self
    }

    fn connect(&mut self) -> io::Result<&mut BufReader<TcpStream>> {
        if self.conn.is_none() {
            let s =
                TcpStream::connect_timeout(&self.addr, self.timeout.min(Duration::from_secs(10)))?;
            s.set_nodelay(true)?;
            s.set_read_timeout(Some(self.timeout))?;
            s.set_write_timeout(Some(self.timeout))?;
            self.conn = Some(BufReader::with_capacity(64 * 1024, s));
        }
        Ok(self.conn.as_mut().expect("just connected"))
    }

    /// Sends one request and reads the response. A request on a reused keep-alive connection
    /// that fails with an I/O error other than a timeout (typically: the server had closed the
    /// idle connection) is sent once more on a new connection; in the rare case the server did
    /// apply it, a txn of puts is then applied twice (same contents, one extra revision).
    pub fn request(
        &mut self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: &[u8],
    ) -> io::Result<Response> {
        let reused = self.conn.is_some();
        match self.try_request(method, path, content_type, body) {
            Err(e)
                if reused
                    && e.kind() != io::ErrorKind::TimedOut
                    && e.kind() != io::ErrorKind::WouldBlock =>
            {
                self.conn = None;
                self.try_request(method, path, content_type, body)
            }
            r => r,
        }
    }

    fn try_request(
        &mut self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: &[u8],
    ) -> io::Result<Response> {
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\nConnection: keep-alive\r\n",
            self.host,
            body.len()
        );
        if let Some(ct) = content_type {
            head.push_str(&format!("Content-Type: {ct}\r\n"));
        }
        head.push_str("\r\n");
        let res = (|| {
            let conn = self.connect()?;
            let s = conn.get_mut();
            s.write_all(head.as_bytes())?;
            s.write_all(body)?;
            s.flush()?;
            read_response(conn)
        })();
        match &res {
            Ok(r)
                if r.header("connection")
                    .is_some_and(|v| v.eq_ignore_ascii_case("close")) =>
            {
                self.conn = None
            }
            Ok(_) => {}
            Err(_) => self.conn = None,
        }
        res
    }

    /// `GET path`.
    pub fn get(&mut self, path: &str) -> io::Result<Response> {
        self.request("GET", path, None, b"")
    }

    /// `POST path` with a JSON body; returns the response (any status).
    pub fn post_json(&mut self, path: &str, body: &serde_json::Value) -> io::Result<Response> {
        let bytes = serde_json::to_vec(body).map_err(io::Error::other)?;
        self.request("POST", path, Some("application/json"), &bytes)
    }

    /// `POST path` with a pre-serialised JSON body.
    pub fn post_json_bytes(&mut self, path: &str, body: &[u8]) -> io::Result<Response> {
        self.request("POST", path, Some("application/json"), body)
    }
}

fn read_line(r: &mut impl BufRead) -> io::Result<String> {
    let mut line = String::new();
    let n = r.read_line(&mut line)?;
    if n == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "connection closed",
        ));
    }
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

fn bad(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

fn read_response(r: &mut BufReader<TcpStream>) -> io::Result<Response> {
    let status_line = read_line(r)?;
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad(format!("bad status line {status_line:?}")))?;
    let mut headers = Vec::new();
    loop {
        let l = read_line(r)?;
        if l.is_empty() {
            break;
        }
        let (k, v) = l
            .split_once(':')
            .ok_or_else(|| bad(format!("bad header {l:?}")))?;
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
    }
    let get = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let mut body = Vec::new();
    if get("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked")) {
        loop {
            let size_line = read_line(r)?;
            let hex = size_line.split(';').next().unwrap_or("").trim();
            let size = usize::from_str_radix(hex, 16)
                .map_err(|_| bad(format!("bad chunk size {size_line:?}")))?;
            if size == 0 {
                // trailers until an empty line
                while !read_line(r)?.is_empty() {}
                break;
            }
            let start = body.len();
            body.resize(start + size, 0);
            r.read_exact(&mut body[start..])?;
            let crlf = read_line(r)?;
            if !crlf.is_empty() {
                return Err(bad("missing CRLF after chunk".into()));
            }
        }
    } else if let Some(len) = get("content-length") {
        let len: usize = len
            .parse()
            .map_err(|_| bad(format!("bad content-length {len:?}")))?;
        body.resize(len, 0);
        r.read_exact(&mut body)?;
    } else if status != 204 && status != 304 && !(100..200).contains(&status) {
        r.read_to_end(&mut body)?;
        headers.push(("connection".into(), "close".into()));
    }
    Ok(Response {
        status,
        headers,
        body,
    })
}
