//! Hand-checked small cases through the engine: two taste groups, a person in between.

use iob_engine::{Actor, Engine, Permit};
use iob_recommend::{Fallback, Recommender, artifact};
use iob_types::Purpose;
use serde_json::{Value, json};

use super::{config, engine, send};

const GROUP_A: [&str; 3] = ["a1", "a2", "a3"];
const GROUP_B: [&str; 3] = ["b1", "b2", "b3"];

fn view(user: &str, item: &str, category: &str) -> Value {
    json!({"type":"track","userId":user,"event":"Product Viewed",
           "properties":{"item_id":item,"category":category,"in_stock":item != "a3"}})
}

fn consent(user: &str, granted: bool) -> Value {
    if granted {
        json!({"type":"consent","userId":user,"granted":["personalization"],"denied":[]})
    } else {
        json!({"type":"consent","userId":user,"granted":[],"denied":["personalization"]})
    }
}

/// Six consenting persons: three like the `a` items, three the `b` items, each viewing two of
/// their group's three (person k skips item k); one person who never consented and views `b3`
/// together with `a1` (must not influence the models).
fn population(e: &Engine) {
    let mut events = Vec::new();
    for (g, items, cat) in [("ua", GROUP_A, "boots"), ("ub", GROUP_B, "tents")] {
        for k in 0..3 {
            let user = format!("{g}{k}");
            events.push(consent(&user, true));
            for (j, item) in items.iter().enumerate() {
                if j != k {
                    events.push(view(&user, item, cat));
                }
            }
        }
    }
    for _ in 0..5 {
        events.push(view("silent", "a1", "boots"));
        events.push(view("silent", "b3", "tents"));
    }
    send(e, json!(events));
}

fn permit(e: &Engine) -> Permit {
    e.permit(
        Actor::ApiKey("shop-frontend".into()),
        &Purpose::new("personalization").unwrap(),
    )
    .unwrap()
}

fn items(d: &iob_recommend::Decision) -> Vec<&str> {
    d.items.iter().map(|r| r.item.as_str()).collect()
}

const CFG: &str = "[recommend.ease]\nlambda = 1.0\n[recommend.als]\nfactors = 2\n[placements.home]\nn = 3\n[placements.similar]\nmodel = \"knn\"\nn = 2\n[placements.stock]\nmodel = \"knn\"\nn = 2\n[placements.stock.include]\nin_stock = [\"true\"]\n[placements.again]\nexclude_seen = false\n[placements.als]\nmodel = \"als\"\nn = 1\n[placements.top]\nmodel = \"popularity\"\nn = 2\n[placements.blend]\nmodel = \"blend\"\nn = 1";

#[test]
fn personalized_answers_with_explanations_change_at_once_and_respect_rules() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), CFG);
    let e = engine(&cfg);
    population(&e);
    send(
        &e,
        json!([
            consent("alice", true),
            view("alice", "a1", "boots"),
            view("alice", "a2", "boots")
        ]),
    );
    let rec = Recommender::open(e.clone(), &cfg).unwrap();
    let report = rec.models();
    // Trained at open (no artifact yet): 7 consenting persons (silent excluded), 6 items.
    assert_eq!(report.als.as_ref().unwrap().persons.len(), 7);
    let p = permit(&e);

    let d = rec.decide(&p, "alice", Some("home"), None).unwrap();
    assert!(d.personalized && d.fallback.is_none(), "{d:?}");
    assert_eq!(d.model, "ease");
    assert_eq!(d.items[0].item, "a3", "{d:?}");
    // a3 is explained by what alice viewed, both a1 and a2.
    let because: Vec<&str> = d.items[0].because.iter().map(|b| b.item.as_str()).collect();
    assert_eq!(because.len(), 2);
    assert!(because.contains(&"a1") && because.contains(&"a2"));
    assert!(
        d.items[0].explanation.starts_with("because you viewed a"),
        "{}",
        d.items[0].explanation
    );

    // kNN placement: a3 first, and `similar` names the a-group.
    let d = rec.decide(&p, "alice", Some("similar"), None).unwrap();
    assert_eq!(d.model, "knn");
    assert_eq!(items(&d)[0], "a3");
    let sim: Vec<String> = rec.similar("a1", 2).into_iter().map(|s| s.0).collect();
    assert!(
        sim.contains(&"a2".to_string()) && sim.contains(&"a3".to_string()),
        "{sim:?}"
    );

    // ALS folds alice in (she is a training row with the same history: her stored factors)
    // and explains a3 by her history too.
    let d = rec.decide(&p, "alice", Some("als"), None).unwrap();
    assert_eq!((d.model, items(&d)[0]), ("als", "a3"), "{d:?}");
    assert!(!d.items[0].because.is_empty(), "{d:?}");

    // The blend of EASE and ALS agrees on a3 and is explained by its EASE part.
    let d = rec.decide(&p, "alice", Some("blend"), None).unwrap();
    assert_eq!((d.model, items(&d)[0]), ("ease+als", "a3"), "{d:?}");
    assert!(d.personalized, "{d:?}");
    let because: Vec<&str> = d.items[0].because.iter().map(|b| b.item.as_str()).collect();
    assert!(because.contains(&"a1") && because.contains(&"a2"), "{d:?}");

    // Include rule: a3 is out of stock, so the stock placement never shows it.
    let d = rec.decide(&p, "alice", Some("stock"), None).unwrap();
    assert!(!items(&d).contains(&"a3"), "{d:?}");

    // Real time: alice buys a3 and views b1, b2: no retraining, the answer changes at once,
    // and what she bought is excluded.
    let before = rec.models().seq;
    send(
        &e,
        json!([
            {"type":"track","userId":"alice","event":"Order Completed",
             "properties":{"products":[{"item_id":"a3","category":"boots"}]}},
            view("alice", "b1", "tents"), view("alice", "b2", "tents"),
        ]),
    );
    let d = rec.decide(&p, "alice", Some("home"), None).unwrap();
    assert_eq!(rec.models().seq, before, "no retraining");
    assert_eq!(d.items[0].item, "b3", "{d:?}");
    assert!(d.items[0].because.iter().all(|b| b.item.starts_with('b')));
    assert!(
        !items(&d)
            .iter()
            .any(|i| ["a1", "a2", "a3", "b1", "b2"].contains(i)),
        "seen: {d:?}"
    );
    // A placement that may show viewed items again still leaves out what she bought.
    let d = rec.decide(&p, "alice", Some("again"), None).unwrap();
    assert!(items(&d).contains(&"a1"), "{d:?}");
    assert!(
        !items(&d).contains(&"a3"),
        "bought items are excluded: {d:?}"
    );
    assert!(d.items[0].explanation.contains("bought a3"), "{d:?}");

    // Popularity placement: never personalized, says so.
    let d = rec.decide(&p, "alice", Some("top"), None).unwrap();
    assert!(!d.personalized);
    assert_eq!(d.fallback, Some(Fallback::PopularityPlacement));
}

#[test]
fn fallbacks_say_why_and_bad_input_names_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), CFG);
    let e = engine(&cfg);
    population(&e);
    let rec = Recommender::open(e.clone(), &cfg).unwrap();
    let p = permit(&e);

    let d = rec.decide(&p, "nobody-known", Some("home"), None).unwrap();
    assert!(!d.personalized);
    assert_eq!(d.fallback, Some(Fallback::UnknownPerson));
    assert_eq!(d.items.len(), 3);
    assert!(
        d.items
            .iter()
            .all(|r| r.explanation.contains("unknown person"))
    );

    // `silent` never consented: popular items, nothing from their history.
    let d = rec.decide(&p, "silent", Some("home"), None).unwrap();
    assert!(!d.personalized);
    assert!(
        matches!(&d.fallback, Some(Fallback::NoConsent { .. })),
        "{d:?}"
    );

    // Consent withdrawn: the next answer is not personalized.
    assert!(
        rec.decide(&p, "ua0", Some("home"), None)
            .unwrap()
            .personalized
    );
    send(&e, json!([consent("ua0", false)]));
    let d = rec.decide(&p, "ua0", Some("home"), None).unwrap();
    assert_eq!(
        d.fallback,
        Some(Fallback::NoConsent {
            basis: "withdrawn".into()
        })
    );

    // A consenting person with no history: cold start.
    send(&e, json!([consent("newbie", true)]));
    let d = rec.decide(&p, "newbie", Some("home"), None).unwrap();
    assert_eq!(d.fallback, Some(Fallback::ColdStart));

    let err = rec
        .decide(&p, "ua1", Some("nope"), None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("`placement`") && err.contains("home"), "{err}");
    let err = rec
        .decide(&p, "ua1", Some("home"), Some(0))
        .unwrap_err()
        .to_string();
    assert!(err.contains("`n`"), "{err}");
    assert!(rec.decide(&p, "ua1", Some("home"), Some(101)).is_err());
}

#[test]
fn erasure_removes_the_persons_model_state_on_disk_and_artifacts_load_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), CFG);
    let e = engine(&cfg);
    population(&e);
    let rec = Recommender::open(e.clone(), &cfg).unwrap();
    let p = permit(&e);
    assert!(
        rec.decide(&p, "ub1", Some("home"), None)
            .unwrap()
            .personalized
    );
    let person = match e.decide_subject(&p, "ub1").unwrap() {
        iob_engine::Subject::Person { person, .. } => person.0,
        other => panic!("{other:?}"),
    };
    let on_disk = artifact::load_latest(rec.artifact_dir()).unwrap().unwrap();
    assert!(on_disk.als.unwrap().row_of(person).is_some());

    let ops = e.permit(Actor::Operator, &Purpose::operations()).unwrap();
    let report = e.erase_person(&ops, "ub1").unwrap();
    let (name, removed) = &report.derived[0];
    assert_eq!(name, "recommendations");
    assert_eq!(*removed, 2 + 1, "two views and one row of ALS factors");
    let on_disk = artifact::load_latest(rec.artifact_dir()).unwrap().unwrap();
    let als = on_disk.als.unwrap();
    assert!(als.row_of(person).is_none());
    assert_eq!(als.persons.len(), 5);
    assert_eq!(
        artifact::list(rec.artifact_dir()).len(),
        1,
        "no older file keeps them"
    );
    let d = rec.decide(&p, "ub1", Some("home"), None).unwrap();
    assert_eq!(d.fallback, Some(Fallback::UnknownPerson));

    // A restart loads the artifact instead of retraining.
    let seq = rec.models().seq;
    drop(rec);
    drop(e);
    let e = engine(&cfg);
    let rec = Recommender::open(e.clone(), &cfg).unwrap();
    assert_eq!(rec.models().seq, seq);
    assert!(rec.models().als.as_ref().unwrap().row_of(person).is_none());
    // Retraining makes a new version and keeps one file.
    let r = rec.train().unwrap();
    assert_eq!(r.persons, 5);
    assert_eq!(rec.models().seq, seq + 1);
    assert_eq!(artifact::list(rec.artifact_dir()).len(), 1);
}

#[test]
fn offline_erasure_reaches_the_artifact() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), CFG);
    let e = engine(&cfg);
    population(&e);
    let rec = Recommender::open(e.clone(), &cfg).unwrap();
    let p = permit(&e);
    let person = match e.decide_subject(&p, "ua2").unwrap() {
        iob_engine::Subject::Person { person, .. } => person.0,
        other => panic!("{other:?}"),
    };
    let adir = rec.artifact_dir().to_path_buf();
    drop(rec);
    drop(e);
    // A later offline command: only the erasure hook is registered.
    let e = engine(&cfg);
    iob_recommend::service::register_for_erasure(&e).unwrap();
    let ops = e.permit(Actor::Operator, &Purpose::operations()).unwrap();
    let report = e.erase_person(&ops, "ua2").unwrap();
    assert_eq!(report.derived, vec![("recommendations".to_string(), 1)]);
    let on_disk = artifact::load_latest(&adir).unwrap().unwrap();
    assert!(on_disk.als.unwrap().row_of(person).is_none());
}
