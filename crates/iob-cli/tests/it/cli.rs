//! The binary's offline commands: import, events, quarantine, config errors, demo, locking.

use std::io::Write;

use serde_json::json;

use crate::common::*;

#[test]
fn import_jsonl_gzip_counts_duplicates_and_quarantines_bad_lines() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), "");
    let mut lines = String::new();
    for i in 0..500 {
        lines.push_str(&track(&format!("imp-{i}"), &format!("u{}", i % 7)).to_string());
        lines.push_str("\r\n");
    }
    lines.push_str("{\"type\":\"track\",\"userId\":\"u1\"}\n"); // no event name
    lines.push_str("not json\n");
    lines.push('\n');
    let plain = dir.path().join("events.jsonl");
    std::fs::write(&plain, &lines).unwrap();
    let gz = dir.path().join("events.jsonl.gz");
    std::fs::write(&gz, gzip(lines.as_bytes())).unwrap();

    let (ok, out, err) = run(&cfg, &["import", plain.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(
        out.contains("imported 500")
            && out.contains("quarantined 2")
            && out.contains("duplicates 0"),
        "{out}"
    );
    // The same events again, gzipped: all duplicates.
    let (ok, out, err) = run(&cfg, &["import", gz.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(
        out.contains("imported 0") && out.contains("duplicates 500"),
        "{out}"
    );

    let (ok, out, _) = run(&cfg, &["events", "count"]);
    assert!(ok && out.contains("events      500"), "{out}");
    let (ok, out, _) = run(&cfg, &["quarantine", "list", "--json"]);
    assert!(ok);
    let entries: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(entries.len(), 4, "two bad lines per import");
    assert_eq!(entries[0]["reason"]["rejection"]["code"], "missing_field");
    assert!(
        entries[0]["reason"]["rejection"]["field"]
            .as_str()
            .unwrap()
            .contains("line 501"),
        "{}",
        entries[0]
    );
    assert_eq!(entries[1]["reason"]["rejection"]["code"], "malformed_json");
}

#[test]
fn import_csv_with_mapping_keeps_rows_without_user_as_anonymous() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), "");
    let csv = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\r\n\
               536365,85123A,WHITE HANGING HEART,6,2010-12-01 08:26:00,2.55,17850,United Kingdom\r\n\
               536366,22633,HAND WARMER,6,2010-12-01 08:28:00,1.85,,United Kingdom\r\n\
               536367,84879,ASSORTED BIRDIE,32,not a date,1.69,13047,United Kingdom\r\n";
    let file = dir.path().join("retail.csv");
    std::fs::write(&file, csv).unwrap();
    let (ok, out, err) = run(
        &cfg,
        &[
            "import",
            file.to_str().unwrap(),
            "--preset",
            "uci-online-retail",
        ],
    );
    assert!(ok, "{out} {err}");
    assert!(
        out.contains("imported 2") && out.contains("quarantined 1"),
        "{out}"
    );
    let ids = {
        let (_, out, _) = run(&cfg, &["events", "export"]);
        out
    };
    assert!(ids.contains("\"userId\":\"17850\""), "{ids}");
    assert!(
        ids.contains("\"anonymousId\":\"536366\""),
        "rows without a customer become anonymous: {ids}"
    );
    assert!(ids.contains("2010-12-01T08:26:00.000Z"), "{ids}");
    // Re-import: deterministic messageIds make it idempotent.
    let (_, out, _) = run(
        &cfg,
        &[
            "import",
            file.to_str().unwrap(),
            "--preset",
            "uci-online-retail",
        ],
    );
    assert!(out.contains("duplicates 2"), "{out}");
}

#[test]
fn import_bad_input_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), "");
    let (ok, _, err) = run(&cfg, &["import", "/nonexistent/file.jsonl"]);
    assert!(!ok && err.contains("/nonexistent/file.jsonl"), "{err}");
    let (ok, _, err) = run(&cfg, &["import", "x.csv", "--preset", "no-such-preset"]);
    assert!(!ok && err.contains("no-such-preset"), "{err}");
    let mapping = dir.path().join("m.toml");
    std::fs::write(
        &mapping,
        "delimiter = \",\"\nuser_id = \"a\"\nbogus_key = 1\n",
    )
    .unwrap();
    let file = dir.path().join("f.csv");
    std::fs::write(&file, "a,b\n1,2\n").unwrap();
    let (ok, _, err) = run(
        &cfg,
        &[
            "import",
            file.to_str().unwrap(),
            "--mapping",
            mapping.to_str().unwrap(),
        ],
    );
    assert!(!ok && err.contains("bogus_key"), "{err}");
}

#[test]
fn export_tail_and_reimport_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), "");
    let s = Server::start(&cfg);
    let batch =
        json!({"batch": (0..20).map(|i| track(&format!("rt-{i}"), "u1")).collect::<Vec<_>>()});
    assert_eq!(
        s.post("/v1/batch", Some(WRITE_KEY), batch.to_string().as_bytes())
            .status,
        200
    );
    s.stop();
    let (ok, out, _) = run(&cfg, &["events", "tail", "-n", "3"]);
    assert!(ok);
    let tail: Vec<String> = out
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["messageId"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(tail, ["rt-17", "rt-18", "rt-19"]);
    let export = dir.path().join("export.jsonl");
    let (ok, _, err) = run(
        &cfg,
        &["events", "export", "--out", export.to_str().unwrap()],
    );
    assert!(ok && err.contains("exported 20"), "{err}");
    // Exported events are Segment-format: a second data dir imports them as new...
    let dir2 = tempfile::tempdir().unwrap();
    let cfg2 = write_config(dir2.path(), "");
    let (ok, out, err) = run(
        &cfg2,
        &["import", export.to_str().unwrap(), "--source", "web"],
    );
    assert!(ok && out.contains("imported 20"), "{out}{err}");
    // ...and the original dedups them.
    let (_, out, _) = run(
        &cfg,
        &["import", export.to_str().unwrap(), "--source", "web"],
    );
    assert!(out.contains("duplicates 20"), "{out}");
}

#[test]
fn offline_commands_say_when_a_server_holds_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), "");
    let s = Server::start(&cfg);
    let (ok, _, err) = run(&cfg, &["events", "count"]);
    assert!(!ok);
    assert!(
        err.contains("in use") && err.contains(&s.child.id().to_string()),
        "{err}"
    );
    s.stop();
    let (ok, _, err) = run(&cfg, &["events", "count"]);
    assert!(ok, "{err}");
}

#[test]
fn config_errors_name_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), "[store]\npartitions = \"many\"\n");
    let (ok, _, err) = run(&cfg, &["events", "count"]);
    assert!(!ok && err.contains("partitions"), "{err}");
    let cfg = write_config(dir.path(), "[colect]\nx = 1\n");
    let (ok, _, err) = run(&cfg, &["events", "count"]);
    assert!(!ok && err.contains("colect"), "{err}");
    let out = iob()
        .args(["events", "count"])
        .env("IOB_STORE__PARTITIONS", "0")
        .env("IOB_DATA_DIR", dir.path().join("d2"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("store.partitions"));
}

#[test]
fn first_start_prints_keys_once_and_env_keys_work() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = iob()
        .arg("--data-dir")
        .arg(&data)
        .args(["events", "count"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("shown ONCE") && err.contains("iobw_") && err.contains("ioba_"),
        "{err}"
    );
    let key = err
        .split_whitespace()
        .find(|w| w.starts_with("iobw_"))
        .unwrap()
        .to_string();
    let out = iob()
        .arg("--data-dir")
        .arg(&data)
        .args(["events", "count"])
        .output()
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("iobw_"),
        "printed only once"
    );
    assert!(
        !std::fs::read_to_string(data.join("keys.json"))
            .unwrap()
            .contains(&key)
    );

    // IOB_WRITE_KEY, as a container would set it.
    let dir2 = tempfile::tempdir().unwrap();
    let mut child = iob()
        .args(["--log", "warn", "--data-dir"])
        .arg(dir2.path())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("IOB_WRITE_KEY", "env-write-key-0123456789")
        .env("IOB_ADMIN_KEY", "env-admin-key-0123456789")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on http://")
        .unwrap()
        .to_string();
    let r = request(
        &addr,
        "POST",
        "/v1/track",
        Some(&basic("env-write-key-0123456789")),
        &[],
        track("e-1", "u1").to_string().as_bytes(),
    );
    assert_eq!(r.status, 200);
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn quarantine_replay_after_fixing_the_tracking_plan() {
    let dir = tempfile::tempdir().unwrap();
    let strict = "[tracking_plan.events.\"Order Completed\"]\ntype = \"object\"\nrequired = [\"revenue\"]\n[tracking_plan.events.\"Order Completed\".properties.revenue]\ntype = \"number\"\n";
    let cfg = write_config(dir.path(), strict);
    let s = Server::start(&cfg);
    let bad = json!({"userId": "u1", "event": "Order Completed", "messageId": "o-1", "properties": {"revenue": "12.50"}});
    let r = s.post("/v1/track", Some(WRITE_KEY), bad.to_string().as_bytes());
    assert_eq!(r.status, 400);
    // The same mistake inside a batch: the valid item is stored, the bad one quarantined alone.
    let batch = json!({"batch": [track("o-ok", "u2"),
        {"type": "track", "userId": "u2", "event": "Order Completed", "messageId": "o-2", "properties": {"revenue": "7.00"}}]});
    let r = s.post("/v1/batch", Some(WRITE_KEY), batch.to_string().as_bytes());
    assert_eq!((r.status, r.json()["accepted"].as_u64()), (200, Some(1)));
    s.stop();
    let (_, out, _) = run(&cfg, &["quarantine", "list"]);
    assert!(
        out.contains("schema_violation") && out.contains("properties.revenue"),
        "{out}"
    );
    // Replaying under the same plan changes nothing.
    let (ok, out, _) = run(&cfg, &["quarantine", "replay"]);
    assert!(
        ok && out.contains("replayed 0") && out.contains("still rejected 2"),
        "{out}"
    );
    // Fix the plan (revenue may be a string) and replay: the single event and the batch item.
    let relaxed = strict.replace("type = \"number\"", "type = [\"number\", \"string\"]");
    let cfg = write_config(dir.path(), &relaxed);
    let (ok, out, err) = run(&cfg, &["quarantine", "replay"]);
    assert!(ok && out.contains("replayed 2"), "{out}{err}");
    let (_, out, _) = run(&cfg, &["quarantine", "list"]);
    assert!(
        !out.contains("schema_violation"),
        "replayed entries are no longer open: {out}"
    );
    let mut ids = exported_message_ids(&cfg);
    ids.sort();
    assert_eq!(ids, ["o-1", "o-2", "o-ok"]);
    let (_, out, _) = run(&cfg, &["quarantine", "replay"]);
    assert!(out.contains("replayed 0"), "{out}");
}

#[test]
fn demo_runs_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("demo");
    let out = iob()
        .arg("--data-dir")
        .arg(&data)
        .args(["demo", "--persons", "30", "--days", "20"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for want in [
        "web",
        "ios",
        "pos",
        "wearables",
        "duplicates 100",
        "schema_violation",
        "invalid_key",
        "by type:",
        "observe",
    ] {
        assert!(stdout.contains(want), "demo output lacks {want}: {stdout}");
    }
    // Running it again starts fresh; a directory it did not make is refused.
    let again = iob()
        .arg("--data-dir")
        .arg(&data)
        .args(["demo", "--persons", "5", "--days", "5"])
        .output()
        .unwrap();
    assert!(again.status.success());
    let other = dir.path().join("other");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::File::create(other.join("precious.txt"))
        .unwrap()
        .write_all(b"x")
        .unwrap();
    let refused = iob()
        .arg("--data-dir")
        .arg(&other)
        .args(["demo", "--persons", "5"])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(other.join("precious.txt").exists());
}

#[test]
fn a_truncated_gzip_import_stops_with_an_error_and_keeps_what_it_read() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), "");
    let lines = track_lines("tr", 20_000);
    let gz = gzip(lines.as_bytes());
    let file = dir.path().join("cut.jsonl.gz");
    std::fs::write(&file, &gz[..gz.len() / 2]).unwrap();
    let (ok, out, err) = run(&cfg, &["import", file.to_str().unwrap(), "--quiet"]);
    assert!(
        !ok,
        "a truncated file must not look like a complete import: {out}"
    );
    assert!(
        err.contains("stopped after") && err.contains("those are stored"),
        "{err}"
    );
    let rows: u64 = err
        .split("stopped after ")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(rows > 0 && rows < 20_000, "{err}");
    let (_, count, _) = run(&cfg, &["events", "count"]);
    let stored: u64 = count
        .lines()
        .next()
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        stored, rows,
        "every row read before the failure is stored, no more"
    );
    // Importing the whole file afterwards completes it without duplicating what is there.
    let full = dir.path().join("cut-full.jsonl.gz");
    std::fs::write(&full, &gz).unwrap();
    let (ok, out, _) = run(
        &cfg,
        &[
            "import",
            full.to_str().unwrap(),
            "--name",
            "cut.jsonl.gz",
            "--quiet",
        ],
    );
    assert!(ok, "{out}");
    assert!(
        out.contains(&format!("imported {}", 20_000 - rows))
            && out.contains(&format!("duplicates {rows}")),
        "{out}"
    );
}

#[test]
fn piping_into_a_closed_reader_ends_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), "");
    let lines = track_lines("p", 3000);
    let file = dir.path().join("e.jsonl");
    std::fs::write(&file, lines).unwrap();
    assert!(run(&cfg, &["import", file.to_str().unwrap(), "--quiet"]).0);
    // `iob events export | head -1`: the reader goes away after one line.
    let mut child = iob()
        .arg("--config")
        .arg(&cfg)
        .args(["events", "export"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut first,
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(first.contains("p-0"), "{first}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !err.contains("panicked") && !err.contains("Broken pipe"),
        "a closed pipe ends the command quietly, like other Unix tools: {err}"
    );
    // The data directory is intact afterwards.
    let (ok, count, _) = run(&cfg, &["events", "count"]);
    assert!(ok && count.contains("events      3000"), "{count}");
}

#[test]
fn stored_events_carry_the_enrichment() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), "");
    let s = Server::start(&cfg);
    let event = json!({"type": "track", "messageId": "enr-1", "userId": "u1", "event": "Product Reviewed",
        "properties": {"review_body": "Great shoes, I love them!", "rating": 5},
        "context": {"userAgent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"},
        "iobEnrichment": {"userAgent": {"device": "bot"}}});
    assert_eq!(
        s.post("/v1/track", Some(WRITE_KEY), event.to_string().as_bytes())
            .status,
        200
    );
    s.stop();
    let (ok, out, err) = run(&cfg, &["events", "tail", "-n", "1"]);
    assert!(ok, "{err}");
    let stored: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    let en = &stored["iobEnrichment"];
    assert_eq!(en["userAgent"]["browser"], "Safari", "{stored}");
    assert_eq!(en["userAgent"]["os"], "iPhone");
    assert_eq!(
        en["userAgent"]["device"], "mobile",
        "the client's value is dropped"
    );
    assert!(en["sentiment"]["review_body"].as_f64().unwrap() > 0.5);
    assert!(en["sentiment"].get("rating").is_none());
}
