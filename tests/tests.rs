#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Integration tests: the real `mirrortray` binary on real temp trees.
//! One test binary (ripgrep's layout); one module per command or concern.

mod support;

mod cli_config;
mod cli_sync;
mod cli_verify;
mod deep;
mod fidelity;
mod mix;
mod nas;
mod offsite;
mod package;
mod page;
mod page_browser;
mod prop;
mod restore;
mod safety;
mod status;
mod tray;
mod watch;
