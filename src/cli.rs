//! cli: the command line, as clap sees it. Nothing else lives here.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Keeps a live, versioned, exact mirror of folders, from the system tray.
///
/// Without a command, starts the tray app with the folder pairs of the config
/// file (headless `watch` when there is no display).
#[derive(Debug, Parser)]
#[command(name = "mirrortray", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub global: Global,
}

#[derive(Debug, Args, Clone, Default)]
pub struct Global {
    /// Use this config file instead of the default one.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Write the log to this file instead of the default one.
    #[arg(long, global = true, value_name = "FILE")]
    pub log_file: Option<PathBuf>,
    /// More output (-v: each change, -vv: debug, -vvv: every event heard).
    #[arg(short, long, global = true, action = clap::ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,
    /// Only errors; no progress.
    #[arg(short, long, global = true)]
    pub quiet: bool,
}

/// Flags of the commands that mirror.
#[derive(Debug, Args, Clone, Default)]
pub struct PairArgs {
    /// Source folder (with DST; without both, every configured pair).
    #[arg(value_name = "SRC", requires = "dst")]
    pub src: Option<PathBuf>,
    /// Backup folder (created if missing).
    #[arg(value_name = "DST")]
    pub dst: Option<PathBuf>,
    /// Leave paths matching this gitignore-style pattern alone (repeatable).
    #[arg(long, value_name = "PATTERN")]
    pub ignore: Vec<String>,
    /// Do not keep versions of what the backup loses (remove it instead).
    #[arg(long)]
    pub no_versions: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Mirror live: reconcile, then copy every change until SIGINT/SIGTERM.
    Watch {
        #[command(flatten)]
        pair: PairArgs,
        /// Let the first reconcile delete more than half of the backup.
        #[arg(long)]
        allow_mass_delete: bool,
    },
    /// Reconcile once and exit (0 mirrored, 1 some entries failed, 2 bad setup).
    Sync {
        #[command(flatten)]
        pair: PairArgs,
        /// Print what would be copied, versioned and deleted; change nothing.
        #[arg(short = 'n', long)]
        dry_run: bool,
        /// Let this run delete more than half of the backup.
        #[arg(long)]
        allow_mass_delete: bool,
    },
    /// Compare without changing anything (0 same, 1 different, 2 error).
    Verify {
        #[command(flatten)]
        pair: PairArgs,
        /// Also compare the bytes of files whose size and time match.
        #[arg(long)]
        checksum: bool,
    },
    /// Add a folder pair to the config.
    Add {
        /// Source folder.
        src: PathBuf,
        /// Backup folder.
        dst: PathBuf,
        /// Gitignore-style pattern to leave alone (repeatable).
        #[arg(long, value_name = "PATTERN")]
        ignore: Vec<String>,
        /// Do not keep versions for this pair.
        #[arg(long)]
        no_versions: bool,
        /// Keep versions this many days, at least 1 (default: the config's
        /// setting, 30). To keep none, use --no-versions.
        #[arg(long, value_name = "DAYS", value_parser = clap::value_parser!(u32).range(1..))]
        retention_days: Option<u32>,
        /// Use a backup folder that already holds other files (not a
        /// mirrortray backup): the mirror moves them into its versions.
        #[arg(long)]
        adopt: bool,
    },
    /// Remove the pair with this source folder from the config.
    Remove {
        /// Source folder of the pair.
        src: PathBuf,
    },
    /// Print the config file's path and the pairs in it.
    Config,
    /// List the kept versions of a file or folder, newest first.
    Versions {
        /// A path in a source or backup folder.
        path: Option<PathBuf>,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
        /// How much space versions use, per pair.
        #[arg(long)]
        stats: bool,
    },
    /// Show what the running tray or watcher is doing (0 all up to date, 1
    /// something outstanding, 2 none running).
    Status {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Open the running tray's or watcher's local page: status, browsing
    /// the backup as of any time, getting files back (2: none running).
    Ui {
        /// Open the page at this file's history or this folder (in a source
        /// or backup folder).
        path: Option<PathBuf>,
        /// Print the page's address (with its key) instead of opening it.
        #[arg(long)]
        print_url: bool,
    },
    /// Add "Previous versions…" to the right-click menus of the file
    /// managers (GNOME Files, Dolphin, Nemo), or remove it.
    Integrate {
        /// Remove the entries this added.
        #[arg(long)]
        remove: bool,
    },
    /// Bring back a file or folder as it was.
    Restore {
        /// A path in a source or backup folder.
        path: PathBuf,
        /// The time to restore to (ISO-8601, or e.g. "2 hours ago").
        #[arg(long, value_name = "TIME")]
        at: Option<String>,
        /// Restore into this folder instead of the source.
        #[arg(long, value_name = "DIR")]
        to: Option<PathBuf>,
        /// Print what would be restored; change nothing.
        #[arg(short = 'n', long)]
        dry_run: bool,
    },
    /// Start the tray app (the default without a command).
    #[command(hide = true)]
    Tray,
}
