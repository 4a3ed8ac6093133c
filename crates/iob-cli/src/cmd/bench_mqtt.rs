//! `iob bench mqtt`: readings through a real broker into `iob serve --mqtt`.
//!
//! Starts Mosquitto on a free loopback port (or uses `--broker`), a child `iob serve --mqtt`,
//! and one rumqttc publisher connection (QoS 1). Two figures:
//!
//! * throughput: `--readings` bare-number readings published as fast as the connection
//!   takes them, from the first publish to the last one stored;
//! * latency publish → stored: for every reading of the throughput run (under load), and for
//!   `--singles` readings published one at a time (idle system).
//!
//! "Stored" is observed by polling the server's `/ready` event count over loopback HTTP (each
//! poll takes ~0.1-0.3 ms, which bounds the resolution); with concurrent processing, the i-th
//! reading counts as stored when i readings are, which is exact when they are stored in order.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command as Proc, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use rumqttc::{AsyncClient, MqttOptions, QoS};

use crate::cmd::bench::{ServeChild, peak_rss_kib, scratch};
use crate::http_client::{Client, basic};
use crate::settings::Global;

#[derive(clap::Args)]
pub struct Args {
    /// Readings published at full speed from one connection (throughput, latency under load).
    #[arg(long, default_value_t = 100_000)]
    readings: usize,
    /// Readings published one at a time, each waited for (latency of an idle system).
    #[arg(long, default_value_t = 500)]
    singles: usize,
    /// Use this broker (mqtt://host:port) instead of starting mosquitto.
    #[arg(long)]
    broker: Option<String>,
}

/// A Mosquitto child on a loopback port, killed on drop.
struct Mosquitto(Child);

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_mosquitto(dir: &Path) -> anyhow::Result<(Mosquitto, u16)> {
    let path = std::env::var("PATH").unwrap_or_default();
    let bin = std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin")])
        .map(|d| d.join("mosquitto"))
        .find(|p| p.is_file())
        .context("mosquitto is not installed (apt-get install mosquitto), or pass --broker")?;
    let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let conf = dir.join("mosquitto.conf");
    std::fs::write(
        &conf,
        // Mosquitto queues only 1000 messages per subscriber by default and drops the rest
        // (QoS 1 included) when the subscriber falls behind: lift that for a burst.
        format!(
            "listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\nmax_queued_messages 0\n"
        ),
    )?;
    let child = Proc::new(bin)
        .arg("-c")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting mosquitto")?;
    let broker = Mosquitto(child);
    let deadline = Instant::now() + Duration::from_secs(5);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        anyhow::ensure!(Instant::now() < deadline, "mosquitto did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok((broker, port))
}

pub fn run(global: &Global, args: Args) -> anyhow::Result<()> {
    let tmp = scratch(global)?;
    let (_broker, url) = match &args.broker {
        Some(url) => (None, url.clone()),
        None => {
            let (b, port) = start_mosquitto(tmp.path())?;
            (Some(b), format!("mqtt://127.0.0.1:{port}"))
        }
    };
    let cfg_path = tmp.path().join("iob.toml");
    std::fs::write(
        &cfg_path,
        format!(
            "data_dir = {:?}\n[server]\nlisten = \"127.0.0.1:0\"\n[admin]\nkey = \"bench-admin-key-0123456789\"\n[[sources]]\nname = \"app\"\nwrite_key = \"{WRITE_KEY}\"\n[mqtt]\ntopic_pattern = \"bench/{{deviceId}}/{{metric}}\"\nclient_id = \"iob-bench-{}\"\n",
            tmp.path().join("data"),
            std::process::id()
        ),
    )?;
    let server = ServeChild::start(&cfg_path, &["--mqtt", &url])?;
    load(&server.base, &url, server.pid, &args)
}

const WRITE_KEY: &str = "bench-app-write-key-0123456789";

fn quantile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

fn load(base: &str, url: &str, pid: u32, args: &Args) -> anyhow::Result<()> {
    let address = url.trim_start_matches("mqtt://").trim_end_matches('/');
    let (host, port) = address
        .rsplit_once(':')
        .context("--broker must be mqtt://host:port")?;
    let port: u16 = port.parse().context("broker port")?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    rt.block_on(async {
        let http = Client::new(base);
        let stored = || async {
            let r = http.get("/ready").await?;
            let v: serde_json::Value = serde_json::from_slice(&r.body)?;
            v["events"].as_u64().context("/ready has no event count")
        };
        let mut options = MqttOptions::new(format!("iob-bench-pub-{pid}"), host, port);
        options.set_keep_alive(Duration::from_secs(30)).set_inflight(1000);
        let (client, mut eventloop) = AsyncClient::new(options, 1000);
        tokio::spawn(async move {
            loop {
                if eventloop.poll().await.is_err() {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        });
        // Heart rate is health data: each band's wearer is registered and grants health
        // consent first, as in real use (the readings then pass the consent gate).
        let mut batch = Vec::new();
        for (prefix, n) in [("dev", 100), ("single", 10)] {
            for i in 0..n {
                let user = format!("wearer-{prefix}-{i}");
                batch.push(serde_json::json!({"type": "identify", "userId": user,
                    "context": {"device": {"id": format!("{prefix}-{i}"), "type": "wearable"}}}));
                batch.push(serde_json::json!({"type": "consent", "userId": user, "granted": ["health"]}));
            }
        }
        let body = serde_json::to_vec(&serde_json::json!({ "batch": batch }))?;
        let r = http
            .post("/v1/batch", Some(&basic(WRITE_KEY)), false, body)
            .await?;
        anyhow::ensure!(r.status == 200, "registering the wearers: HTTP {}", r.status);
        // Subscribed once a probe arrives (its messageId makes every copy one event).
        let probe = r#"{"deviceId":"probe","metric":"up","value":1,"messageId":"probe"}"#;
        let deadline = Instant::now() + Duration::from_secs(20);
        while stored().await? == 0 {
            anyhow::ensure!(Instant::now() < deadline, "iob never received the probe reading");
            client.publish("bench/probe/up", QoS::AtLeastOnce, false, probe).await?;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let base_count = stored().await?;
        let n = args.readings as u64;

        // Throughput, and latency under load.
        let poller = {
            let http = http.clone();
            tokio::spawn(async move {
                let mut samples = Vec::new();
                loop {
                    let r = http.get("/ready").await?;
                    let v: serde_json::Value = serde_json::from_slice(&r.body)?;
                    let c = v["events"].as_u64().unwrap_or(0).saturating_sub(base_count);
                    samples.push((Instant::now(), c));
                    if c >= n {
                        return anyhow::Ok(samples);
                    }
                }
            })
        };
        let started = Instant::now();
        let mut sent_at = Vec::with_capacity(args.readings);
        for i in 0..args.readings {
            sent_at.push(Instant::now());
            let topic = format!("bench/dev-{}/heart_rate", i % 100);
            client.publish(topic, QoS::AtLeastOnce, false, (60 + i % 60).to_string()).await?;
        }
        let published = started.elapsed().as_secs_f64();
        let samples = match tokio::time::timeout(Duration::from_secs(120), poller).await {
            Ok(r) => r??,
            Err(_) => anyhow::bail!("only {} of {n} readings were stored after 2 minutes", stored().await? - base_count),
        };
        let secs = samples.last().map(|(t, _)| t.duration_since(started).as_secs_f64()).unwrap_or(f64::NAN);
        let mut lat = Vec::with_capacity(sent_at.len());
        let mut s = 0;
        for (i, t) in sent_at.iter().enumerate() {
            while samples[s].1 < i as u64 + 1 {
                s += 1;
            }
            lat.push(samples[s].0.saturating_duration_since(*t).as_secs_f64() * 1e3);
        }
        lat.sort_by(f64::total_cmp);
        println!("bench mqtt: {n} bare-number readings, QoS 1, one publisher connection -> mosquitto -> iob serve --mqtt (loopback, durable, acked after fsync)");
        println!("  throughput   {:>10.0} readings/s   (publishing took {published:.2}s, all stored after {secs:.2}s)", n as f64 / secs);
        println!("  under load   p50 {:.2} ms   p99 {:.2} ms   max {:.2} ms   publish -> stored", quantile(&lat, 0.5), quantile(&lat, 0.99), lat[lat.len() - 1]);

        // Latency of single readings on an idle system.
        let mut lat = Vec::with_capacity(args.singles);
        let mut expected = base_count + n;
        for i in 0..args.singles {
            expected += 1;
            let t = Instant::now();
            client.publish(format!("bench/single-{}/heart_rate", i % 10), QoS::AtLeastOnce, false, "61").await?;
            let deadline = t + Duration::from_secs(10);
            while stored().await? < expected {
                anyhow::ensure!(Instant::now() < deadline, "a single reading was not stored within 10 s");
            }
            lat.push(t.elapsed().as_secs_f64() * 1e3);
        }
        if !lat.is_empty() {
            lat.sort_by(f64::total_cmp);
            println!("  single       p50 {:.2} ms   p99 {:.2} ms   max {:.2} ms   ({} sequential readings, each fsynced; stored seen by polling /ready)", quantile(&lat, 0.5), quantile(&lat, 0.99), lat[lat.len() - 1], args.singles);
        }
        println!("  server RSS   {:.1} MiB peak", peak_rss_kib(pid).unwrap_or(0) as f64 / 1024.0);
        anyhow::Ok(())
    })
}
