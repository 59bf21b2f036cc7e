//! The secret scan on a planted tree: every planted item is found with the right rule, the
//! secrets never appear in reports, links are not followed, pseudo filesystems are skipped, and
//! a key straddling a read-chunk boundary of a huge file is still found.

use std::collections::BTreeSet;
use std::path::Path;

use kiln_scan::secrets::{Category, Scanner};

fn put(root: &Path, rel: &str, body: &[u8]) {
    let p = root.join(rel.trim_start_matches('/'));
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, body).unwrap();
}

/// Test values assembled at run time, so this file holds no scannable literal itself.
fn fake(prefix: &str, alphabet: &str, n: usize) -> String {
    let a: Vec<char> = alphabet.chars().collect();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let body: String = (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            a[(x % a.len() as u64) as usize]
        })
        .collect();
    format!("{prefix}{body}")
}

const UPPER_DIGITS: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const B64: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const ALNUM: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

#[test]
fn every_planted_item_is_found_with_its_rule() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path();
    let pem_body = fake("", B64, 64);
    let begin = "-----BEGIN";
    put(
        root,
        "/home/ops/id_rsa",
        format!(
            "{begin} RSA PRIVATE KEY-----\n{pem_body}\n{pem_body}\n-----END RSA PRIVATE KEY-----\n"
        )
        .as_bytes(),
    );
    put(
        root,
        "/opt/app/deploy_key",
        format!(
            "{begin} OPENSSH PRIVATE KEY-----\n{pem_body}\n-----END OPENSSH PRIVATE KEY-----\n"
        )
        .as_bytes(),
    );
    put(
        root,
        "/srv/key.pem",
        format!(
            "{begin} ENCRYPTED PRIVATE KEY-----\n{pem_body}\n-----END ENCRYPTED PRIVATE KEY-----\n"
        )
        .as_bytes(),
    );
    put(root, "/home/ops/putty.ppk", format!("PuTTY-User-Key-File-3: ssh-ed25519\nEncryption: none\nComment: ops\nPublic-Lines: 2\n{pem_body}\n{pem_body}\nPrivate-Lines: 1\n{pem_body}\nPrivate-MAC: 00\n").as_bytes());
    let key_id = fake("AKIA", UPPER_DIGITS, 16);
    let secret = fake("", B64, 40);
    put(
        root,
        "/root/.aws/credentials",
        format!("[default]\naws_access_key_id = {key_id}\naws_secret_access_key = {secret}\n")
            .as_bytes(),
    );
    put(root, "/etc/app/storage.conf", format!("DefaultEndpointsProtocol=https;AccountName=acme;AccountKey={}==;EndpointSuffix=core.windows.net\n", fake("", B64, 86)).as_bytes());
    put(root, "/etc/app/gcp.json", format!("{{\n  \"type\": \"service_account\",\n  \"project_id\": \"acme\",\n  \"private_key_id\": \"abc\",\n  \"private_key\": \"{begin} PRIVATE KEY-----\\n{pem_body}\\n-----END PRIVATE KEY-----\\n\",\n  \"client_email\": \"x@acme.iam.gserviceaccount.com\"\n}}\n").as_bytes());
    put(
        root,
        "/etc/app/maps.js",
        format!("const key = \"{}\";\n", fake("AIza", ALNUM, 35)).as_bytes(),
    );
    put(
        root,
        "/home/ops/.config/gh/hosts.yml",
        format!("github.com:\n  oauth_token: {}\n", fake("ghp_", ALNUM, 36)).as_bytes(),
    );
    put(
        root,
        "/home/ops/.gitlab",
        fake("token=glpat-", ALNUM, 20).as_bytes(),
    );
    put(
        root,
        "/etc/app/slack.conf",
        fake("webhook_token: xoxb-", ALNUM, 30).as_bytes(),
    );
    put(
        root,
        "/etc/app/stripe.conf",
        fake("STRIPE=sk_live_", ALNUM, 30).as_bytes(),
    );
    put(
        root,
        "/home/ops/.npmrc",
        fake("//registry.npmjs.org/:_authToken=npm_", ALNUM, 36).as_bytes(),
    );
    put(
        root,
        "/home/ops/.netrc",
        b"machine ftp.example.invalid login ops password hunter2hunter2\n",
    );
    put(
        root,
        "/home/ops/.git-credentials",
        b"https://ops:s3cr3tpassw0rd@git.example.invalid\n",
    );
    put(root, "/home/ops/.docker/config.json", b"{\n  \"auths\": {\n    \"registry.example.invalid\": {\n      \"auth\": \"b3BzOnMzY3IzdHBhc3N3MHJk\"\n    }\n  }\n}\n");
    put(
        root,
        "/home/ops/.pgpass",
        b"# host:port:db:user:password\ndb.example.invalid:5432:app:ops:pgs3cr3tpassword\n",
    );
    put(
        root,
        "/srv/app/.env",
        b"DEBUG=1\nDATABASE_PASSWORD=correct-horse-battery-staple\n",
    );
    put(
        root,
        "/root/.bash_history",
        b"apt-get install foo\nexport TOKEN=abc\n",
    );
    put(
        root,
        "/etc/ssh/ssh_host_ed25519_key",
        format!(
            "{begin} OPENSSH PRIVATE KEY-----\n{pem_body}\n-----END OPENSSH PRIVATE KEY-----\n"
        )
        .as_bytes(),
    );
    put(
        root,
        "/etc/machine-id",
        b"0123456789abcdef0123456789abcdef\n",
    );
    put(
        root,
        "/root/.ssh/authorized_keys",
        b"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample ops@laptop\n",
    );
    // A key id inside a binary file.
    let mut bin = vec![0x7f, b'E', b'L', b'F', 2, 1, 1, 0];
    bin.extend_from_slice(fake("AKIA", UPPER_DIGITS, 16).as_bytes());
    bin.extend_from_slice(&[0, 0, 0xff]);
    put(root, "/usr/local/bin/tool", &bin);
    // A huge file with a key straddling the 4 MiB read boundary.
    let mut huge = vec![b'x'; (4 << 20) - 8 - (8 << 10) + 3];
    huge.push(b'\n');
    huge.extend_from_slice(format!("token: {}\n", fake("ghp_", ALNUM, 36)).as_bytes());
    huge.extend(std::iter::repeat_n(b'y', 6 << 20));
    put(root, "/var/lib/app/huge.log", &huge);

    // Not findings: documented examples, placeholders, empty machine-id, public keys, a key id
    // inside a longer token, an unsealed-looking but empty history.
    put(
        root,
        "/usr/share/doc/aws/README",
        b"aws_access_key_id = AKIAIOSFODNN7EXAMPLE\n",
    );
    put(
        root,
        "/srv/other/.env",
        b"API_TOKEN=${API_TOKEN}\nPASSWORD=\nSECRET=changeme\n",
    );
    put(root, "/var/lib/dbus/machine-id", b"");
    put(
        root,
        "/etc/ssh/ssh_host_ed25519_key.pub",
        b"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample root@build\n",
    );
    put(
        root,
        "/usr/share/words",
        fake("XAKIA", UPPER_DIGITS, 16).as_bytes(),
    );
    put(root, "/home/ops/.zsh_history", b"\n");
    put(
        root,
        "/usr/bin/ssh-keygen",
        format!("\0{begin} OPENSSH PRIVATE KEY-----\0\0").as_bytes(),
    );
    // Links are reported, never followed; pseudo filesystems are skipped.
    let outside = tempfile::tempdir().unwrap();
    put(
        outside.path(),
        "/stolen",
        format!("aws_secret_access_key = {}\n", fake("", B64, 40)).as_bytes(),
    );
    std::os::unix::fs::symlink(outside.path().join("stolen"), root.join("etc/link-out")).unwrap();
    put(
        root,
        "/proc/1/environ",
        format!("AWS_SECRET_ACCESS_KEY={}\n", fake("", B64, 40)).as_bytes(),
    );

    let report = Scanner::new().scan_tree(root);
    let got: BTreeSet<(String, &str)> = report
        .findings
        .iter()
        .map(|f| (f.path.clone(), f.rule))
        .collect();
    let want: BTreeSet<(String, &str)> = [
        ("/home/ops/id_rsa", "private-key"),
        ("/opt/app/deploy_key", "private-key"),
        ("/srv/key.pem", "private-key"),
        ("/home/ops/putty.ppk", "putty-private-key"),
        ("/root/.aws/credentials", "aws-access-key-id"),
        ("/root/.aws/credentials", "aws-secret-access-key"),
        ("/etc/app/storage.conf", "azure-storage-account-key"),
        ("/etc/app/gcp.json", "gcp-service-account-key"),
        ("/etc/app/maps.js", "gcp-api-key"),
        ("/home/ops/.config/gh/hosts.yml", "github-token"),
        ("/home/ops/.gitlab", "gitlab-token"),
        ("/etc/app/slack.conf", "slack-token"),
        ("/etc/app/stripe.conf", "stripe-secret-key"),
        ("/home/ops/.npmrc", "npm-token"),
        ("/home/ops/.netrc", "netrc-credentials"),
        ("/home/ops/.git-credentials", "git-credentials"),
        ("/home/ops/.docker/config.json", "docker-config-auth"),
        ("/home/ops/.pgpass", "pgpass"),
        ("/srv/app/.env", "env-file-secret"),
        ("/root/.bash_history", "shell-history"),
        ("/etc/ssh/ssh_host_ed25519_key", "ssh-host-key"),
        ("/etc/machine-id", "machine-id"),
        ("/root/.ssh/authorized_keys", "root-authorized-keys"),
        ("/usr/local/bin/tool", "aws-access-key-id"),
        ("/var/lib/app/huge.log", "github-token"),
    ]
    .into_iter()
    .map(|(p, r)| (p.to_string(), r))
    .collect();
    let missing: Vec<_> = want.difference(&got).collect();
    let extra: Vec<_> = got.difference(&want).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing {missing:?}\nextra {extra:?}"
    );
    assert_eq!(report.symlinks, 1);

    // Nothing secret is printed: the JSON report holds none of the planted values.
    let json = serde_json::to_string(&report).unwrap();
    for s in [
        secret.as_str(),
        key_id.as_str(),
        &pem_body,
        "hunter2hunter2",
        "s3cr3tpassw0rd",
        "pgs3cr3tpassword",
        "correct-horse-battery-staple",
    ] {
        assert!(!json.contains(s), "{s} leaked into the report");
    }
    let env = report
        .findings
        .iter()
        .find(|f| f.rule == "env-file-secret")
        .unwrap();
    assert_eq!(
        (env.line, env.excerpt.as_str()),
        (Some(2), "DATABASE_PASSWORD=corr…[24 more redacted]")
    );
    let huge = report
        .findings
        .iter()
        .find(|f| f.path == "/var/lib/app/huge.log")
        .unwrap();
    assert_eq!(huge.offset, Some((4 << 20) - 8 - (8 << 10) + 4 + 7));
    assert!(
        report
            .findings
            .iter()
            .filter(|f| f.rule == "machine-id")
            .all(|f| f.category == Category::Hygiene)
    );
}
