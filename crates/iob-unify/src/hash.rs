//! Hashing for the unify stage's in-memory maps: the std SipHash was a tenth of profile-update
//! time. Pseudonyms are already uniform (HMAC outputs an attacker cannot steer without the key),
//! so they hash by their own bits; everything else uses foldhash, which is fast and randomly
//! seeded per map.

use std::collections::HashMap;

/// A map keyed by client-influenced values (symbols, person ids).
pub type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// A map keyed by pseudonyms (uniform HMAC outputs: hashed by their own bits).
pub type PseudonymMap<V> = HashMap<crate::identity::IdKey, V, iob_types::UniformState>;
