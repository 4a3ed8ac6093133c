//! End-to-end tests of the `iob` binary: HTTP over real sockets, the CLI, kill -9, and MQTT through a real Mosquitto.
mod access;
mod analytics;
mod audit;
mod cli;
mod common;
mod decide;
mod http;
mod kill9;
mod mqtt;
mod persons;
mod privacy;
mod tls;
