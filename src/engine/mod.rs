//! The engine: everything that makes a backup folder a safe, exact mirror of
//! a source folder. No GUI dependency, ever; the tray and the CLI drive it
//! through [`mirror::Mirror`], events out ([`event::Sink`]) and a stop switch
//! in ([`event::Control`]).
//!
//! - `paths`: user paths made absolute once; overlapping pairs refused.
//! - `fsops`: directory-handle operations that never follow a symlink.
//! - `plan`: pure per-name decisions. `reconcile`: the parallel tree walk.
//! - `ctx`: what one pass shares and how each outcome is reported.
//! - `copy`: one file, complete or not at all; `content`: its bytes (holes
//!   and clones kept), attributes, mode and times; `xattrs`: attributes and ACLs;
//!   `links`: hard links kept as hard links.
//! - `versions`, `store`: what DST loses is kept; DST's `.mirrortray/`
//!   folder and its lock. `thinning`: which old versions go as they age.
//! - `history`: what DST held at any time, read from the versions (read
//!   only). `restore`: puts a tree back as it was, into SRC or beside.
//! - `keeps`: what the backup drive's file system can hold (exFAT, NTFS…);
//!   `record`: what it cannot, written down so a restore is exact;
//!   `aside`: keeps that record in step during a pass.
//! - `verify`: compare only. `config`: the pairs. `watch`: live mirroring.
//! - `offsite`: snapshots of DST in a restic repository (rustic_core);
//!   `offsite_clean`: the marker that lets a push with nothing changed skip
//!   the walk; `one_cpu`: a push with a parent held to one CPU.
//! - `words`: numbers and sizes for people.

pub mod aside;
pub mod batch;
pub mod config;
pub mod config_edit;
pub mod content;
pub mod copy;
pub mod ctx;
pub mod drives;
pub mod error;
pub mod event;
pub mod filter;
pub mod fsops;
pub mod history;
pub mod keeps;
pub mod links;
pub mod mirror;
pub mod offsite;
pub mod offsite_clean;
pub mod one_cpu;
pub mod origins;
pub mod paths;
pub mod plan;
pub mod reconcile;
pub mod record;
pub mod restore;
pub mod s3;
pub mod stamp;
pub mod status_file;
pub mod store;
pub mod thinning;
pub mod throttle;
pub mod verify;
pub mod versions;
pub mod watch;
pub mod words;
pub mod xattrs;
