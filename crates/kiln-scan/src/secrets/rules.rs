//! What counts as a secret or a leftover. Content rules each have literal anchors (found in one
//! pass over the bytes by a single multi-pattern searcher) and a small regex that confirms a hit
//! at the anchor; path rules look at where a file is and what little it must contain.

use regex::bytes::Regex;
use serde::Serialize;

/// Whether a finding is a credential (blocks `forbid_secrets`) or a host-specific leftover.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Category {
    Secret,
    Hygiene,
}

/// A content rule: anchors, and a regex that must match starting at the anchor.
#[derive(Debug)]
pub struct ContentRule {
    pub id: &'static str,
    pub description: &'static str,
    pub anchors: &'static [&'static str],
    pub confirm: Regex,
    /// The regex group holding the secret itself (redacted in reports); 0 = the whole match.
    pub secret_group: usize,
    /// The match must not continue a word on either side (`AKIA…` inside a longer token is not a
    /// key id).
    pub bounded: bool,
}

fn re(s: &str) -> Regex {
    // (?-u): bytes, ASCII classes; fast DFAs stay available.
    Regex::new(&format!("(?-u)^(?:{s})")).unwrap_or_else(|e| panic!("rule regex {s}: {e}"))
}

/// Values published in vendors' documentation as examples: never real credentials.
pub const DOCUMENTED_EXAMPLES: [&str; 2] = [
    "AKIAIOSFODNN7EXAMPLE",
    "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
];

pub fn content_rules() -> Vec<ContentRule> {
    let rule = |id, description, anchors, confirm: &str, secret_group, bounded| ContentRule {
        id,
        description,
        anchors,
        confirm: re(confirm),
        secret_group,
        bounded,
    };
    vec![
        rule(
            "private-key",
            "a PEM or OpenSSH private key",
            &["-----BEGIN "],
            r"-----BEGIN ((?:RSA |DSA |EC |OPENSSH |ENCRYPTED |)PRIVATE KEY)-----(?:\r?\n|\\n)(?:[A-Za-z-]+: [^\n]*\r?\n)*(?:\r?\n)?([A-Za-z0-9+/=]{40,})",
            2,
            false,
        ),
        rule(
            "putty-private-key",
            "a PuTTY private key file",
            &["PuTTY-User-Key-File-"],
            r"PuTTY-User-Key-File-[23]: [^\r\n]+\r?\nEncryption: [^\r\n]+\r?\n(?:[^\r\n]*\r?\n){0,4}?Private-Lines: \d+\r?\n([A-Za-z0-9+/=]{16,})",
            1,
            false,
        ),
        rule(
            "aws-access-key-id",
            "an AWS access key id",
            &["AKIA", "ASIA"],
            r"(?:AKIA|ASIA)[A-Z0-9]{16}",
            0,
            true,
        ),
        rule(
            "aws-secret-access-key",
            "an AWS secret access key assignment",
            &[
                "aws_secret_access_key",
                "AWS_SECRET_ACCESS_KEY",
                "SecretAccessKey",
            ],
            r#"(?:aws_secret_access_key|AWS_SECRET_ACCESS_KEY|SecretAccessKey)["']?\s*[:=]\s*["']?([A-Za-z0-9/+]{40})(?:[^A-Za-z0-9/+]|$)"#,
            1,
            false,
        ),
        rule(
            "azure-storage-account-key",
            "an Azure storage account key",
            &["AccountKey="],
            r"AccountKey=([A-Za-z0-9+/]{86}==)",
            1,
            false,
        ),
        rule(
            "gcp-service-account-key",
            "a GCP service account key file",
            &[r#""service_account""#],
            r#""service_account",?\s*(?:"[a-z_]+":\s*"[^"]*",?\s*){0,3}?"private_key":\s*"(-----BEGIN PRIVATE KEY-----[^"]{40,})""#,
            1,
            false,
        ),
        rule(
            "gcp-api-key",
            "a Google API key",
            &["AIza"],
            r"AIza[0-9A-Za-z_-]{35}",
            0,
            true,
        ),
        rule(
            "github-token",
            "a GitHub token",
            &["ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"],
            r"gh[pousr]_[A-Za-z0-9]{36}|github_pat_[A-Za-z0-9_]{82}",
            0,
            true,
        ),
        rule(
            "gitlab-token",
            "a GitLab personal access token",
            &["glpat-"],
            r"glpat-[A-Za-z0-9_-]{20}",
            0,
            true,
        ),
        rule(
            "slack-token",
            "a Slack token",
            &["xoxb-", "xoxp-", "xoxa-", "xoxr-", "xoxs-"],
            r"xox[bpars]-[0-9A-Za-z-]{10,}",
            0,
            true,
        ),
        rule(
            "stripe-secret-key",
            "a Stripe live secret key",
            &["sk_live_"],
            r"sk_live_[0-9A-Za-z]{24,}",
            0,
            true,
        ),
        rule(
            "npm-token",
            "an npm access token",
            &["npm_"],
            r"npm_[A-Za-z0-9]{36}",
            0,
            true,
        ),
    ]
}

/// Rules decided by a file's place in the image (and a look at its contents).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathRule {
    Netrc,
    GitCredentials,
    DockerConfig,
    Pgpass,
    EnvFile,
    ShellHistory,
    SshHostKey,
    MachineId,
    RootAuthorizedKeys,
}

impl PathRule {
    pub fn id(self) -> &'static str {
        match self {
            PathRule::Netrc => "netrc-credentials",
            PathRule::GitCredentials => "git-credentials",
            PathRule::DockerConfig => "docker-config-auth",
            PathRule::Pgpass => "pgpass",
            PathRule::EnvFile => "env-file-secret",
            PathRule::ShellHistory => "shell-history",
            PathRule::SshHostKey => "ssh-host-key",
            PathRule::MachineId => "machine-id",
            PathRule::RootAuthorizedKeys => "root-authorized-keys",
        }
    }

    pub fn description(self) -> &'static str {
        match self {
            PathRule::Netrc => "a .netrc with a password",
            PathRule::GitCredentials => "stored git credentials",
            PathRule::DockerConfig => "docker registry credentials (config.json auths)",
            PathRule::Pgpass => "a PostgreSQL password file",
            PathRule::EnvFile => "a secret in a .env file",
            PathRule::ShellHistory => "a shell history (commands typed at build time)",
            PathRule::SshHostKey => "an SSH host private key (every instance would share it)",
            PathRule::MachineId => "a machine-id (every instance would share it)",
            PathRule::RootAuthorizedKeys => "authorized_keys for root",
        }
    }

    pub fn category(self) -> Category {
        match self {
            PathRule::ShellHistory | PathRule::MachineId | PathRule::RootAuthorizedKeys => {
                Category::Hygiene
            }
            _ => Category::Secret,
        }
    }

    /// The rule for a file at `path` (absolute, inside the image), if any.
    pub fn for_path(path: &str) -> Option<PathRule> {
        let name = path.rsplit('/').next().unwrap_or(path);
        Some(match name {
            ".netrc" | "_netrc" => PathRule::Netrc,
            ".git-credentials" => PathRule::GitCredentials,
            ".pgpass" => PathRule::Pgpass,
            ".bash_history" | ".zsh_history" | ".sh_history" | ".ash_history" | ".history"
            | ".python_history" | ".mysql_history" | ".psql_history" | ".sqlite_history" => {
                PathRule::ShellHistory
            }
            "config.json" if path.ends_with("/.docker/config.json") => PathRule::DockerConfig,
            "machine-id" if path == "/etc/machine-id" || path == "/var/lib/dbus/machine-id" => {
                PathRule::MachineId
            }
            "authorized_keys" | "authorized_keys2" if path.starts_with("/root/.ssh/") => {
                PathRule::RootAuthorizedKeys
            }
            n if path.starts_with("/etc/ssh/")
                && n.starts_with("ssh_host_")
                && n.ends_with("_key") =>
            {
                PathRule::SshHostKey
            }
            n if n == ".env" || n.starts_with(".env.") || n.ends_with(".env") => PathRule::EnvFile,
            _ => return None,
        })
    }

    /// Whether the contents make it a finding; with the line number and redacted excerpt.
    pub fn judge(self, bytes: &[u8]) -> Option<(Option<usize>, String)> {
        let text = String::from_utf8_lossy(bytes);
        let lines = || text.lines().enumerate().map(|(i, l)| (i + 1, l));
        let meaningful = |l: &str| !l.trim().is_empty() && !l.trim_start().starts_with('#');
        match self {
            PathRule::Netrc => lines()
                .find(|(_, l)| l.split_whitespace().any(|w| w == "password"))
                .map(|(n, l)| (Some(n), redact_after_word(l, "password"))),
            PathRule::GitCredentials => lines()
                .find(|(_, l)| l.contains("://") && l.contains('@'))
                .map(|(n, l)| (Some(n), redact_userinfo(l))),
            PathRule::DockerConfig => lines()
                .find(|(_, l)| {
                    l.contains("\"auth\"")
                        && !l.contains("\"auth\": \"\"")
                        && !l.contains("\"auth\":\"\"")
                })
                .map(|(n, l)| (Some(n), redact_json_value(l))),
            PathRule::Pgpass => lines()
                .find(|(_, l)| meaningful(l) && l.split(':').count() >= 5)
                .map(|(n, l)| {
                    let mut f: Vec<&str> = l.splitn(5, ':').collect();
                    let r = redact(f[4]);
                    f[4] = &r;
                    (Some(n), f.join(":"))
                }),
            PathRule::EnvFile => lines().find_map(|(n, l)| env_secret(l).map(|e| (Some(n), e))),
            PathRule::ShellHistory | PathRule::RootAuthorizedKeys => {
                let count = lines().filter(|(_, l)| meaningful(l)).count();
                (count > 0).then(|| (None, format!("{count} line(s)")))
            }
            PathRule::SshHostKey => {
                (!bytes.is_empty()).then(|| (None, format!("{} bytes", bytes.len())))
            }
            PathRule::MachineId => {
                let t = text.trim();
                (!t.is_empty() && t != "uninitialized").then(|| (None, redact(t)))
            }
        }
    }
}

/// `KEY=value` where KEY names a secret and value is not empty or a placeholder.
fn env_secret(line: &str) -> Option<String> {
    let l = line.trim().strip_prefix("export ").unwrap_or(line.trim());
    let (k, v) = l.split_once('=')?;
    let key = k.trim().to_ascii_uppercase();
    let secretish = [
        "SECRET",
        "PASSWORD",
        "PASSWD",
        "TOKEN",
        "API_KEY",
        "APIKEY",
        "PRIVATE_KEY",
        "ACCESS_KEY",
    ]
    .iter()
    .any(|w| key.contains(w));
    let v = v.trim().trim_matches(['"', '\'']);
    let placeholder = v.is_empty()
        || v.starts_with("${")
        || v.starts_with('<')
        || [
            "changeme",
            "change-me",
            "xxx",
            "none",
            "null",
            "example",
            "todo",
        ]
        .contains(&v.to_ascii_lowercase().as_str());
    (secretish && !placeholder && !key.starts_with('#'))
        .then(|| format!("{}={}", k.trim(), redact(v)))
}

/// Keeps the first four characters and says how long the rest was.
pub fn redact(s: &str) -> String {
    let keep: String = s.chars().take(4).collect();
    let n = s.chars().count();
    if n <= 4 {
        "****".to_string()
    } else {
        format!("{keep}…[{} more redacted]", n - 4)
    }
}

fn redact_after_word(line: &str, word: &str) -> String {
    let mut out = Vec::new();
    let mut next = false;
    for w in line.split_whitespace() {
        out.push(if next { redact(w) } else { w.to_string() });
        next = w == word;
    }
    out.join(" ")
}

fn redact_userinfo(line: &str) -> String {
    match (line.find("://"), line.rfind('@')) {
        (Some(s), Some(at)) if at > s + 3 => {
            let user_pass = &line[s + 3..at];
            let user = user_pass.split(':').next().unwrap_or("");
            format!(
                "{}{user}:{}{}",
                &line[..s + 3],
                redact(user_pass.split_once(':').map_or("", |x| x.1)),
                &line[at..]
            )
        }
        _ => redact(line),
    }
}

fn redact_json_value(line: &str) -> String {
    match line.split_once(':') {
        Some((k, v)) => format!(
            "{k}: \"{}\"",
            redact(v.trim().trim_matches([',', '"', ' ']))
        ),
        None => redact(line),
    }
}
