//! Retention per event type: events past their rule's window become unreadable (their day key
//! is destroyed), on demand and in the background, while other events stay.

use std::sync::Arc;
use std::time::{Duration, Instant};

use iob_engine::{Actor, Config, Engine, SourceConfig};
use iob_types::{FixedClock, Purpose, Timestamp};
use serde_json::json;

use crate::{KEY, send};

const DAY: i64 = 86_400_000;
const NOW: i64 = 1_796_000_000_000;

fn config(dir: &std::path::Path, check_secs: u64) -> Config {
    let mut cfg = Config {
        data_dir: Some(dir.to_path_buf()),
        sources: vec![SourceConfig {
            name: "web".into(),
            write_key: Some(KEY.into()),
        }],
        ..Config::default()
    };
    cfg.privacy
        .retention_days
        .insert("Location Updated".into(), 30);
    cfg.privacy.retention_days.insert("page".into(), 90);
    cfg.privacy.retention_check_secs = check_secs;
    cfg
}

fn stored(e: &Engine) -> Vec<String> {
    let permit = e.permit(Actor::Operator, &Purpose::operations()).unwrap();
    let mut names = Vec::new();
    e.for_each_event(&permit, |r| {
        names.push(format!(
            "{} {}",
            r.event.kind.as_str(),
            (NOW - r.event.timestamp.0) / DAY
        ));
        Ok(())
    })
    .unwrap();
    names.sort();
    names
}

#[test]
fn expired_events_are_shredded_on_demand_and_in_the_background() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(FixedClock::new(Timestamp(NOW)));
    let e = Engine::open_with_clock(&config(dir.path(), 3600), clock.clone())
        .unwrap()
        .0;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let at = |days: i64| Timestamp(NOW - days * DAY - 3_600_000).to_rfc3339();
    rt.block_on(send(
        &e,
        json!([
            {"type":"track","userId":"ada","event":"Location Updated","properties":{"lat":48.85,"lon":2.35},"timestamp":at(40)},
            {"type":"track","userId":"ada","event":"Location Updated","properties":{"lat":48.86,"lon":2.34},"timestamp":at(10)},
            {"type":"track","userId":"ada","event":"Product Viewed","timestamp":at(40)},
            {"type":"page","userId":"ada","name":"Home","timestamp":at(40)},
        ]),
    ));
    assert_eq!(stored(&e), ["page 40", "track 10", "track 40", "track 40"]);
    // The 40-day-old location is past its 30 days; the page is within its 90.
    assert_eq!(e.enforce_retention().unwrap(), 1);
    assert_eq!(stored(&e), ["page 40", "track 10", "track 40"]);
    let permit = e.permit(Actor::Operator, &Purpose::analytics()).unwrap();
    let page = e.journey(&permit, "ada", None, 10).unwrap().unwrap();
    assert_eq!(page.events.len(), 3, "the journey skips the shredded event");
    assert_eq!(e.enforce_retention().unwrap(), 0, "nothing more is due");
    e.close().unwrap();

    // Reopened 25 days later with the background job every second: the other location goes;
    // 30 days after that, the page (past its 90); the product view has no rule and stays.
    // (Ages below stay relative to the first day.)
    clock.advance_ms(25 * DAY);
    let e = Engine::open_with_clock(&config(dir.path(), 1), clock.clone())
        .unwrap()
        .0;
    let deadline = Instant::now() + Duration::from_secs(10);
    while stored(&e) != ["page 40", "track 40"] {
        assert!(Instant::now() < deadline, "{:?}", stored(&e));
        std::thread::sleep(Duration::from_millis(100));
    }
    clock.advance_ms(30 * DAY);
    while stored(&e) != ["track 40"] {
        assert!(Instant::now() < deadline, "{:?}", stored(&e));
        std::thread::sleep(Duration::from_millis(100));
    }
    // Profiles keep what they aggregated; a rebuild from the log no longer sees the events.
    let ops = e.permit(Actor::Operator, &Purpose::operations()).unwrap();
    let report = e.rebuild(&ops).unwrap();
    assert!(
        !report.equal_to_online,
        "the online profile still counts the expired events"
    );
    e.close().unwrap();
}
