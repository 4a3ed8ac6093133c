//! End-to-end tests of the `iob` binary: HTTP over real sockets, the CLI, and kill -9.
mod cli;
mod common;
mod http;
mod kill9;
mod persons;
