//! Integration tests of iob-store (one test binary).

mod basic;
mod crash;
mod dedup;
mod dirs;
mod fixture;
mod kill;
mod quarantine;
mod sealing;
mod util;
