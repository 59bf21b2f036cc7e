//! The command-line contract (DESIGN.md §4). Help text here is the reference documentation.

use std::num::NonZeroUsize;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "kiln",
    version,
    about = "Kiln — a golden image factory: define, plan, build, test, scan, record, publish, serve.",
    propagate_version = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct Global {
    /// Factory directory (default: the nearest parent of the current directory holding kiln.hcl).
    #[arg(long, global = true, env = "KILN_FACTORY", value_name = "DIR")]
    pub factory: Option<PathBuf>,
    /// More log output (-v info, -vv debug, -vvv trace). KILN_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Scaffold a working factory: a hardened base-debian12 and a child app-web, with checks.
    Init {
        /// Directory to create (must not already hold a factory).
        dir: PathBuf,
    },
    /// Check every definition file; errors are printed as PATH:LINE:COL: error: MESSAGE.
    Validate {
        #[arg(long, value_enum, default_value_t = ValidateFormat::Text)]
        format: ValidateFormat,
    },
    /// List the images that must be built, why, and in which order (waves, batches).
    Plan(PlanArgs),
    /// Build images: bootstrap (or start from the parent's tree), provision, seal, disk, exports.
    Build(BuildArgs),
    /// Boot an image file under QEMU and run check files in it through the guest agent.
    Test(TestArgs),
    /// List a bucket's versions, newest first.
    Versions {
        bucket: String,
        #[command(flatten)]
        out: RegistryOut,
    },
    /// Show one version: status, parents, revocation, artifacts.
    Show {
        bucket: String,
        #[arg(value_name = "VERSION")]
        version_id: String,
        #[command(flatten)]
        out: RegistryOut,
    },
    /// Parents, children and out-of-date children of a bucket's versions.
    Ancestry {
        bucket: String,
        #[command(flatten)]
        out: RegistryOut,
    },
    /// Point a channel at a version.
    Promote {
        bucket: String,
        #[arg(value_name = "VERSION")]
        version_id: String,
        #[arg(long = "to", value_name = "CHANNEL")]
        channel: String,
        #[arg(long, default_value = "")]
        reason: String,
        #[command(flatten)]
        who: Who,
        #[command(flatten)]
        out: RegistryOut,
    },
    /// A channel's history, or roll it back to its previous good assignment.
    Channel {
        #[command(subcommand)]
        command: ChannelCommand,
    },
    /// Revoke a version (and, unless --skip-descendants, every version built on it).
    Revoke {
        bucket: String,
        #[arg(value_name = "VERSION")]
        version_id: String,
        #[arg(long)]
        reason: String,
        /// Revoke at this time (RFC 3339 UTC) instead of now.
        #[arg(long, value_name = "TIME")]
        at: Option<String>,
        #[arg(long)]
        skip_descendants: bool,
        #[command(flatten)]
        who: Who,
        #[command(flatten)]
        out: RegistryOut,
    },
    /// Undo a revocation (and the revocations its descendants inherited).
    Restore {
        bucket: String,
        #[arg(value_name = "VERSION")]
        version_id: String,
        #[command(flatten)]
        who: Who,
        #[command(flatten)]
        out: RegistryOut,
    },
    /// Record an approval of a version (for channels whose policy requires one).
    Approve {
        bucket: String,
        #[arg(value_name = "VERSION")]
        version_id: String,
        #[command(flatten)]
        who: Who,
    },
    /// Check the registry's audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Upstream updates of the versions on channels (security updates marked), and children
    /// built on a parent version their tracked channel has moved away from.
    Outdated {
        #[command(flatten)]
        out: RegistryOut,
    },
    /// Apply the retention policy (kiln.hcl `retention` block): delete old versions' artifacts
    /// and failed builds' after their grace period. Versions on a channel, ancestors of live
    /// versions and young versions are always kept. Every deletion is audited.
    Reap {
        /// Say what would be deleted (and what is kept, and why) without deleting anything.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        who: Who,
        #[command(flatten)]
        out: RegistryOut,
    },
    /// Webhook deliveries: what is pending or dead, deliver now, retry the dead ones.
    Notify {
        #[command(subcommand)]
        command: NotifyCommand,
    },
    /// Scan an image tree or a disk image (raw, qcow2, VHD, VMDK): SBOM from the package
    /// database, known vulnerabilities from the offline data `kiln vulndb import` loaded, secrets
    /// and hygiene leftovers. Reads the image; never boots or mounts it.
    Scan(ScanArgs),
    /// The offline vulnerability data the scanner matches against.
    Vulndb {
        #[command(subcommand)]
        command: VulndbCommand,
    },
    /// Inspect or prune the stage cache.
    Cache {
        #[command(subcommand)]
        command: CacheCommand,
    },
    /// Serve the registry over HTTP: the /v1 API, Terraform state per channel, the run task,
    /// /metrics and the web UI.
    Serve(ServeArgs),
    /// Lease queued build jobs (`kiln build --queue`) from the registry and build them, one at a
    /// time, until stopped.
    Worker(WorkerArgs),
    /// The build queue's jobs: image, status, worker, attempts, version.
    Jobs {
        /// Only this batch (as printed by `kiln build --queue`).
        #[arg(long)]
        batch: Option<String>,
        #[command(flatten)]
        out: RegistryOut,
    },
    /// API tokens for `kiln serve` (the secret is shown once, only its hash is kept).
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Share a version with the cloud accounts the account map gives its channels (AWS: EBS
    /// snapshot, AMI, copies per region, launch permissions, SSM parameter per channel). Fails
    /// closed: no map, an empty map, an untested version or a version on no channel shares
    /// nothing.
    Publish(PublishArgs),
    /// Check a Terraform plan (`terraform show -json plan.out > plan.json`): fails when a
    /// resource created or updated uses an image id that is revoked or not in the registry.
    CheckPlan(CheckPlanArgs),
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080", env = "KILN_LISTEN")]
    pub listen: String,
    /// Serve reads (API GETs, Terraform state, UI) without a token.
    #[arg(long, env = "KILN_ANONYMOUS_READ")]
    pub anonymous_read: bool,
    /// The HMAC key HCP Terraform signs run task requests with (X-TFC-Task-Signature).
    #[arg(long, env = "KILN_RUNTASK_HMAC_KEY", hide_env_values = true)]
    pub runtask_hmac_key: Option<String>,
    #[command(flatten)]
    pub untracked: UntrackedArg,
}

#[derive(Debug, Args)]
pub struct UntrackedArg {
    /// What an image id the registry does not know does to a plan check.
    #[arg(long, value_enum, default_value_t = UntrackedMode::Fail, env = "KILN_UNTRACKED")]
    pub untracked: UntrackedMode,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum UntrackedMode {
    Fail,
    Warn,
}

#[derive(Debug, Args)]
pub struct PublishArgs {
    pub bucket: String,
    /// A version id (a unique prefix is enough).
    #[arg(value_name = "VERSION")]
    pub version_id: String,
    /// The cloud to publish to: aws, azure or gcp (a `publish` block in kiln.hcl).
    #[arg(long, default_value = "aws")]
    pub target: String,
    /// Check every condition and say what would be shared, without calling the cloud.
    #[arg(long)]
    pub dry_run: bool,
    /// Blocks (AWS) or page ranges (Azure) uploaded at once; GCP's resumable upload is one
    /// stream.
    #[arg(long, default_value_t = 16)]
    pub parallel: usize,
    /// Send AWS calls to another endpoint (a local stand-in); credentials still come from the
    /// standard chain.
    #[arg(long, env = "KILN_AWS_ENDPOINT_URL")]
    pub aws_endpoint_url: Option<String>,
    #[command(flatten)]
    pub endpoints: CloudEndpoints,
    #[command(flatten)]
    pub who: Who,
    #[command(flatten)]
    pub out: RegistryOut,
}

/// Other endpoints than the public clouds' (a sovereign cloud, or a local stand-in in tests).
/// Tokens come from `AZURE_ACCESS_TOKEN` / `GOOGLE_OAUTH_ACCESS_TOKEN`, else the `az` / `gcloud`
/// login; Azure's storage key from `AZURE_STORAGE_KEY`, else Resource Manager.
#[derive(Debug, Clone, Args)]
pub struct CloudEndpoints {
    /// Azure Resource Manager.
    #[arg(long, env = "KILN_AZURE_MANAGEMENT_URL", hide_env_values = true)]
    pub azure_management_url: Option<String>,
    /// The Azure blob service, with the account in the path when it is not in the host name.
    #[arg(long, env = "KILN_AZURE_BLOB_URL", hide_env_values = true)]
    pub azure_blob_url: Option<String>,
    /// Cloud Storage.
    #[arg(long, env = "KILN_GCP_STORAGE_URL", hide_env_values = true)]
    pub gcp_storage_url: Option<String>,
    /// The Compute Engine API.
    #[arg(long, env = "KILN_GCP_COMPUTE_URL", hide_env_values = true)]
    pub gcp_compute_url: Option<String>,
    /// The Resource Manager API (project numbers).
    #[arg(long, env = "KILN_GCP_RESOURCE_MANAGER_URL", hide_env_values = true)]
    pub gcp_resource_manager_url: Option<String>,
}

impl CloudEndpoints {
    /// From the environment alone (for the reconciliation after revoke, restore, promote).
    pub fn from_env() -> CloudEndpoints {
        let var = |k: &str| std::env::var(k).ok().filter(|s| !s.is_empty());
        CloudEndpoints {
            azure_management_url: var("KILN_AZURE_MANAGEMENT_URL"),
            azure_blob_url: var("KILN_AZURE_BLOB_URL"),
            gcp_storage_url: var("KILN_GCP_STORAGE_URL"),
            gcp_compute_url: var("KILN_GCP_COMPUTE_URL"),
            gcp_resource_manager_url: var("KILN_GCP_RESOURCE_MANAGER_URL"),
        }
    }

    pub fn azure(&self) -> kiln_publish::azure::publish::Endpoints {
        kiln_publish::azure::publish::Endpoints {
            management: self.azure_management_url.clone(),
            blob: self.azure_blob_url.clone(),
        }
    }

    pub fn gcp(&self) -> kiln_publish::gcp::publish::Endpoints {
        kiln_publish::gcp::publish::Endpoints {
            storage: self.gcp_storage_url.clone(),
            compute: self.gcp_compute_url.clone(),
            resource_manager: self.gcp_resource_manager_url.clone(),
        }
    }
}

#[derive(Debug, Args)]
pub struct CheckPlanArgs {
    /// The plan as JSON (`terraform show -json`).
    pub plan: PathBuf,
    #[command(flatten)]
    pub untracked: UntrackedArg,
    #[command(flatten)]
    pub out: RegistryOut,
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token; prints its secret once.
    Create {
        name: String,
        /// admin, platform, security, ci or consumer.
        #[arg(long)]
        role: String,
        /// Lifetime, e.g. 90d or 12h (default: no expiry).
        #[arg(long, value_name = "AGE")]
        expires: Option<String>,
        /// Name recorded in the audit log as the creator (default: $USER). Whoever can write
        /// the registry file manages tokens, so the local CLI acts as admin.
        #[arg(long, env = "KILN_ACTOR")]
        actor: Option<String>,
    },
    /// Tokens with role, creator, expiry and revocation (never secrets).
    List {
        #[command(flatten)]
        out: RegistryOut,
    },
    /// Revoke a token by name: it stops working at once.
    Revoke {
        name: String,
        /// Name recorded in the audit log (default: $USER).
        #[arg(long, env = "KILN_ACTOR")]
        actor: Option<String>,
    },
}

#[derive(Debug, Args)]
pub struct ScanArgs {
    /// An image tree (directory) or a disk image file.
    pub path: PathBuf,
    /// text: summary and findings; json: the full report; sarif: SARIF 2.1.0 for code-scanning
    /// tools; cyclonedx / spdx: the SBOM alone.
    #[arg(long, value_enum, default_value_t = ScanFormat::Text)]
    pub format: ScanFormat,
    #[command(flatten)]
    pub db: VulnDbPath,
    /// The name the SBOM gives the image (default: the path's file name).
    #[arg(long)]
    pub name: Option<String>,
    /// The version the SBOM gives the image.
    #[arg(
        long = "image-version",
        value_name = "VERSION",
        default_value = "unversioned"
    )]
    pub image_version: String,
    /// Write the output to FILE instead of standard output.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ScanFormat {
    Text,
    Json,
    Sarif,
    Cyclonedx,
    Spdx,
}

#[derive(Debug, Args)]
pub struct VulnDbPath {
    /// The vulnerability index (default: .kiln/vulndb.sqlite in the factory).
    #[arg(long, env = "KILN_VULNDB", value_name = "FILE")]
    pub vulndb: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum VulndbCommand {
    /// Load OSV records (JSON files, directories of them, zip exports) and Debian security
    /// tracker JSON. Incremental: unchanged records are kept, changed ones replaced; prints
    /// counts.
    Import {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        #[command(flatten)]
        db: VulnDbPath,
    },
    /// Records per ecosystem in the index.
    Status {
        #[command(flatten)]
        db: VulnDbPath,
    },
}

#[derive(Debug, Args)]
pub struct BuildArgs {
    #[command(flatten)]
    pub select: SelectArgs,
    /// Skip the test stage (booting the image and running its checks).
    #[arg(long)]
    pub no_test: bool,
    /// Stop at the first failed image (default: keep going with independent images).
    #[arg(long)]
    pub fail_fast: bool,
    /// Skip the publish stage (by default each promoted version goes to every cloud of a
    /// `publish` block, endpoints and credentials from the environment as `kiln publish` reads
    /// them).
    #[arg(long)]
    pub no_publish: bool,
    /// Build nothing here: enqueue the plan's images in the registry, each waiting for its
    /// parent's job, for `kiln worker` processes to lease.
    #[arg(long)]
    pub queue: bool,
    #[command(flatten)]
    pub cache: CacheDir,
    #[command(flatten)]
    pub who: Who,
    #[arg(long, value_enum, default_value_t = ValidateFormat::Text)]
    pub format: ValidateFormat,
}

#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// This worker's name in the queue (default: HOST-PID).
    #[arg(long)]
    pub name: Option<String>,
    /// How long a lease lasts without a heartbeat; a worker that dies loses its job after this.
    #[arg(long, value_name = "SECONDS", default_value_t = 120)]
    pub lease: u64,
    /// Exit once no job is queued or leased (default: keep polling).
    #[arg(long)]
    pub exit_when_idle: bool,
    /// Run this shell command for each job instead of the built-in build, with KILN_JOB_IMAGE,
    /// KILN_JOB_ID, KILN_JOB_BATCH and KILN_WORKER set: a wrapper that builds in a container
    /// or on another host. Exit 0 marks the job done; its last output line, if any, is recorded
    /// as the version.
    #[arg(long, value_name = "COMMAND")]
    pub exec: Option<String>,
    /// Skip the test stage of the built-in build.
    #[arg(long)]
    pub no_test: bool,
    #[command(flatten)]
    pub cache: CacheDir,
    #[command(flatten)]
    pub who: Who,
}

#[derive(Debug, Args)]
pub struct TestArgs {
    /// The disk image: .raw/.img, .qcow2, .vhd or .vmdk.
    pub artifact: std::path::PathBuf,
    /// Check files (YAML) to run; all of them in one boot.
    #[arg(long = "checks", value_name = "FILE", required = true, num_args = 1..)]
    pub checks: Vec<std::path::PathBuf>,
    /// Also run the file checks offline on this image tree.
    #[arg(long, value_name = "DIR")]
    pub tree: Option<std::path::PathBuf>,
    #[arg(long, value_enum, default_value_t = Firmware::Uefi)]
    pub firmware: Firmware,
    /// Guest memory in MiB.
    #[arg(long, default_value_t = 1024)]
    pub memory: u32,
    #[arg(long, default_value_t = 2)]
    pub cpus: u32,
    /// Seconds to wait for the guest agent (TCG boots take 20–40 s).
    #[arg(long, default_value_t = 180)]
    pub boot_timeout: u64,
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    pub format: ReportFormat,
    /// Also write the results as JUnit XML to this file.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<std::path::PathBuf>,
    /// Keep the guest's serial console log here.
    #[arg(long, value_name = "FILE")]
    pub serial_log: Option<std::path::PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Firmware {
    Uefi,
    Bios,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    Text,
    Json,
    Junit,
}

#[derive(Debug, Args)]
pub struct RegistryOut {
    #[arg(long, value_enum, default_value_t = ValidateFormat::Text)]
    pub format: ValidateFormat,
}

/// Who is acting, for the audit log. The local CLI trusts these (whoever can write the SQLite
/// file has full power anyway); the server maps tokens to names and roles.
#[derive(Debug, Args)]
pub struct Who {
    /// Name recorded in the audit log (default: $USER).
    #[arg(long, env = "KILN_ACTOR")]
    pub actor: Option<String>,
    /// Role to act with: admin, platform, security, ci.
    #[arg(long, env = "KILN_ROLE", default_value = "admin")]
    pub role: String,
}

#[derive(Debug, Subcommand)]
pub enum NotifyCommand {
    /// Delivered counts per webhook, and every pending or dead delivery with its last error.
    Status {
        #[command(flatten)]
        out: RegistryOut,
    },
    /// Deliver what is queued, retrying failures with backoff for up to --wait-secs.
    Deliver {
        #[arg(long, default_value_t = 30)]
        wait_secs: u64,
    },
    /// Queue dead deliveries again (after the receiver is fixed) and deliver them.
    Retry {
        /// Only this webhook's.
        target: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ChannelCommand {
    History {
        bucket: String,
        channel: String,
        #[command(flatten)]
        out: RegistryOut,
    },
    Rollback {
        bucket: String,
        channel: String,
        #[arg(long, default_value = "")]
        reason: String,
        #[command(flatten)]
        who: Who,
        #[command(flatten)]
        out: RegistryOut,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Verify the hash chain; names the first entry that was edited, deleted or reordered.
    Verify,
}

#[derive(Debug, Args)]
pub struct CacheDir {
    /// Stage cache directory.
    #[arg(
        long,
        env = "KILN_CACHE_DIR",
        value_name = "DIR",
        default_value = "/var/cache/kiln/stages"
    )]
    pub cache_dir: std::path::PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum CacheCommand {
    /// List cached stages, most recently used first.
    Ls {
        #[command(flatten)]
        cache: CacheDir,
    },
    /// Remove stages not used for a while, or the least recently used beyond a size.
    Prune {
        #[command(flatten)]
        cache: CacheDir,
        /// Remove stages unused for this long (e.g. 7d, 12h, 30m).
        #[arg(long, value_name = "AGE")]
        older_than: Option<String>,
        /// Keep the cache under this size, removing least recently used stages (e.g. 50GiB).
        #[arg(long, value_name = "SIZE")]
        max_size: Option<String>,
        /// Remove everything.
        #[arg(long, conflicts_with_all = ["older_than", "max_size"])]
        all: bool,
        /// Show what would be removed.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ValidateFormat {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub select: SelectArgs,
    #[arg(long, value_enum, default_value_t = PlanFormat::Text)]
    pub format: PlanFormat,
}

/// Which images: named (plus descendants), all, changed since a git revision, out of date, or
/// with upstream updates.
#[derive(Debug, Args)]
pub struct SelectArgs {
    /// Images to select (plus their descendants unless --no-cascade).
    #[arg(value_name = "IMAGE", conflicts_with_all = ["all", "since", "outdated", "upstream_updates"])]
    pub images: Vec<String>,
    /// Every image of the factory.
    #[arg(long, conflicts_with_all = ["since", "outdated", "upstream_updates"])]
    pub all: bool,
    /// Images whose directory changed since this git revision (or whose source changed in
    /// kiln.hcl), plus their descendants.
    #[arg(long, value_name = "REV", conflicts_with_all = ["outdated", "upstream_updates"])]
    pub since: Option<String>,
    /// Images whose newest version was built on a parent version their tracked channel no
    /// longer points at (plus their descendants), level by level. Reads the registry.
    #[arg(long, conflicts_with = "upstream_updates")]
    pub outdated: bool,
    /// Images whose versions on a channel have packages the archive (suite, -updates,
    /// -security) now has newer versions of, plus their descendants. Reads the registry and
    /// the package indices.
    #[arg(long)]
    pub upstream_updates: bool,
    /// Do not add the descendants of the selected images.
    #[arg(long)]
    pub no_cascade: bool,
    /// Split each wave into batches of at most N images, built one batch after another.
    #[arg(long, value_name = "N")]
    pub max_parallel: Option<NonZeroUsize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PlanFormat {
    /// Waves and reasons, for people.
    Text,
    /// `{"waves":[[{"image":…,"reason":…}],…]}`
    Json,
    /// `$GITHUB_OUTPUT` lines: batches=N, matrix=…, batch_K=…
    GithubMatrix,
    /// A GitLab child-pipeline YAML, one stage per batch.
    GitlabPipeline,
}
