//! Test harness: a real `iob serve` child process on a loopback port, and a tiny HTTP/1.1
//! client over `std::net` (so the tests exercise exactly what an SDK would).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub const WRITE_KEY: &str = "test-web-write-key-0001";
pub const POS_KEY: &str = "test-pos-write-key-0002";
pub const ADMIN_KEY: &str = "test-admin-key-000003";

pub fn iob() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_iob"));
    c.env_remove("IOB_WRITE_KEY")
        .env_remove("IOB_ADMIN_KEY")
        .env_remove("IOB_CONFIG")
        .env_remove("IOB_DATA_DIR");
    c
}

/// Writes a config with two sources, an admin key and `extra` TOML appended.
pub fn write_config(dir: &Path, extra: &str) -> PathBuf {
    let path = dir.join("iob.toml");
    std::fs::write(
        &path,
        format!(
            "data_dir = {:?}\n[server]\nlisten = \"127.0.0.1:0\"\nmax_body_bytes = 262144\n[[sources]]\nname = \"web\"\nwrite_key = \"{WRITE_KEY}\"\n[[sources]]\nname = \"pos\"\nwrite_key = \"{POS_KEY}\"\n[admin]\nkey = \"{ADMIN_KEY}\"\n{extra}\n",
            dir.join("data")
        ),
    )
    .unwrap();
    path
}

pub struct Server {
    pub child: Child,
    pub addr: String,
    pub config: PathBuf,
}

impl Server {
    pub fn start(config: &Path) -> Server {
        Server::start_with(config, &[])
    }

    /// `iob serve` with extra flags (`--mqtt URL`, ...).
    pub fn start_with(config: &Path, serve_args: &[&str]) -> Server {
        Server::start_env(config, serve_args, &[])
    }

    /// `iob serve` with extra flags and environment variables (`IOB_SERVER__...`). The address
    /// is the one announced, for http:// and https:// alike.
    pub fn start_env(config: &Path, serve_args: &[&str], env: &[(&str, &str)]) -> Server {
        let mut child = iob()
            .envs(env.iter().copied())
            .args(["--log", "warn", "--config"])
            .arg(config)
            .arg("serve")
            .args(serve_args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn iob serve");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let announced = line.trim().strip_prefix("listening on ");
        let addr = match announced.and_then(|a| {
            a.strip_prefix("http://")
                .or_else(|| a.strip_prefix("https://"))
        }) {
            Some(a) => a.to_string(),
            None => {
                let mut err = String::new();
                let _ = child.stderr.take().unwrap().read_to_string(&mut err);
                panic!("server did not start: {line:?} {err}");
            }
        };
        Server {
            child,
            addr,
            config: config.to_path_buf(),
        }
    }

    pub fn post(&self, path: &str, auth: Option<&str>, body: &[u8]) -> Resp {
        request(
            &self.addr,
            "POST",
            path,
            auth.map(basic).as_deref(),
            &[],
            body,
        )
    }

    /// `GET /v1/stats` with the admin key.
    pub fn stats(&self) -> serde_json::Value {
        let r = request(
            &self.addr,
            "GET",
            "/v1/stats",
            Some(&format!("Bearer {ADMIN_KEY}")),
            &[],
            b"",
        );
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        r.json()
    }

    pub fn kill9(&mut self) {
        let _ = self.child.kill(); // SIGKILL
        let _ = self.child.wait();
    }

    pub fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let status = self.child.wait().unwrap();
        assert!(status.success(), "server exited with {status}");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: String,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
}

pub fn basic(key: &str) -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{key}:"))
    )
}

/// One HTTP/1.1 request with `Connection: close`.
pub fn request(
    addr: &str,
    method: &str,
    path: &str,
    auth: Option<&str>,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Resp {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(a) = auth {
        head.push_str(&format!("Authorization: {a}\r\n"));
    }
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).unwrap();
    // The server may answer (413) before reading a large body; ignore a broken pipe then.
    let _ = s.write_all(body);
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("HTTP response head");
    let headers = String::from_utf8_lossy(&raw[..split]).to_string();
    let status = headers.split_whitespace().nth(1).unwrap().parse().unwrap();
    let mut body = raw[split + 4..].to_vec();
    if headers
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = dechunk(&body);
    }
    Resp {
        status,
        headers,
        body,
    }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(nl) = b.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size =
            usize::from_str_radix(std::str::from_utf8(&b[..nl]).unwrap().trim(), 16).unwrap_or(0);
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&b[nl + 2..nl + 2 + size]);
        b = &b[nl + 2 + size + 2..];
    }
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// Runs `iob` with `args` against `config`; returns (success, stdout, stderr).
pub fn run(config: &Path, args: &[&str]) -> (bool, String, String) {
    let out = iob()
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

pub fn track(msg: &str, user: &str) -> serde_json::Value {
    serde_json::json!({"type": "track", "messageId": msg, "userId": user, "event": "Product Viewed",
        "properties": {"item_id": "sku-1", "price": 10.5}})
}

/// All messageIds in the store, via `iob events export`.
pub fn exported_message_ids(config: &Path) -> Vec<String> {
    let (ok, out, err) = run(config, &["events", "export"]);
    assert!(ok, "export failed: {err}");
    out.lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["messageId"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect()
}

/// `n` track events of user `u1` as JSON Lines, messageIds `{prefix}-0`, `{prefix}-1`, ...
pub fn track_lines(prefix: &str, n: usize) -> String {
    let mut lines = String::new();
    for i in 0..n {
        lines.push_str(&track(&format!("{prefix}-{i}"), "u1").to_string());
        lines.push('\n');
    }
    lines
}

/// `(accepted, duplicates)` of a collector answer.
pub fn counts(r: &Resp) -> (Option<u64>, Option<u64>) {
    let j = r.json();
    (j["accepted"].as_u64(), j["duplicates"].as_u64())
}
