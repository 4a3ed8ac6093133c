//! A minimal HTTP/1.1 client for the demo and the HTTP benchmark (loopback only).

use std::time::Duration;

use anyhow::Context;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

#[derive(Clone)]
pub struct Client {
    inner: HyperClient<HttpConnector, Full<Bytes>>,
    base: String,
}

pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Client {
    pub fn new(base: &str) -> Self {
        let mut conn = HttpConnector::new();
        conn.set_nodelay(true);
        let inner = HyperClient::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(conn);
        Client {
            inner,
            base: base.trim_end_matches('/').to_string(),
        }
    }

    pub async fn get(&self, path: &str) -> anyhow::Result<Response> {
        self.get_with(path, None).await
    }

    /// GET with an `Authorization` header.
    pub async fn get_with(&self, path: &str, auth: Option<&str>) -> anyhow::Result<Response> {
        let mut req = hyper::Request::get(format!("{}{path}", self.base));
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        let req = req.body(Full::default())?;
        let resp = self
            .inner
            .request(req)
            .await
            .with_context(|| format!("GET {path}"))?;
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await?.to_bytes().to_vec();
        Ok(Response { status, body })
    }

    pub async fn post(
        &self,
        path: &str,
        auth: Option<&str>,
        gzip: bool,
        body: Vec<u8>,
    ) -> anyhow::Result<Response> {
        let mut req = hyper::Request::post(format!("{}{path}", self.base))
            .header("content-type", "application/json");
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        if gzip {
            req = req.header("content-encoding", "gzip");
        }
        let resp = self
            .inner
            .request(req.body(Full::new(Bytes::from(body)))?)
            .await
            .with_context(|| format!("POST {path}"))?;
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await?.to_bytes().to_vec();
        Ok(Response { status, body })
    }
}

/// `Basic base64(key:)`, Segment's write-key auth.
pub fn basic(key: &str) -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{key}:"))
    )
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).expect("in-memory write");
    e.finish().expect("in-memory gzip")
}
