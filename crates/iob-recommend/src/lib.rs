//! Recommendations for iob (stage "understand/act", capabilities A4 and P1).
//!
//! * Algorithms (no I/O): [`ease`] (closed form, faer), [`als`] (implicit ALS, conjugate
//!   gradient, fold-in), [`knn`] (item-kNN / session co-occurrence), [`popularity`]
//!   (recency-weighted fallback), over the [`matrix`] of weighted, decayed interactions;
//!   [`vecmath`] holds their shared kernels.
//! * Serving (no I/O): [`events`] (which events are interactions), [`catalog`], [`model`] (a
//!   trained set), [`rules`] (exclusions, include/exclude by property, diversity), [`decide`]
//!   (items, scores, explanations, fallbacks with their reason).
//! * [`artifact`]: the versioned model file in `DATA_DIR/models/recommend/`.
//! * [`service`]: the [`Recommender`] inside a running engine (training from consenting persons,
//!   real-time histories, purpose-bound decide, erasure).
//! * [`eval`]: offline evaluation (two protocols, validation-tuned, `implicit` side by side).
//!
//! This crate must never read a person's data except through the engine's purpose-bound APIs.

pub mod als;
pub mod artifact;
pub mod blend;
pub mod catalog;
pub mod decide;
pub mod ease;
pub mod error;
pub mod eval;
pub mod events;
pub mod knn;
pub mod matrix;
pub mod model;
pub mod popularity;
pub mod rules;
pub mod service;
pub mod vecmath;

pub use decide::{Decision, Fallback, Recommended};
pub use error::{RecommendError, Result};
pub use model::{ModelSet, TrainReport};
pub use service::Recommender;
