//! The recommender inside a running engine: models loaded from the data directory at start,
//! training from the engine (persons with personalization consent only, health readings never),
//! every person's current history kept from the durable log so a new event changes their next
//! decide answer at once, decide calls under a purpose-bound permit, and erasure of a person's
//! history and ALS factors (in memory and in the artifact on disk) through [`DerivedData`].
//!
//! This module must never read a person's data except through the engine's APIs, nor answer a
//! decide call with a person's history that the engine did not allow for the permit's purpose.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

use iob_engine::{
    Actor, Config, DerivedData, Engine, EngineError, ErasedPerson, ModelChoice, Permit, Subject,
};
use iob_types::{PersonKey, Purpose};
use parking_lot::RwLock;

use crate::artifact;
use crate::catalog::Catalog;
use crate::decide::{Decision, Fallback, History, Placement, decide};
use crate::error::{RecommendError, Result};
use crate::events::touches;
use crate::matrix::{Interaction, decayed};
use crate::model::{ModelSet, TrainData, TrainReport};
use crate::popularity::Popularity;
use crate::rules::Rules;

/// One interaction of a person, as kept for real-time scoring.
#[derive(Debug, Clone, Copy)]
struct Mark {
    item: u32,
    weight: f32,
    at: i64,
    purchase: bool,
}

/// What the log has said so far, kept current before each decide.
#[derive(Default)]
struct Live {
    next_seq: u64,
    catalog: Catalog,
    /// Interactions per routing key (a person's keys are looked up at decide time, so merges
    /// and erasures are the engine's answer, not a copy of it).
    by_key: HashMap<PersonKey, Vec<Mark>>,
}

/// Recommendations over one engine.
pub struct Recommender {
    engine: Arc<Engine>,
    cfg: iob_engine::RecommendConfig,
    placements: BTreeMap<String, Placement>,
    state: Arc<State>,
}

/// What erasure must reach, registered with the engine. Holds no reference to the engine, so
/// the engine (and its directory lock) goes away when its last user drops it.
pub struct State {
    dir: PathBuf,
    models: RwLock<Arc<ModelSet>>,
    live: RwLock<Live>,
    /// Serializes trainings and erasures (both rewrite the artifact).
    writer: parking_lot::Mutex<()>,
}

impl std::ops::Deref for Recommender {
    type Target = State;
    fn deref(&self) -> &State {
        &self.state
    }
}

fn empty_models() -> ModelSet {
    ModelSet {
        seq: 0,
        trained_at: 0,
        catalog: Catalog::default(),
        popularity: Popularity::from_scores(Vec::new()),
        ease: None,
        als: None,
        knn: None,
    }
}

/// The placements of `config` (`default` when none are configured).
pub fn placements(config: &Config) -> BTreeMap<String, Placement> {
    let mut map: BTreeMap<String, iob_engine::PlacementConfig> = config.placements.clone();
    if map.is_empty() {
        map.insert("default".into(), iob_engine::PlacementConfig::default());
    }
    map.into_iter()
        .map(|(name, p)| {
            let placement = Placement {
                name: name.clone(),
                model: p.model,
                n: p.n.max(1),
                max_n: p.max_n.max(p.n.max(1)),
                rules: Rules::from(&p),
                blend_weight: config.recommend.blend_weight,
            };
            (name, placement)
        })
        .collect()
}

impl Recommender {
    /// Loads the newest model artifact (or trains one when there is none and
    /// `recommend.train_on_start` is set), reads the log's histories and registers with the
    /// engine so erasure reaches the models.
    pub fn open(engine: Arc<Engine>, config: &Config) -> Result<Arc<Recommender>> {
        let dir = artifact::dir(engine.data_dir());
        let loaded = artifact::load_latest(&dir)?;
        let have_models = loaded.is_some();
        let models = loaded.unwrap_or_else(empty_models);
        let live = Live {
            catalog: models.catalog.clone(),
            ..Live::default()
        };
        let rec = Arc::new(Recommender {
            engine: Arc::clone(&engine),
            cfg: config.recommend.clone(),
            placements: placements(config),
            state: Arc::new(State {
                dir,
                models: RwLock::new(Arc::new(models)),
                live: RwLock::new(live),
                writer: parking_lot::Mutex::new(()),
            }),
        });
        rec.refresh()?;
        if !have_models && config.recommend.train_on_start && rec.live.read().next_seq > 0 {
            rec.train()?;
        }
        engine.register_derived(Arc::clone(&rec.state) as Arc<dyn DerivedData>);
        Ok(rec)
    }

    pub fn placement_names(&self) -> Vec<String> {
        self.placements.keys().cloned().collect()
    }

    /// The models in use.
    pub fn models(&self) -> Arc<ModelSet> {
        Arc::clone(&self.models.read())
    }

    /// Applies every durable record not yet seen to the histories and the catalog.
    pub fn refresh(&self) -> Result<()> {
        loop {
            let from = self.live.read().next_seq;
            let page = self.engine.derived_page(from, 4096)?;
            if page.next_seq == from {
                return Ok(());
            }
            let mut live = self.live.write();
            if live.next_seq != from {
                continue; // Another caller applied it first.
            }
            for r in &page.records {
                if r.health {
                    continue; // Health readings are never recommendation data.
                }
                for t in touches(&r.event, &self.cfg) {
                    let item = live.catalog.intern(&t.item);
                    for (k, v) in &t.props {
                        live.catalog.set_prop(item, k, v);
                    }
                    live.by_key.entry(r.key).or_default().push(Mark {
                        item,
                        weight: t.weight,
                        at: r.at.0,
                        purchase: t.purchase,
                    });
                }
            }
            live.next_seq = page.next_seq;
        }
    }

    /// Trains every model on the events of persons who consent to personalization now, writes
    /// the artifact and switches to it.
    pub fn train(&self) -> Result<TrainReport> {
        let _w = self.writer.lock();
        self.refresh()?;
        let permit = self.engine.permit(
            Actor::Operator,
            &Purpose::new(Purpose::PERSONALIZATION).expect("valid"),
        )?;
        let directory = self.engine.person_directory(&permit)?;
        let (upto, catalog) = {
            let live = self.live.read();
            (live.next_seq, live.catalog.clone())
        };
        let mut rows: HashMap<u64, u32> = HashMap::new();
        let mut persons = Vec::new();
        let mut interactions = Vec::new();
        let mut from = 0;
        while from < upto {
            let page = self.engine.derived_page(from, 4096)?;
            if page.next_seq == from {
                break;
            }
            for r in page.records.iter().filter(|r| r.seq < upto && !r.health) {
                let Some(p) = r.person.and_then(|p| directory.current(p.0)) else {
                    continue; // Unresolved, erased or not consenting.
                };
                for t in touches(&r.event, &self.cfg) {
                    let Some(item) = catalog.get(&t.item) else {
                        continue;
                    };
                    let row = *rows.entry(p).or_insert_with(|| {
                        persons.push(p);
                        persons.len() as u32 - 1
                    });
                    interactions.push(Interaction {
                        row,
                        item,
                        weight: t.weight,
                        at: r.at.0,
                    });
                }
            }
            from = page.next_seq;
        }
        let seq = self.models.read().seq + 1;
        let data = TrainData {
            persons,
            interactions,
            catalog,
            now: self.engine.now().0,
        };
        let (set, report) = ModelSet::train(seq, data, &self.cfg);
        artifact::save(&self.dir, &set)?;
        *self.models.write() = Arc::new(set);
        tracing::info!(
            persons = report.persons,
            items = report.items,
            interactions = report.interactions,
            "trained recommendation models"
        );
        Ok(report)
    }

    /// The placement called `name` and the `n` to serve, checked.
    pub fn placement(&self, name: Option<&str>, n: Option<usize>) -> Result<(&Placement, usize)> {
        let name = name.unwrap_or_else(|| {
            if self.placements.contains_key("default") {
                "default"
            } else {
                self.placements
                    .keys()
                    .next()
                    .map_or("default", |s| s.as_str())
            }
        });
        let p = self.placements.get(name).ok_or_else(|| {
            RecommendError::invalid(
                "placement",
                format!(
                    "no placement `{}`; configured: {}",
                    name.chars().take(64).collect::<String>(),
                    self.placement_names().join(", ")
                ),
            )
        })?;
        let n = n.unwrap_or(p.n);
        if n == 0 || n > p.max_n {
            return Err(RecommendError::invalid(
                "n",
                format!("must be 1..={} for placement `{}`", p.max_n, p.name),
            ));
        }
        Ok((p, n))
    }

    /// What to show the person behind `id` at `placement`: a purpose-bound read (the permit
    /// should be for `personalization`); a person without consent, or unknown, gets a
    /// non-personalized answer that says why.
    pub fn decide(
        &self,
        permit: &Permit,
        id: &str,
        placement: Option<&str>,
        n: Option<usize>,
    ) -> Result<Decision> {
        let (p, n) = self.placement(placement, n)?;
        let subject = self.engine.decide_subject(permit, id)?;
        self.refresh()?;
        let models = self.models();
        let live = self.live.read();
        let history;
        let subject = match subject {
            Subject::Unknown => Err(Fallback::UnknownPerson),
            Subject::Refused { basis } => Err(Fallback::NoConsent { basis }),
            Subject::Person { person, keys } => {
                history = self.history(&live, person.0, &keys);
                Ok(&history)
            }
        };
        Ok(decide(&models, &live.catalog, p, subject, n))
    }

    /// The person's history now: decayed, summed, capped weight per item; purchases.
    fn history(&self, live: &Live, person: u64, keys: &[PersonKey]) -> History {
        let now = self.engine.now().0;
        let half = (self.cfg.half_life_days * 86_400_000.0) as i64;
        let mut items: HashMap<u32, f32> = HashMap::new();
        let mut purchased = Vec::new();
        for k in keys {
            for m in live.by_key.get(k).into_iter().flatten() {
                *items.entry(m.item).or_default() += decayed(m.weight, m.at, now, half);
                if m.purchase {
                    purchased.push(m.item);
                }
            }
        }
        purchased.sort_unstable();
        purchased.dedup();
        let cap = self.cfg.max_weight;
        let mut items: Vec<(u32, f32)> = items
            .into_iter()
            .map(|(i, w)| (i, if cap > 0.0 { w.min(cap) } else { w }))
            .collect();
        items.sort_unstable_by_key(|p| p.0);
        History {
            person: Some(person),
            items,
            purchased,
        }
    }

    /// Items most similar to `item` ("people who viewed this also viewed"): not personal.
    pub fn similar(&self, item: &str, n: usize) -> Vec<(String, f32)> {
        let models = self.models();
        let Some(knn) = &models.knn else {
            return Vec::new();
        };
        let Some(i) = models.catalog.get(item) else {
            return Vec::new();
        };
        knn.similar(i)
            .into_iter()
            .take(n)
            .map(|(j, s)| (models.catalog.id(j).to_string(), s))
            .collect()
    }

    /// Which model a placement uses now.
    pub fn model_of(&self, placement: &str) -> Option<ModelChoice> {
        let p = self.placements.get(placement)?;
        Some(self.models().resolve(p.model))
    }

    pub fn artifact_dir(&self) -> &std::path::Path {
        &self.dir
    }
}

/// For offline commands that erase a person without serving recommendations (`iob privacy
/// erase`): registers the model artifact of `engine`'s data directory with the engine, so the
/// erasure removes the person's factors from it too.
pub fn register_for_erasure(engine: &Engine) -> Result<()> {
    let dir = artifact::dir(engine.data_dir());
    let models = artifact::load_latest(&dir)?.unwrap_or_else(empty_models);
    engine.register_derived(Arc::new(State {
        dir,
        models: RwLock::new(Arc::new(models)),
        live: RwLock::new(Live::default()),
        writer: parking_lot::Mutex::new(()),
    }));
    Ok(())
}

impl State {
    fn models(&self) -> Arc<ModelSet> {
        Arc::clone(&self.models.read())
    }
}

impl DerivedData for State {
    fn name(&self) -> &'static str {
        "recommendations"
    }

    fn erase(&self, person: &ErasedPerson) -> std::result::Result<u64, EngineError> {
        let _w = self.writer.lock();
        let mut removed = 0u64;
        {
            let mut live = self.live.write();
            for k in &person.keys {
                if let Some(v) = live.by_key.remove(k) {
                    removed += v.len() as u64;
                }
            }
        }
        let current = self.models();
        if current
            .als
            .as_ref()
            .is_some_and(|a| a.row_of(person.person.0).is_some())
        {
            let mut next = (*current).clone();
            if let Some(a) = &mut next.als {
                a.remove(person.person.0);
            }
            artifact::save(&self.dir, &next).map_err(|e| match e {
                RecommendError::Io { what, source } => EngineError::Io { what, source },
                other => EngineError::Io {
                    what: "rewriting the recommendation model".into(),
                    source: std::io::Error::other(other.to_string()),
                },
            })?;
            *self.models.write() = Arc::new(next);
            removed += 1;
        }
        Ok(removed)
    }
}
