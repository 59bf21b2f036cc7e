//! The RHEL-family and Alpine readers on databases their own tools wrote or their format
//! defines: an rpmdb.sqlite made by `rpm --root … -i` of noarch packages built here with
//! `rpmbuild`, checked against `rpm -qa`; an apk `installed` file as apk-tools writes it. Both
//! are then matched against OSV records of their ecosystems.

use std::path::Path;
use std::process::Command;

use kiln_scan::sbom::{Kind, purl};
use kiln_scan::vuln::{Verdict, VulnDb, match_sbom};
use kiln_scan::{Package, Sbom};
use serde_json::json;

const DEMO_SPEC: &str = r#"Name:           kiln-demo
Epoch:          3
Version:        1.2.3~rc1
Release:        4.el9_2
Summary:        Kiln rpmdb fixture
License:        MIT AND (Apache-2.0 OR BSD-3-Clause)
Vendor:         Kiln Test Vendor
BuildArch:      noarch

%description
A noarch package whose header carries an epoch, a tilde version and a vendor.

%package libs
Summary:        Subpackage: another name, the same source rpm
License:        LGPL-2.1-or-later

%description libs
Subpackage.

%install
mkdir -p %{buildroot}/usr/share/kiln-demo
echo hello > %{buildroot}/usr/share/kiln-demo/hello.txt
echo libs > %{buildroot}/usr/share/kiln-demo/libs.txt

%files
/usr/share/kiln-demo/hello.txt

%files libs
/usr/share/kiln-demo/libs.txt
"#;

const PLAIN_SPEC: &str = r#"Name:           kiln-plain
Version:        0.9
Release:        1
Summary:        No epoch, no vendor
License:        GPL-2.0-only
BuildArch:      noarch

%description
No epoch, no vendor.

%install
mkdir -p %{buildroot}/usr/share/kiln-plain
echo x > %{buildroot}/usr/share/kiln-plain/x

%files
/usr/share/kiln-plain/x
"#;

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Builds both specs (once per `work`) and installs them into a fresh root with its database
/// at `dbpath`; returns the root.
fn rpm_root(work: &Path, dbpath: &str) -> std::path::PathBuf {
    let top = work.join("rpmbuild");
    if !top.exists() {
        std::fs::create_dir_all(top.join("SPECS")).unwrap();
        for (name, spec) in [("kiln-demo", DEMO_SPEC), ("kiln-plain", PLAIN_SPEC)] {
            let path = top.join("SPECS").join(format!("{name}.spec"));
            std::fs::write(&path, spec).unwrap();
            run(Command::new("rpmbuild")
                .arg("--define")
                .arg(format!("_topdir {}", top.display()))
                .arg("--quiet")
                .arg("-bb")
                .arg(&path));
        }
    }
    let root = work.join(format!("root{}", dbpath.replace('/', "-")));
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::write(
        root.join("etc/os-release"),
        "NAME=\"Red Hat Enterprise Linux\"\nID=\"rhel\"\nID_LIKE=\"fedora\"\nVERSION_ID=\"9.4\"\nPLATFORM_ID=\"platform:el9\"\n",
    )
    .unwrap();
    let rpm = |args: &[&str]| {
        let mut c = Command::new("rpm");
        c.arg("--root")
            .arg(&root)
            .arg("--dbpath")
            .arg(dbpath)
            .arg("--define")
            .arg("_db_backend sqlite")
            .args(args);
        c
    };
    run(&mut rpm(&["--initdb"]));
    let rpms: Vec<_> = std::fs::read_dir(top.join("RPMS/noarch"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(rpms.len(), 3, "{rpms:?}");
    run(rpm(&["-i", "--nodeps", "--noscripts"]).args(&rpms));
    root
}

/// What rpm itself says is installed: name, epoch, version-release, arch, license, vendor.
fn rpm_qa(root: &Path, dbpath: &str) -> Vec<[String; 6]> {
    let out = run(Command::new("rpm")
        .arg("--root")
        .arg(root)
        .arg("--dbpath")
        .arg(dbpath)
        .arg("-qa")
        .arg("--qf")
        .arg("%{NAME}\\t%|EPOCH?{%{EPOCH}}:{}|\\t%{VERSION}-%{RELEASE}\\t%{ARCH}\\t%{LICENSE}\\t%|VENDOR?{%{VENDOR}}:{}|\\n"));
    let mut rows: Vec<[String; 6]> = out
        .lines()
        .map(|l| {
            let f: Vec<String> = l.split('\t').map(str::to_string).collect();
            f.try_into().unwrap()
        })
        .collect();
    rows.sort();
    rows
}

fn ours(packages: &[Package]) -> Vec<[String; 6]> {
    let mut rows: Vec<[String; 6]> = packages
        .iter()
        .map(|p| {
            [
                p.name.clone(),
                p.epoch.map(|e| e.to_string()).unwrap_or_default(),
                p.version.clone(),
                p.arch.clone(),
                p.license.clone().unwrap_or_default(),
                p.supplier.clone().unwrap_or_default(),
            ]
        })
        .collect();
    rows.sort();
    rows
}

/// A CVSS v3.1 vector scoring 9.8.
const CRITICAL: &str = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H";

/// Imports an OSV record saying `name` in `ecosystem` is fixed in `fixed`; `upstream` names
/// the CVE it is about (else the record's id is the vulnerability).
fn import_fix(
    db: &mut VulnDb,
    dir: &Path,
    id: &str,
    upstream: &[&str],
    ecosystem: &str,
    name: &str,
    fixed: &str,
) {
    let events = [json!({"introduced": "0"}), json!({"fixed": fixed})];
    let record = json!({
        "id": id,
        "modified": "2025-01-01T00:00:00Z",
        "upstream": upstream,
        "affected": [{
            "package": {"ecosystem": ecosystem, "name": name},
            "ranges": [{"type": "ECOSYSTEM", "events": events}],
        }],
        "severity": [{"type": "CVSS_V3", "score": CRITICAL}],
    });
    let path = dir.join(format!("{id}.json"));
    std::fs::write(&path, record.to_string()).unwrap();
    db.import(&path, 0).unwrap();
}

#[test]
fn rpmdb_written_by_rpm_reads_as_rpm_lists_it() {
    let work = tempfile::tempdir().unwrap();
    for dbpath in ["/var/lib/rpm", "/usr/lib/sysimage/rpm"] {
        let root = rpm_root(work.path(), dbpath);
        let sbom = Sbom::of_tree(&root).unwrap();
        assert_eq!(sbom.database, format!("{}/rpmdb.sqlite", &dbpath[1..]));
        let want = rpm_qa(&root, dbpath);
        assert_eq!(want.len(), 3, "rpm lists the three packages: {want:?}");
        assert_eq!(ours(&sbom.packages), want, "{dbpath}");

        let by_name = |n: &str| sbom.packages.iter().find(|p| p.name == n).unwrap();
        let libs = by_name("kiln-demo-libs");
        assert_eq!(libs.kind, Kind::Rpm);
        assert_eq!(
            (libs.source.as_str(), libs.source_version.as_str()),
            ("kiln-demo", "1.2.3~rc1-4.el9_2"),
            "a subpackage names the source rpm it was built from"
        );
        assert_eq!(libs.full_version(), "3:1.2.3~rc1-4.el9_2");
        assert_eq!(
            purl::of(libs, &sbom.os),
            "pkg:rpm/rhel/kiln-demo-libs@1.2.3~rc1-4.el9_2?arch=noarch&distro=rhel-9.4&epoch=3"
        );
        let plain = by_name("kiln-plain");
        assert_eq!((plain.epoch, plain.supplier.as_deref()), (None, None));
        assert_eq!(
            purl::of(plain, &sbom.os),
            "pkg:rpm/rhel/kiln-plain@0.9-1?arch=noarch&distro=rhel-9.4"
        );
    }
}

#[test]
fn rhel_packages_match_every_red_hat_stream_of_their_release() {
    let work = tempfile::tempdir().unwrap();
    let root = rpm_root(work.path(), "/var/lib/rpm");
    let sbom = Sbom::of_tree(&root).unwrap();
    let mut db = VulnDb::open(&work.path().join("vulndb.sqlite")).unwrap();
    // Fixed in a newer release on baseos: the tilde version is older than the final one.
    import_fix(
        &mut db,
        work.path(),
        "RHSA-1",
        &["CVE-RHSA-1"],
        "Red Hat:enterprise_linux:9::baseos",
        "kiln-demo",
        "3:1.2.3-1.el9",
    );
    // Already fixed (appstream stream, explicit zero epoch as Red Hat writes it).
    import_fix(
        &mut db,
        work.path(),
        "RHSA-2",
        &["CVE-RHSA-2"],
        "Red Hat:enterprise_linux:9::appstream",
        "kiln-plain",
        "0:0.9-1",
    );
    // The same package on RHEL 8 and on an EUS stream: not this image's release.
    import_fix(
        &mut db,
        work.path(),
        "RHSA-3",
        &["CVE-RHSA-3"],
        "Red Hat:enterprise_linux:8::baseos",
        "kiln-plain",
        "0:1.0-1",
    );
    import_fix(
        &mut db,
        work.path(),
        "RHSA-4",
        &["CVE-RHSA-4"],
        "Red Hat:rhel_eus:9.2::baseos",
        "kiln-plain",
        "0:1.0-1",
    );
    let m = match_sbom(&sbom, &db).unwrap();
    assert_eq!(
        m.ecosystems,
        [
            "Red Hat:enterprise_linux:9::appstream",
            "Red Hat:enterprise_linux:9::baseos"
        ]
    );
    let got: Vec<(&str, &str, Verdict, Option<&str>)> = m
        .findings
        .iter()
        .map(|f| {
            (
                f.package.as_str(),
                f.vulnerability.as_str(),
                f.verdict,
                f.fixed_version.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (
                "kiln-demo",
                "CVE-RHSA-1",
                Verdict::Vulnerable,
                Some("3:1.2.3-1.el9")
            ),
            ("kiln-plain", "CVE-RHSA-2", Verdict::Fixed, Some("0:0.9-1")),
        ]
    );
}

/// As apk-tools writes `lib/apk/db/installed`: package fields, then the file database
/// (`F` directory, `M` its mode, `R` file, `Z` checksum), records split by blank lines.
const APK_INSTALLED: &str = "C:Q1nD5Hh2u0H4m1cZ1o8M9w3nK5sYQ=
P:musl
V:1.2.4_git20230717-r4
A:x86_64
S:407278
I:662528
T:the musl c library (libc) implementation
U:https://musl.libc.org/
L:MIT
o:musl
m:Natanael Copa <ncopa@alpinelinux.org>
t:1700000000
c:0123456789abcdef0123456789abcdef01234567
F:lib
R:ld-musl-x86_64.so.1
a:0:0:755
Z:Q1tC0fE1ZsU6QJ5k1+OmgwY1a2b3c=
R:libc.musl-x86_64.so.1

C:Q1abcdefabcdefabcdefabcdefabcde=
P:libcrypto3
V:3.1.4-r5
A:x86_64
S:1771543
I:4444160
T:Crypto library from openssl
U:https://www.openssl.org/
L:Apache-2.0
o:openssl
m:Ariadne Conill <ariadne@dereferenced.org>
D:so:libc.musl-x86_64.so.1
p:so:libcrypto.so.3=3
F:usr/lib
R:libcrypto.so.3

C:Q1zyxwvzyxwvzyxwvzyxwvzyxwvzyx=
P:ca-certificates-bundle
V:20240226-r0
A:x86_64
L:MPL-2.0 AND MIT
o:ca-certificates
m:Natanael Copa <ncopa@alpinelinux.org>
r:libressl2.7-libcrypto

";

#[test]
fn apk_installed_parsed_and_matched_by_origin() {
    let work = tempfile::tempdir().unwrap();
    let root = work.path().join("alpine");
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::create_dir_all(root.join("lib/apk/db")).unwrap();
    std::fs::write(
        root.join("etc/os-release"),
        "NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.19.1\nPRETTY_NAME=\"Alpine Linux v3.19\"\n",
    )
    .unwrap();
    std::fs::write(root.join("lib/apk/db/installed"), APK_INSTALLED).unwrap();
    let sbom = Sbom::of_tree(&root).unwrap();
    assert_eq!(sbom.database, "lib/apk/db/installed");
    let rows: Vec<(&str, &str, &str, &str, Option<&str>)> = sbom
        .packages
        .iter()
        .map(|p| {
            (
                p.name.as_str(),
                p.version.as_str(),
                p.arch.as_str(),
                p.source.as_str(),
                p.license.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            (
                "ca-certificates-bundle",
                "20240226-r0",
                "x86_64",
                "ca-certificates",
                Some("MPL-2.0 AND MIT")
            ),
            (
                "libcrypto3",
                "3.1.4-r5",
                "x86_64",
                "openssl",
                Some("Apache-2.0")
            ),
            (
                "musl",
                "1.2.4_git20230717-r4",
                "x86_64",
                "musl",
                Some("MIT")
            ),
        ]
    );
    assert_eq!(
        purl::of(&sbom.packages[1], &sbom.os),
        "pkg:apk/alpine/libcrypto3@3.1.4-r5?arch=x86_64&distro=alpine-3.19.1"
    );

    let mut db = VulnDb::open(&work.path().join("vulndb.sqlite")).unwrap();
    // OSV's Alpine names are origins (source packages): openssl reaches libcrypto3.
    import_fix(
        &mut db,
        work.path(),
        "CVE-2024-0727",
        &[],
        "Alpine:v3.19",
        "openssl",
        "3.1.4-r6",
    );
    // _git sorts after the plain version in apk: 1.2.4_git… is newer than 1.2.4-r3.
    import_fix(
        &mut db,
        work.path(),
        "CVE-2025-1",
        &[],
        "Alpine:v3.19",
        "musl",
        "1.2.4-r3",
    );
    // Another branch's record does not apply.
    import_fix(
        &mut db,
        work.path(),
        "CVE-2025-2",
        &[],
        "Alpine:v3.18",
        "musl",
        "1.2.5-r0",
    );
    let m = match_sbom(&sbom, &db).unwrap();
    assert_eq!(m.ecosystems, ["Alpine:v3.19"]);
    let got: Vec<(&str, &str, Verdict, Vec<String>)> = m
        .findings
        .iter()
        .map(|f| {
            (
                f.package.as_str(),
                f.vulnerability.as_str(),
                f.verdict,
                f.binaries.clone(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (
                "musl",
                "CVE-2025-1",
                Verdict::Fixed,
                vec!["musl".to_string()]
            ),
            (
                "openssl",
                "CVE-2024-0727",
                Verdict::Vulnerable,
                vec!["libcrypto3".to_string()]
            ),
        ]
    );
}
