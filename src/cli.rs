//! cli: the command line, as clap sees it. Nothing else lives here.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Keeps a live, versioned, exact mirror of folders, from the system tray.
///
/// What no command does is said in [`EXAMPLES`] (shown after the options).
#[derive(Debug, Parser)]
#[command(
    name = "mirrortray",
    version,
    about,
    long_about = None,
    propagate_version = true,
    after_help = EXAMPLES
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub global: Global,
}

const EXAMPLES: &str = "\
Without a command, mirrortray starts the tray: its icon says whether every
folder is backed up, and its menu pauses, backs up now, opens the backup,
gets files back and adds folders. With no display, it runs headless, as
`mirrortray watch` does.

Examples:
  mirrortray                                  start the tray
  mirrortray add ~/Documents /media/me/USB/Documents
                                              back up Documents to a USB drive
  mirrortray status                           is everything backed up?
  mirrortray restore ~/Documents/report.odt   get the last version back
  mirrortray ui                               open the restore page
  mirrortray COMMAND --help                   more on one command";

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

/// The folders `verify` compares.
#[derive(Debug, Args, Clone, Default)]
pub struct VerifyArgs {
    /// Source folder (with DST; without both, every configured pair).
    #[arg(value_name = "SRC", requires = "dst")]
    pub src: Option<PathBuf>,
    /// Backup folder to compare it with.
    #[arg(value_name = "DST")]
    pub dst: Option<PathBuf>,
    /// Leave paths matching this gitignore-style pattern alone (repeatable).
    #[arg(long, value_name = "PATTERN")]
    pub ignore: Vec<String>,
}

impl From<VerifyArgs> for PairArgs {
    fn from(v: VerifyArgs) -> PairArgs {
        PairArgs {
            src: v.src,
            dst: v.dst,
            ignore: v.ignore,
            no_versions: false,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Mirror live: reconcile, then copy every change until SIGINT/SIGTERM.
    #[command(after_help = "Examples:
  mirrortray watch                      every pair of the config, without the tray
  mirrortray watch ~/Documents /media/me/USB/Documents
  mirrortray watch ~/src ~/bk/src --ignore target/ --ignore '*.o'")]
    Watch {
        #[command(flatten)]
        pair: PairArgs,
        /// Let the first reconcile delete more than half of the backup.
        #[arg(long)]
        allow_mass_delete: bool,
    },
    /// Reconcile once and exit (0 mirrored, 1 some entries failed, 2 bad setup).
    #[command(after_help = "Examples:
  mirrortray sync                       every pair of the config, once
  mirrortray sync -n                    only say what it would copy, version and delete
  mirrortray sync ~/Photos /media/me/USB/Photos -v")]
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
    #[command(after_help = "Examples:
  mirrortray verify                     every pair of the config
  mirrortray verify --checksum          compare the bytes too (reads everything)
  mirrortray verify ~/Photos /media/me/USB/Photos")]
    Verify {
        #[command(flatten)]
        pair: VerifyArgs,
        /// Also compare the bytes of files whose size and time match.
        #[arg(long)]
        checksum: bool,
    },
    /// Add a folder pair to the config.
    #[command(after_help = "Examples:
  mirrortray add ~/Documents /media/me/USB/Documents
  mirrortray add ~/Projects ~/Backups/Projects --ignore target/ --ignore node_modules/
  mirrortray add ~/Music /mnt/nas/Music --no-versions
A running tray picks the new pair up at once.")]
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
    /// Remove the pair with this source folder from the config (the backup
    /// folder is left as it is).
    #[command(after_help = "Examples:
  mirrortray remove ~/Music")]
    Remove {
        /// Source folder of the pair.
        src: PathBuf,
    },
    /// Print the config file's path and the pairs in it.
    #[command(after_help = "Examples:
  mirrortray config
  mirrortray --config ~/other.toml config")]
    Config,
    /// List the kept versions of a file or folder, newest first.
    #[command(after_help = "Examples:
  mirrortray versions ~/Documents/report.odt   every kept version of a file
  mirrortray versions ~/Documents/photos       everything kept under a folder
  mirrortray versions --stats                  space used and how long versions are kept")]
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
    #[command(after_help = "Examples:
  mirrortray status
  mirrortray status --json | jq '.[].pairs[].headline'")]
    Status {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Open the running tray's or watcher's local page: status, browsing
    /// the backup as of any time, getting files back (2: none running).
    #[command(after_help = "Examples:
  mirrortray ui                                the overview
  mirrortray ui ~/Documents/report.odt         that file's versions
  mirrortray ui ~/Documents                    that folder, deleted files marked
  mirrortray ui --print-url                    the address, to open elsewhere")]
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
    #[command(after_help = "Examples:
  mirrortray integrate
  mirrortray integrate --remove")]
    Integrate {
        /// Remove the entries this added.
        #[arg(long)]
        remove: bool,
    },
    /// Bring back a file or folder as it was (the current one is kept as a
    /// version first, so a restore can be undone).
    #[command(after_help = "Examples:
  mirrortray restore ~/Documents/report.odt             as it was before its last change
  mirrortray restore ~/Documents/photos --at '2 hours ago'
  mirrortray restore ~/Documents/photos --at 2026-11-30 --to /tmp/old-photos
  mirrortray restore ~/Documents/report.odt -n          only say what it would do")]
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
    /// Encrypted offsite copies of a pair's backup folder, as snapshots in a
    /// restic repository (set `offsite = { repository = "...",
    /// password_file = "..." }` in the pair's config).
    #[command(subcommand)]
    Offsite(OffsiteCommand),
    /// Start the tray app (the default without a command).
    #[command(hide = true)]
    Tray,
    /// Write the man pages or the shell completions into a folder (for
    /// packaging: `scripts/package.sh`).
    #[command(hide = true)]
    Generate {
        what: Generated,
        /// The folder to write into (created if missing).
        dir: PathBuf,
    },
}

/// What `generate` writes.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Generated {
    /// mirrortray.1 and one page per command (mirrortray-sync.1 ...).
    Man,
    /// Completions for bash, zsh and fish.
    Completions,
}

/// `mirrortray offsite ...`
#[derive(Debug, Subcommand)]
pub enum OffsiteCommand {
    /// Create the pair's restic repository, or check that its password opens
    /// the one that is there.
    #[command(after_help = "Examples:
  mirrortray offsite init                 every pair with an offsite copy
  mirrortray offsite init ~/Documents")]
    Init {
        /// The pair's source folder (default: every pair with an offsite copy).
        src: Option<PathBuf>,
    },
    /// Take one snapshot of the backup folder now (without its .mirrortray/).
    /// When the mirror has written nothing since the last snapshot (and that
    /// one walked the folder less than a day ago), the new snapshot reuses
    /// its tree and no file is read.
    #[command(after_help = "Examples:
  mirrortray offsite push
  mirrortray offsite push ~/Documents
  mirrortray offsite push --skip-if-unchanged")]
    Push {
        /// The pair's source folder (default: every pair with an offsite copy).
        src: Option<PathBuf>,
        /// No new snapshot when the backup folder is as the last one holds
        /// it (as restic's flag of that name; what the background push does).
        #[arg(long)]
        skip_if_unchanged: bool,
    },
    /// List the pair's snapshots in its repository, oldest first.
    #[command(after_help = "Examples:
  mirrortray offsite snapshots ~/Documents")]
    Snapshots {
        /// The pair's source folder (default: every pair with an offsite copy).
        src: Option<PathBuf>,
    },
    /// Bring back a file or folder from the repository, into a folder of
    /// your choice (the source is never touched).
    #[command(after_help = "Examples:
  mirrortray offsite restore ~/Documents/report.odt --to /tmp/back
  mirrortray offsite restore ~/Documents --at '3 days ago' --to /tmp/back")]
    Restore {
        /// A path in a source or backup folder.
        path: PathBuf,
        /// The latest snapshot at or before this time (ISO-8601, or e.g. "2
        /// days ago"; default: the latest).
        #[arg(long, value_name = "TIME")]
        at: Option<String>,
        /// The folder to write into: PATH comes back as DIR/<its name>.
        #[arg(long, value_name = "DIR", required = true)]
        to: PathBuf,
    },
    /// Forget the pair's snapshots that its keep policy (keep_hourly,
    /// keep_daily, keep_weekly, keep_monthly) does not name, and free the
    /// space only they used.
    #[command(after_help = "Examples:
  mirrortray offsite forget
  mirrortray offsite forget ~/Documents")]
    Forget {
        /// The pair's source folder (default: every pair with an offsite copy).
        src: Option<PathBuf>,
    },
    /// Check the repository's structure (and with --read-data every byte).
    #[command(after_help = "Examples:
  mirrortray offsite check
  mirrortray offsite check ~/Documents --read-data")]
    Check {
        /// The pair's source folder (default: every pair with an offsite copy).
        src: Option<PathBuf>,
        /// Also download and verify all data (slow on a remote repository).
        #[arg(long)]
        read_data: bool,
    },
}
