//! `iob bench ingest|http|import`: the ingestion benchmarks of BENCHMARKS.md.
//!
//! * `ingest`: in process, parse + validate + append + fsync of 1000-event `/v1/batch` bodies of
//!   ~400-byte `track` events, printed next to the disk's sequential write speed measured in the
//!   same run (the physical-limit anchor). Run under `taskset -c 0` for the one-core figure.
//! * `http`: starts `iob serve` as a child process on loopback, posts `/v1/batch` bodies of 100
//!   events from concurrent connections, then times single `/v1/track` requests (p50/p99), and
//!   reports the server's peak RSS.
//! * `import`: generates a JSON Lines file of N events and imports it (rows/s).
//! * `mqtt`: readings through a Mosquitto broker into `iob serve --mqtt` ([`super::bench_mqtt`]).
//!
//! Every bench first prints the machine it runs on ([`super::machine`]).

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::{Command as Proc, Stdio};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use iob_engine::{Config, Endpoint, Engine, SourceConfig, Submission};

use crate::http_client::{Client, basic};
use crate::settings::Global;

#[derive(clap::Subcommand)]
pub enum Command {
    /// In-process durable ingestion (parse + validate + append + fsync).
    Ingest {
        /// Number of events.
        #[arg(long, default_value_t = 2_000_000)]
        events: usize,
        /// Events per batch.
        #[arg(long, default_value_t = 1000)]
        batch: usize,
        /// Batches in flight (group commit gathers them into one fsync). With 4, one core sat
        /// idle ~5% of the time while every batch waited on the fsync; 8 keeps it busy.
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
        /// Runs, each into a fresh store; the medians are reported (the host's speed varies).
        #[arg(long, default_value_t = 1)]
        rounds: usize,
    },
    /// HTTP load against a child `iob serve` on loopback.
    Http {
        /// Total events to post via /v1/batch.
        #[arg(long, default_value_t = 1_000_000)]
        events: usize,
        /// Events per /v1/batch request.
        #[arg(long, default_value_t = 100)]
        batch: usize,
        /// Concurrent connections.
        #[arg(long, default_value_t = 32)]
        connections: usize,
        /// Single /v1/track requests for the latency figures.
        #[arg(long, default_value_t = 5000)]
        singles: usize,
    },
    /// Analytics side by side with DuckDB: compaction, freshness, funnel/retention/trends.
    Analytics(super::bench_analytics::Args),
    /// Generate N Segment events as JSON Lines and import them.
    Import {
        #[arg(long, default_value_t = 10_000_000)]
        events: usize,
        /// Keep the generated file here (default: a temp file, deleted).
        #[arg(long)]
        file: Option<PathBuf>,
    },
    /// MQTT readings through a local Mosquitto into a child `iob serve --mqtt`.
    Mqtt(super::bench_mqtt::Args),
    /// Recommendations: training time (EASE, ALS vs implicit), decide latency, model memory.
    Recommend(super::bench_recommend::Args),
    /// In-process ingestion with encryption at rest on and off, interleaved in one run:
    /// the cost of sealing every payload under per-person data keys, as a ratio.
    Privacy {
        #[arg(long, default_value_t = 1_000_000)]
        events: usize,
        /// Runs of each setting (interleaved: off, on, on, off, ...); medians are compared.
        #[arg(long, default_value_t = 3)]
        rounds: usize,
    },
}

/// One `/v1/batch` body of the benchmarked events (the ones the collector tests byte for byte).
fn batch_body(from: usize, n: usize) -> Vec<u8> {
    let mut body = String::with_capacity(n * 500 + 64);
    body.push_str(r#"{"batch":["#);
    for i in from..from + n {
        if i > from {
            body.push(',');
        }
        body.push_str(&iob_collect::sample::analytics_js_track_json(i));
    }
    body.push_str(r#"],"sentAt":"2026-11-20T10:00:01.000Z"}"#);
    body.into_bytes()
}

/// A scratch config; store settings come from `IOB_STORE__*` (e.g. `IOB_STORE__DIRECT_IO=false`
/// to measure buffered writes).
/// Profiles are not kept live here unless `IOB_PROFILES__LIVE=true`: these benchmarks measure
/// durable ingestion; `cargo bench -p iob-unify` measures profile updates.
fn bench_config(dir: &Path) -> anyhow::Result<Config> {
    let mut vars: Vec<(String, String)> = std::env::vars()
        .filter(|(k, _)| {
            ["IOB_STORE__", "IOB_PROFILES__", "IOB_PRIVACY__"]
                .iter()
                .any(|p| k.starts_with(p))
        })
        .collect();
    if !vars.iter().any(|(k, _)| k == "IOB_PROFILES__LIVE") {
        vars.push(("IOB_PROFILES__LIVE".into(), "false".into()));
    }
    let from_env = Config::load(None, vars)?;
    Ok(Config {
        store: from_env.store,
        profiles: from_env.profiles,
        privacy: from_env.privacy,
        data_dir: Some(dir.to_path_buf()),
        sources: vec![SourceConfig {
            name: "bench".into(),
            write_key: Some("bench-write-key-0123456789".into()),
        }],
        admin: iob_engine::AdminConfig {
            key: Some("bench-admin-key-0123456789".into()),
        },
        ..Config::default()
    })
}

pub(crate) fn scratch(global: &Global) -> anyhow::Result<tempfile::TempDir> {
    // Benchmark on the disk of the data directory the user would use.
    let parent = global
        .data_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from("."));
    std::fs::create_dir_all(&parent)?;
    Ok(tempfile::Builder::new()
        .prefix("iob-bench-")
        .tempdir_in(&parent)?)
}

pub fn run(global: &Global, cmd: Command) -> anyhow::Result<()> {
    println!("machine: {}", super::machine::describe());
    match cmd {
        Command::Ingest {
            events,
            batch,
            concurrency,
            rounds,
        } => ingest(global, events, batch, concurrency, rounds),
        Command::Http {
            events,
            batch,
            connections,
            singles,
        } => http(global, events, batch, connections, singles),
        Command::Import { events, file } => import(global, events, file),
        Command::Mqtt(args) => super::bench_mqtt::run(global, args),
        Command::Recommend(args) => super::bench_recommend::run(global, args),
        Command::Privacy { events, rounds } => privacy(global, events, rounds),
        Command::Analytics(args) => super::bench_analytics::run(args),
    }
}

/// Durable in-process ingestion of `bodies` into a fresh engine: (accepted, seconds, log bytes).
fn timed_ingest(
    cfg: &Config,
    bodies: Arc<Vec<Vec<u8>>>,
    concurrency: usize,
) -> anyhow::Result<(usize, f64, u64)> {
    let (engine, _) = Engine::open(cfg)?;
    let engine = Arc::new(engine);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let started = Instant::now();
    let accepted = rt.block_on(async {
        let mut tasks = Vec::new();
        for w in 0..concurrency {
            let (engine, bodies) = (engine.clone(), bodies.clone());
            tasks.push(tokio::spawn(async move {
                let mut n = 0usize;
                for body in bodies.iter().skip(w).step_by(concurrency) {
                    let r = engine
                        .submit(Submission {
                            endpoint: Endpoint::Batch,
                            body,
                            key: Some("bench-write-key-0123456789"),
                            ip: None,
                        })
                        .await?;
                    n += r.accepted;
                }
                anyhow::Ok(n)
            }));
        }
        let mut total = 0;
        for t in tasks {
            total += t.await??;
        }
        anyhow::Ok(total)
    })?;
    let secs = started.elapsed().as_secs_f64();
    let log_bytes = engine.stats().log_bytes;
    Ok((accepted, secs, log_bytes))
}

/// CPU time (user + system, all threads) this process has used so far, in seconds.
fn process_cpu_secs() -> f64 {
    let mut u = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage fills the struct it is given; RUSAGE_SELF is always valid.
    let r = unsafe { libc::getrusage(libc::RUSAGE_SELF, u.as_mut_ptr()) };
    if r != 0 {
        return 0.0;
    }
    // SAFETY: initialized by the successful call above (and zeroed before it).
    let u = unsafe { u.assume_init() };
    let t = |v: libc::timeval| v.tv_sec as f64 + v.tv_usec as f64 / 1e6;
    t(u.ru_utime) + t(u.ru_stime)
}

pub(crate) fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// `iob bench privacy`: the same events ingested with sealing off and on, alternately.
fn privacy(global: &Global, events: usize, rounds: usize) -> anyhow::Result<()> {
    const BATCH: usize = 1000;
    let bodies: Arc<Vec<Vec<u8>>> = Arc::new(
        (0..events.div_ceil(BATCH))
            .map(|b| batch_body(b * BATCH, BATCH))
            .collect(),
    );
    let (mut off, mut on) = (Vec::new(), Vec::new());
    for round in 0..rounds.max(1) {
        // Alternating order, so neither setting always runs on a warmer machine.
        let order = if round % 2 == 0 {
            [false, true]
        } else {
            [true, false]
        };
        for encrypt in order {
            let tmp = scratch(global)?;
            let mut cfg = bench_config(&tmp.path().join("data"))?;
            cfg.privacy.encrypt = encrypt;
            let (accepted, secs, _) = timed_ingest(&cfg, bodies.clone(), 4)?;
            anyhow::ensure!(accepted == bodies.len() * BATCH, "accepted {accepted}");
            let rate = accepted as f64 / secs;
            println!(
                "  round {round} encryption {:<3} {rate:>12.0} events/s",
                if encrypt { "on" } else { "off" }
            );
            if encrypt { &mut on } else { &mut off }.push(rate);
        }
    }
    let (off, on) = (median(off), median(on));
    println!(
        "bench privacy: {} events (50,000 persons: each gets a data key on first sight), sealing with AES-256-GCM under per-person keys and HMAC pseudonyms, durable",
        bodies.len() * BATCH
    );
    println!("  encryption off  {off:>12.0} events/s (median)");
    println!("  encryption on   {on:>12.0} events/s (median)");
    println!(
        "  on / off        {:>12.3} ({:.1}% slower)",
        on / off,
        (1.0 - on / off) * 100.0
    );
    Ok(())
}

fn ingest(
    global: &Global,
    events: usize,
    batch: usize,
    concurrency: usize,
    rounds: usize,
) -> anyhow::Result<()> {
    let tmp = scratch(global)?;
    let disk = iob_store::bench_support::measure_disk_seq_write(tmp.path(), 256 << 20)?;
    let bodies: Arc<Vec<Vec<u8>>> = Arc::new(
        (0..events.div_ceil(batch))
            .map(|b| batch_body(b * batch, batch))
            .collect(),
    );
    let bytes: usize = bodies.iter().map(|b| b.len()).sum();
    let (mut walls, mut cpus, mut accepted, mut log_bytes) = (Vec::new(), Vec::new(), 0, 0);
    let mut cfg = bench_config(&tmp.path().join("data"))?;
    let cfg_live = cfg.profiles.live;
    for round in 0..rounds.max(1) {
        // Each round writes a fresh store, removed after it.
        let dir = tmp.path().join(format!("data-{round}"));
        cfg.data_dir = Some(dir.clone());
        let cpu0 = process_cpu_secs();
        let (n, secs, log) = timed_ingest(&cfg, bodies.clone(), concurrency)?;
        let cpu = process_cpu_secs() - cpu0;
        anyhow::ensure!(
            n == events.div_ceil(batch) * batch,
            "accepted {n} of {events}"
        );
        if rounds > 1 {
            println!(
                "  round {round}  {:>12.0} events/s, {:>12.0} per CPU-second",
                n as f64 / secs,
                n as f64 / cpu.max(1e-9)
            );
        }
        let _ = std::fs::remove_dir_all(&dir);
        (accepted, log_bytes) = (n, log);
        walls.push(secs);
        cpus.push(cpu);
    }
    let (secs, cpu) = (median(walls), median(cpus));
    let mbs = log_bytes as f64 / secs / 1e6;
    println!(
        "bench ingest: {accepted} events in {batch}-event batches, {concurrency} in flight, durable (fsync per group commit), median of {} round(s), profiles {}",
        rounds.max(1),
        if cfg_live {
            "live"
        } else {
            "deferred to reads (IOB_PROFILES__LIVE=true to include them)"
        }
    );
    println!(
        "  throughput      {:>12.0} events/s",
        accepted as f64 / secs
    );
    // Wall time on a shared virtual machine includes time the host gave to others; the CPU
    // time this process used (user + system, every thread) does not.
    println!(
        "  per CPU-second  {:>12.0} events (CPU {cpu:.2} s over {secs:.2} s wall)",
        accepted as f64 / cpu.max(1e-9)
    );
    println!(
        "  input           {:>12.1} MB/s of JSON ({} bytes/event)",
        bytes as f64 / secs / 1e6,
        bytes / accepted.max(1)
    );
    println!("  log written     {:>12.1} MB/s", mbs);
    println!(
        "  disk seq write  {:>12.1} MB/s (256 MiB + fsync, same run)",
        disk
    );
    println!(
        "  ratio           {:>12.2} of the disk's sequential write speed",
        mbs / disk
    );
    Ok(())
}

fn http(
    global: &Global,
    events: usize,
    batch: usize,
    connections: usize,
    singles: usize,
) -> anyhow::Result<()> {
    let tmp = scratch(global)?;
    let cfg_path = tmp.path().join("iob.toml");
    std::fs::write(
        &cfg_path,
        format!(
            "data_dir = {:?}\n[server]\nlisten = \"127.0.0.1:0\"\n[[sources]]\nname = \"bench\"\nwrite_key = \"bench-write-key-0123456789\"\n[admin]\nkey = \"bench-admin-key-0123456789\"\n",
            tmp.path().join("data")
        ),
    )?;
    let server = ServeChild::start(&cfg_path, &[])?;
    http_load(
        &server.base,
        server.pid,
        events,
        batch,
        connections,
        singles,
    )
}

/// A child `iob serve` for the HTTP and MQTT benchmarks, stopped with SIGTERM when dropped.
pub(crate) struct ServeChild {
    child: std::process::Child,
    pub pid: u32,
    /// `http://ADDR`, as the server printed it.
    pub base: String,
}

impl ServeChild {
    pub(crate) fn start(config: &Path, extra_args: &[&str]) -> anyhow::Result<ServeChild> {
        let mut child = Proc::new(std::env::current_exe()?)
            .args(["--log", "warn", "--config"])
            .arg(config)
            .arg("serve")
            .args(extra_args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting iob serve")?;
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().expect("piped")).read_line(&mut line)?;
        let server = ServeChild {
            pid: child.id(),
            child,
            base: line
                .trim()
                .strip_prefix("listening on ")
                .unwrap_or("")
                .to_string(),
        };
        anyhow::ensure!(!server.base.is_empty(), "server did not print its address");
        Ok(server)
    }
}

impl Drop for ServeChild {
    fn drop(&mut self) {
        let _ = Proc::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status();
        let _ = self.child.wait();
    }
}

/// A `kB` line of `/proc/PID/status` (`VmHWM` peak, `VmRSS` current resident memory).
fn proc_status_kib(pid: u32, field: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

pub(crate) fn peak_rss_kib(pid: u32) -> Option<u64> {
    proc_status_kib(pid, "VmHWM:")
}

fn rss_kib(pid: u32) -> Option<u64> {
    proc_status_kib(pid, "VmRSS:")
}

fn http_load(
    base: &str,
    pid: u32,
    events: usize,
    batch: usize,
    connections: usize,
    singles: usize,
) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let auth = basic("bench-write-key-0123456789");
    let requests = events.div_ceil(batch);
    let bodies: Arc<Vec<Vec<u8>>> = Arc::new(
        (0..requests)
            .map(|r| batch_body(r * batch, batch))
            .collect(),
    );
    let client = Client::new(base);
    rt.block_on(async {
        // Warm up the connection pool.
        client.post("/v1/batch", Some(&auth), false, batch_body(usize::MAX / 2, 10)).await?;
        let rss_before = rss_kib(pid).unwrap_or(0);
        let started = Instant::now();
        let mut tasks = Vec::new();
        for c in 0..connections {
            let (client, auth, bodies) = (client.clone(), auth.clone(), bodies.clone());
            tasks.push(tokio::spawn(async move {
                let mut ok = 0usize;
                for body in bodies.iter().skip(c).step_by(connections) {
                    let r = client.post("/v1/batch", Some(&auth), false, body.clone()).await?;
                    anyhow::ensure!(r.status == 200, "HTTP {}: {}", r.status, String::from_utf8_lossy(&r.body));
                    ok += 1;
                }
                anyhow::Ok(ok)
            }));
        }
        let mut done = 0;
        for t in tasks {
            done += t.await??;
        }
        let secs = started.elapsed().as_secs_f64();
        println!("bench http: {} events as {} /v1/batch requests of {} over {} connections (loopback, durable)", done * batch, done, batch, connections);
        println!("  throughput   {:>10.0} events/s   ({:.0} requests/s)", (done * batch) as f64 / secs, done as f64 / secs);
        let mut lat = Vec::with_capacity(singles);
        for i in 0..singles {
            let body = iob_collect::sample::analytics_js_track_json(usize::MAX / 4 + i).into_bytes();
            let t = Instant::now();
            let r = client.post("/v1/track", Some(&auth), false, body).await?;
            lat.push(t.elapsed().as_secs_f64() * 1e3);
            anyhow::ensure!(r.status == 200, "HTTP {}", r.status);
        }
        lat.sort_by(|a, b| a.total_cmp(b));
        let q = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)];
        println!("  /v1/track    p50 {:.3} ms   p99 {:.3} ms   max {:.3} ms   ({} sequential requests, each fsynced)", q(0.5), q(0.99), lat[lat.len() - 1], singles);
        let peak = peak_rss_kib(pid).unwrap_or(0);
        println!("  server RSS   {:.1} MiB before load, {:.1} MiB now, {:.1} MiB peak", rss_before as f64 / 1024.0, rss_kib(pid).unwrap_or(0) as f64 / 1024.0, peak as f64 / 1024.0);
        anyhow::Ok(())
    })
}

fn import(global: &Global, events: usize, file: Option<PathBuf>) -> anyhow::Result<()> {
    let tmp = scratch(global)?;
    let path = file.unwrap_or_else(|| tmp.path().join("events.jsonl"));
    {
        let started = Instant::now();
        let mut w = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&path)?);
        for i in 0..events {
            w.write_all(iob_collect::sample::analytics_js_track_json(i).as_bytes())?;
            w.write_all(b"\n")?;
        }
        w.flush()?;
        eprintln!(
            "generated {events} events into {} in {:.1}s",
            path.display(),
            started.elapsed().as_secs_f64()
        );
    }
    let cfg = bench_config(&tmp.path().join("data"))?;
    let done = crate::cmd::import::import_file(
        &cfg,
        &path,
        &crate::cmd::import::Format::Jsonl,
        "bench",
        false,
    )?;
    let (summary, secs) = (&done.summary, done.secs);
    println!(
        "bench import: {} rows ({:.1} MB) in {:.2}s: {:.0} rows/s, {:.1} MB/s; imported {} duplicates {} quarantined {}",
        summary.read,
        summary.bytes as f64 / 1e6,
        secs,
        summary.read as f64 / secs,
        summary.bytes as f64 / secs / 1e6,
        summary.imported,
        summary.duplicates,
        summary.quarantined
    );
    Ok(())
}
