//! One module per subcommand.
pub mod audit;
pub mod bench;
pub mod bench_analytics;
pub mod bench_mqtt;
pub mod bench_recommend;
pub mod demo;
pub mod events;
pub mod import;
pub mod keys;
pub mod machine;
pub mod persons;
pub mod privacy;
pub mod quarantine;
pub mod query;
pub mod recommend;
pub mod serve;
