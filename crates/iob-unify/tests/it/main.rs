//! The unify stage end to end through its public API: stored events in, persons and profiles
//! out. Identity rules (limits, blocked values, alias, devices), explanations, late and
//! out-of-order events, and replay equivalence.

mod consent;
mod identity;
mod profiles;
mod util;
