//! Every person read through the engine leaves its audit record, with pseudonyms only; a read
//! whose record cannot be written fails; system reads leave none.

use iob_engine::{Actor, EngineError, ListFilter, audit_verify};
use iob_govern::Governor;
use iob_types::Purpose;
use serde_json::json;

use super::{engine, send};

const RAW: &str = "raw-user-id-9931";

fn records(e: &iob_engine::Engine) -> Vec<iob_engine::AuditRecord> {
    let mut all = e
        .audit_records(&ListFilter {
            limit: 100,
            ..Default::default()
        })
        .unwrap();
    all.reverse();
    all
}

#[test]
fn person_reads_are_audited_with_pseudonyms_and_fail_without_their_record() {
    let dir = tempfile::tempdir().unwrap();
    let e = engine(dir.path());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(send(
        &e,
        json!([
            {"type":"identify","userId":RAW,"anonymousId":"cookie-77","traits":{"plan":"pro"}},
            {"type":"track","userId":RAW,"event":"Viewed"},
        ]),
    ));
    let permit = e
        .permit(
            Actor::ApiKey("reader-1".into()),
            &Purpose::new("analytics").unwrap(),
        )
        .unwrap();
    assert!(e.profile(&permit, RAW, None).unwrap().is_some());
    assert_eq!(
        e.journey(&permit, RAW, None, 10)
            .unwrap()
            .unwrap()
            .events
            .len(),
        2
    );
    let who = e.explain_identity(&permit, "cookie-77").unwrap().unwrap();
    let ops = e.permit(Actor::Operator, &Purpose::operations()).unwrap();
    assert_eq!(e.tail(&ops, 5).unwrap().len(), 2);
    e.quarantine_list(&ops, true, 10).unwrap();
    // The engine's own jobs are not audited per read.
    let system = Governor::default().system("test");
    assert_eq!(e.read_log(&system, 0, 10).unwrap().len(), 2);

    let r = records(&e);
    let actions: Vec<&str> = r.iter().map(|r| r.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "profile.read",
            "timeline.read",
            "identity.read",
            "log.read",
            "quarantine.read"
        ]
    );
    let subject = who.explanation.identifiers[0].key.to_hex();
    for rec in &r[..3] {
        assert_eq!(rec.actor, "api_key");
        assert_eq!(rec.key.as_deref(), Some("reader-1"));
        assert_eq!(rec.purpose, "analytics");
        assert_eq!(rec.subject.as_deref(), Some(subject.as_str()), "{rec:?}");
    }
    assert_eq!(r[1].items, Some(2));
    assert_eq!(
        (r[3].actor.as_str(), r[3].subject.as_ref()),
        ("operator", None)
    );
    for f in std::fs::read_dir(dir.path().join("audit")).unwrap() {
        let text = std::fs::read_to_string(f.unwrap().path()).unwrap();
        assert!(!text.contains(RAW) && !text.contains("cookie-77"), "{text}");
    }

    // HEAD cannot be updated: the record is not acknowledged, so neither is the read.
    let head = dir.path().join("audit/HEAD");
    let saved = std::fs::read(&head).unwrap();
    std::fs::remove_file(&head).unwrap();
    std::fs::create_dir(&head).unwrap();
    let err = e.profile(&permit, RAW, None).unwrap_err();
    assert!(matches!(err, EngineError::Audit(_)), "{err}");
    std::fs::remove_dir(&head).unwrap();
    std::fs::write(&head, saved).unwrap();
    // This process no longer vouches for the tail; a restart re-checks it and goes on.
    assert!(matches!(
        e.profile(&permit, RAW, None),
        Err(EngineError::Audit(_))
    ));
    e.close().unwrap();
    let e = engine(dir.path());
    assert!(e.audit_log().notes()[0].contains("1 record(s) behind"));
    assert!(e.profile(&permit, RAW, None).unwrap().is_some());
    let report = audit_verify(dir.path()).unwrap();
    assert!(report.ok(), "{report:?}");
    assert_eq!(report.records, 7);
}
