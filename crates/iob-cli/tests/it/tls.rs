//! HTTPS: `iob serve --tls-cert --tls-key` (or `[server] tls_cert`/`tls_key`) with a
//! self-signed certificate made in the test; a rustls client that trusts it gets answers, one
//! that does not fails the handshake, and plain HTTP to the TLS port gets no HTTP answer.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::{CertificateDer, ServerName};

use crate::common::*;

fn client(roots: rustls::RootCertStore) -> Arc<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

/// One HTTP/1.1 request over TLS; the raw answer, or the TLS/IO error.
fn https(
    config: Arc<rustls::ClientConfig>,
    addr: &str,
    method: &str,
    path: &str,
    auth: Option<&str>,
    body: &[u8],
) -> std::io::Result<String> {
    let tcp = TcpStream::connect(addr)?;
    tcp.set_read_timeout(Some(Duration::from_secs(30)))?;
    let name = ServerName::try_from("localhost").unwrap();
    let conn = rustls::ClientConnection::new(config, name).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(a) = auth {
        head.push_str(&format!("Authorization: {a}\r\n"));
    }
    head.push_str("\r\n");
    tls.write_all(head.as_bytes())?;
    tls.write_all(body)?;
    let mut out = Vec::new();
    match tls.read_to_end(&mut out) {
        Ok(_) => {}
        // Servers may close without close_notify after `Connection: close`.
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !out.is_empty() => {}
        Err(e) => return Err(e),
    }
    Ok(String::from_utf8_lossy(&out).to_string())
}

#[test]
fn https_with_rustls() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), "");
    let made =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    std::fs::write(&cert, made.cert.pem()).unwrap();
    std::fs::write(&key, made.signing_key.serialize_pem()).unwrap();
    let s = Server::start_with(
        &cfg,
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );

    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from(made.cert.der().to_vec()))
        .unwrap();
    let trusting = client(roots);
    let r = https(trusting.clone(), &s.addr, "GET", "/health", None, b"").unwrap();
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    let body = track("tls-1", "u1").to_string();
    let r = https(
        trusting.clone(),
        &s.addr,
        "POST",
        "/v1/track",
        Some(&basic(WRITE_KEY)),
        body.as_bytes(),
    )
    .unwrap();
    assert!(
        r.starts_with("HTTP/1.1 200") && r.contains("\"accepted\":1"),
        "{r}"
    );
    // Auth works the same over TLS.
    let r = https(trusting, &s.addr, "GET", "/v1/stats", None, b"").unwrap();
    assert!(r.starts_with("HTTP/1.1 401"), "{r}");

    // A client that does not trust the certificate refuses the server.
    let e = https(
        client(rustls::RootCertStore::empty()),
        &s.addr,
        "GET",
        "/health",
        None,
        b"",
    )
    .unwrap_err();
    assert!(e.to_string().to_lowercase().contains("certificate"), "{e}");

    // Plain HTTP to the TLS port gets no HTTP answer.
    let mut plain = TcpStream::connect(&s.addr).unwrap();
    plain
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    plain
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut raw = Vec::new();
    let _ = plain.read_to_end(&mut raw);
    assert!(
        !raw.starts_with(b"HTTP/"),
        "{}",
        String::from_utf8_lossy(&raw)
    );
    s.stop();
}

#[test]
fn tls_misconfiguration_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), "");
    let missing = dir.path().join("missing.pem");
    let out = iob()
        .arg("--config")
        .arg(&cfg)
        .args(["serve", "--tls-cert"])
        .arg(&missing)
        .arg("--tls-key")
        .arg(&missing)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("TLS certificate") && err.contains("missing.pem"),
        "{err}"
    );
    // Half a TLS config is an error that names the key.
    let out = iob()
        .arg("--config")
        .arg(&cfg)
        .env("IOB_SERVER__TLS_CERT", &missing)
        .arg("serve")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("server.tls_cert"),
        "{err}"
    );
}
