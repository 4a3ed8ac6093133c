//! MQTT through a real Mosquitto on loopback: readings (JSON observe events and bare values)
//! are stored, readings published while `iob serve` is stopped arrive after it restarts (the
//! broker keeps our persistent session's QoS 1 messages), and bad payloads are quarantined
//! with a reason naming the field.
//!
//! Needs `mosquitto` and `mosquitto_pub` (Debian `mosquitto`, `mosquitto-clients`). Without
//! them the test says so and passes, unless `IOB_REQUIRE_SERVICES=1` (CI), where it fails.

use std::collections::BTreeSet;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::*;

fn find(name: &str) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([
            "/usr/sbin".into(),
            "/usr/bin".into(),
            "/usr/local/sbin".into(),
        ])
        .map(|d: PathBuf| d.join(name))
        .find(|p| p.is_file())
}

/// A Mosquitto broker on a free loopback port, killed on drop.
struct Mosquitto {
    child: Child,
    port: u16,
    publisher: PathBuf,
    _dir: tempfile::TempDir,
}

impl Mosquitto {
    /// The broker, or `None` (after saying why) when it is not installed and not required.
    fn start() -> Option<Mosquitto> {
        let (Some(server), Some(publisher)) = (find("mosquitto"), find("mosquitto_pub")) else {
            if std::env::var("IOB_REQUIRE_SERVICES").as_deref() == Ok("1") {
                panic!(
                    "IOB_REQUIRE_SERVICES=1 but mosquitto/mosquitto_pub are not installed: apt-get install mosquitto mosquitto-clients"
                );
            }
            eprintln!(
                "skipped: mosquitto not found; install mosquitto and mosquitto-clients (set IOB_REQUIRE_SERVICES=1 to make this a failure)"
            );
            return None;
        };
        let dir = tempfile::tempdir().unwrap();
        for _ in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let conf = dir.path().join("mosquitto.conf");
            std::fs::write(
                &conf,
                // Queue enough for a stopped subscriber (the default keeps 1000 messages).
                format!("listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\nmax_queued_messages 100000\n"),
            )
            .unwrap();
            let mut child = Command::new(&server)
                .arg("-c")
                .arg(&conf)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn mosquitto");
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Some(Mosquitto {
                        child,
                        port,
                        publisher,
                        _dir: dir,
                    });
                }
                if child.try_wait().unwrap().is_some() {
                    break; // the port was taken meanwhile: try another
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("mosquitto did not start");
    }

    fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }

    /// `mosquitto_pub` to this broker at QoS 1 on `topic`.
    fn publisher(&self, topic: &str) -> Command {
        let mut cmd = Command::new(&self.publisher);
        cmd.args([
            "-h",
            "127.0.0.1",
            "-p",
            &self.port.to_string(),
            "-q",
            "1",
            "-t",
            topic,
        ]);
        cmd
    }

    /// `mosquitto_pub -q 1 -l`: each line of `lines` is one message, from one connection.
    fn publish_lines(&self, topic: &str, lines: String) -> std::thread::JoinHandle<()> {
        let mut child = self
            .publisher(topic)
            .arg("-l")
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        std::thread::spawn(move || {
            use std::io::Write;
            stdin.write_all(lines.as_bytes()).unwrap();
            drop(stdin);
            assert!(child.wait().unwrap().success());
        })
    }

    /// `mosquitto_pub -q 1`: the payload from a file, so any bytes go through as they are.
    fn publish(&self, topic: &str, payload: &[u8]) {
        let file = self._dir.path().join("payload");
        std::fs::write(&file, payload).unwrap();
        let mut cmd = self.publisher(topic);
        if payload.is_empty() {
            cmd.arg("-n");
        } else {
            cmd.arg("-f").arg(&file);
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "mosquitto_pub: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `/v1/stats` until `events` are stored and `quarantined` open, or fails.
fn wait_for(server: &Server, events: u64, quarantined: u64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let s = server.stats();
        if s["events"] == events && s["quarantine_open"] == quarantined {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "waited for {events} events and {quarantined} quarantined, have {s}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The broker keeps our session once we subscribed: publish a probe (its messageId makes
/// every copy one event) until it is stored.
fn wait_subscribed(broker: &Mosquitto, server: &Server) {
    let probe = json!({"deviceId": "probe", "metric": "up", "value": 1, "messageId": "probe-1"});
    let deadline = Instant::now() + Duration::from_secs(20);
    while server.stats()["events"] == 0 {
        assert!(Instant::now() < deadline, "iob never received the probe");
        broker.publish("obs/probe", probe.to_string().as_bytes());
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn exported(config: &Path) -> Vec<Value> {
    let (ok, out, err) = run(config, &["events", "export"]);
    assert!(ok, "{err}");
    out.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn mqtt_readings_survive_restarts_and_bad_payloads_are_quarantined() {
    let Some(broker) = Mosquitto::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        dir.path(),
        "[mqtt]\ntopic_pattern = \"devices/{deviceId}/{metric}\"\n",
    );
    let url = broker.url();
    let args = [
        "--mqtt",
        url.as_str(),
        "--mqtt-topic",
        "devices/#",
        "--mqtt-topic",
        "obs/#",
    ];
    let server = Server::start_with(&cfg, &args);
    wait_subscribed(&broker, &server);
    // Heart rate is health data: accepted only once the band's owner has given health consent.
    for (path, body) in [
        (
            "/v1/identify",
            br#"{"userId":"ada","context":{"device":{"id":"band-1","type":"wearable"}}}"#
                .as_slice(),
        ),
        (
            "/v1/consent",
            br#"{"userId":"ada","granted":["health"],"policyVersion":"v1","source":"app"}"#,
        ),
    ] {
        let r = server.post(path, Some(WRITE_KEY), body);
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    }

    let reading = json!({"deviceId": "band-2", "metric": "steps", "value": 1200, "unit": "count",
        "timestamp": "2026-11-20T10:00:00Z", "messageId": "m-json-1", "tags": {"arm": "left"}});
    broker.publish("devices/band-1/heart_rate", b"72");
    broker.publish("obs/band-2", reading.to_string().as_bytes());
    broker.publish("devices/pillbox/medication.taken", b"true");
    // Bad payloads: each is quarantined, naming the field.
    broker.publish("devices/band-1/heart_rate", b"abc");
    broker.publish("devices/band-1/heart_rate", b"NaN");
    broker.publish("devices/band-1", b"5");
    broker.publish("obs/x", br#"{"deviceId":"#);
    broker.publish(
        "obs/x",
        br#"{"type":"track","userId":"u1","event":"Clicked"}"#,
    );
    broker.publish("devices/band-1/heart_rate", b"\xff\xfe\x00");
    broker.publish("devices/band-1/heart_rate", b"");
    wait_for(&server, 6, 7);
    server.stop();

    // Published while iob is down: the broker queues them for our persistent session.
    broker.publish("devices/band-1/heart_rate", b"75");
    broker.publish("devices/band-1/heart_rate", b"75"); // an equal reading: kept, not merged
    broker.publish("devices/band-1/heart_rate", b"76.5");
    broker.publish("devices/band-3/steps", b"40");
    broker.publish("obs/band-2", reading.to_string().as_bytes()); // a resend: deduplicated
    assert_eq!(exported(&cfg).len(), 6);

    let server = Server::start_with(&cfg, &args);
    wait_for(&server, 10, 7);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        server.stats()["events"],
        10,
        "the resent messageId was stored twice"
    );
    server.stop();

    // The two HTTP events that registered the band and granted health consent, then readings.
    let events: Vec<Value> = exported(&cfg)
        .into_iter()
        .filter(|e| e["iobSource"] != "web")
        .collect();
    assert_eq!(events.len(), 8);
    assert!(
        events
            .iter()
            .all(|e| e["type"] == "observe" && e["iobSource"] == "mqtt"),
        "{events:?}"
    );
    let heart: Vec<f64> = events
        .iter()
        .filter(|e| e["deviceId"] == "band-1" && e["metric"] == "heart_rate")
        .map(|e| e["value"].as_f64().unwrap())
        .collect();
    let mut sorted = heart.clone();
    sorted.sort_by(f64::total_cmp);
    assert_eq!(sorted, [72.0, 75.0, 75.0, 76.5]);
    let steps = events
        .iter()
        .find(|e| e["messageId"] == "m-json-1")
        .unwrap();
    assert_eq!(
        (steps["deviceId"].as_str(), steps["unit"].as_str()),
        (Some("band-2"), Some("count"))
    );
    assert_eq!(steps["tags"]["arm"], "left");
    assert!(
        events
            .iter()
            .any(|e| e["deviceId"] == "pillbox" && e["metric"] == "medication.taken")
    );
    assert!(
        events
            .iter()
            .any(|e| e["deviceId"] == "band-3" && e["value"] == 40.0)
    );

    let (ok, out, err) = run(&cfg, &["quarantine", "list", "--json"]);
    assert!(ok, "{err}");
    let entries: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(entries.len(), 7, "{out}");
    assert!(entries.iter().all(|e| e["source"] == "mqtt"), "{out}");
    let reasons: BTreeSet<(String, String)> = entries
        .iter()
        .map(|e| {
            let r = &e["reason"]["rejection"];
            (
                r["code"].as_str().unwrap().to_string(),
                r["field"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for expected in [
        ("invalid_value", "value"), // abc, NaN, invalid UTF-8
        ("invalid_value", "topic"), // devices/band-1 names no metric
        ("malformed_json", ""),     // {"deviceId":
        ("missing_field", "value"), // empty payload
    ] {
        assert!(
            reasons.contains(&(expected.0.to_string(), expected.1.to_string())),
            "{expected:?} not in {reasons:?}"
        );
    }
    // The track event sent as a reading is refused for its type.
    assert!(reasons.iter().any(|(_, f)| f == "type"), "{reasons:?}");
    assert!(
        out.contains("abc") && out.contains("is not a finite number"),
        "{out}"
    );

    // The readings feed the profile of the device's owner (registered by the identify above).
    let server = Server::start_with(&cfg, &args);
    let h = format!("Bearer {ADMIN_KEY}");
    let get = |path: &str| request(&server.addr, "GET", path, Some(&h), &[], b"").json();
    let ada = get("/v1/persons/ada?purpose=health");
    let hr = &ada["metrics"]["heart_rate"];
    assert_eq!(hr["n"], 4, "{ada}");
    assert_eq!(
        (hr["min"].as_f64(), hr["max"].as_f64()),
        (Some(72.0), Some(76.5))
    );
    assert!((hr["mean"].as_f64().unwrap() - 74.625).abs() < 1e-9, "{hr}");
    assert_eq!(ada["devices"]["wearable"], 1);
    // A device nobody registered is a person of its own.
    let band3 = get("/v1/persons/band-3?purpose=analytics");
    assert_eq!(band3["metrics"]["steps"]["last"], 40.0, "{band3}");
    server.stop();
}

#[test]
fn mqtt_kill_dash_nine_loses_no_reading() {
    let Some(broker) = Mosquitto::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), "[store]\ncheckpoint_secs = 1\n");
    let url = broker.url();
    let args = ["--mqtt", url.as_str(), "--mqtt-topic", "obs/#"];
    let mut server = Server::start_with(&cfg, &args);
    wait_subscribed(&broker, &server);
    const N: usize = 3000;
    let lines: String = (0..N)
        .map(|i| json!({"deviceId": format!("d{}", i % 7), "metric": "steps", "value": i, "messageId": format!("k-{i}")}).to_string() + "\n")
        .collect();
    let publisher = broker.publish_lines("obs/load", lines);
    // Kill iob twice while readings stream in; each restart resumes the broker session, which
    // redelivers what was not acknowledged (stored ones are deduplicated by messageId).
    for _ in 0..2 {
        std::thread::sleep(Duration::from_millis(150));
        server.kill9();
        server = Server::start_with(&cfg, &args);
    }
    publisher.join().unwrap();
    wait_for(&server, N as u64 + 1, 0);
    server.stop();
    let ids = exported_message_ids(&cfg);
    let unique: BTreeSet<&String> = ids.iter().collect();
    assert_eq!((ids.len(), unique.len()), (N + 1, N + 1));
}
