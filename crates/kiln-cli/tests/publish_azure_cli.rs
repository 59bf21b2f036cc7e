//! `kiln publish --target azure`: the VHD goes to Azurite as a page blob (downloaded back bit for
//! bit), and the Resource Manager requests (storage key, image definition, gallery version,
//! gallery share, revocation) go to a recording stand-in whose recorded bodies are checked.
//! Re-runs create nothing; a change in the map removes a share; revoke excludes the version from
//! `latest` and restore puts it back; a channel without Azure principals shares nothing.

mod common;

use std::os::unix::fs::FileExt;
use std::path::Path;
use std::process::{Command, Output};

use common::{artifacts_on, init_factory, ok, stored_version};
use kiln_emulators::{Azurite, Recorder};
use kiln_publish::azure::blob::Account;
use serde_json::json;

const SUB_TEST: &str = "6b1f0c2e-8d3a-4e5f-9a7b-1c2d3e4f5a6b";
const SUB_PROD: &str = "0f8fad5b-d9cb-469f-a165-70867728950e";
const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const GALLERY_SUB: &str = "11111111-2222-3333-4444-555555555555";

struct Clouds {
    az: Azurite,
    rec: Recorder,
}

fn kiln(f: &Path, c: &Clouds, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kiln"))
        .arg("--factory")
        .arg(f)
        .args(args)
        .env("KILN_AZURE_MANAGEMENT_URL", &c.rec.url)
        .env("KILN_AZURE_BLOB_URL", &c.az.endpoint)
        .env("AZURE_ACCESS_TOKEN", "arm-test-token")
        .env_remove("AZURE_STORAGE_KEY")
        .env("KILN_ACTOR", "tester")
        .env_remove("KILN_ROLE")
        .output()
        .unwrap()
}

fn accounts(prod_subs: &[&str]) -> String {
    format!(
        "channels:\n  test:\n    azure:\n      subscriptions: [\"{SUB_TEST}\"]\n  production:\n    azure:\n      subscriptions: [{}]\n      tenants: [\"{TENANT}\"]\n  dev:\n    aws:\n      accounts: [\"111111111111\"]\n",
        prod_subs
            .iter()
            .map(|s| format!("\"{s}\""))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// A factory publishing to a gallery, and a fixed "VHD" of 12 MiB + footer: data in the first
/// and third 4 MiB ranges, the second all zeros.
fn setup(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let f = init_factory(dir);
    let mut hcl = std::fs::read_to_string(f.join("kiln.hcl")).unwrap();
    hcl.push_str(&format!(
        "\npublish \"azure\" {{\n  regions         = [\"westeurope\", \"northeurope\"]\n  subscription    = \"{GALLERY_SUB}\"\n  resource_group  = \"rg-images\"\n  gallery         = \"acme_images\"\n  storage_account = \"devstoreaccount1\"\n  default_branch  = \"main\"\n  tags            = {{ team = \"platform\" }}\n}}\n"
    ));
    std::fs::write(f.join("kiln.hcl"), hcl).unwrap();
    std::fs::write(f.join("accounts.yaml"), accounts(&[SUB_PROD])).unwrap();
    let vhd = dir.join("disk.vhd");
    let file = std::fs::File::create(&vhd).unwrap();
    file.set_len((12 << 20) + 512).unwrap();
    file.write_all_at(&[0xeb; 4096], 0).unwrap();
    file.write_all_at(b"kiln", 9 << 20).unwrap();
    file.write_all_at(b"conectix", 12 << 20).unwrap();
    (f, vhd)
}

#[test]
fn publishes_to_the_gallery_shares_as_the_map_says_and_follows_revocation() {
    let dir = tempfile::tempdir().unwrap();
    let (f, vhd) = setup(dir.path());
    let id = stored_version(&f, &[("vhd", &vhd)], true, "production");
    let c = Clouds {
        az: Azurite::start(),
        rec: Recorder::start(),
    };

    let out = ok(&kiln(
        &f,
        &c,
        &["publish", "base-debian12", &id, "--target", "azure"],
    ));
    assert!(out.contains("3 range(s) sent, 1 all-zero skipped"), "{out}");

    // The blob is the VHD, bit for bit.
    let blob_name = format!("base-debian12/{id}.vhd");
    let acct = Account::azurite(&c.az.endpoint);
    let got = acct.download("kiln-vhds", &blob_name).unwrap();
    assert!(
        got == std::fs::read(&vhd).unwrap(),
        "the page blob differs from the VHD"
    );

    // The storage key came from Resource Manager, with the token Kiln was given.
    let keys = c
        .rec
        .matching("POST", "/storageAccounts/devstoreaccount1/listKeys");
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0]["authorization"], "Bearer arm-test-token");

    // The image definition: Linux, generalized, Hyper-V generation 2 for a UEFI image.
    let defs = c
        .rec
        .matching("PUT", "/galleries/acme_images/images/base-debian12");
    assert_eq!(defs.len(), 1);
    let d = &defs[0]["body"];
    assert_eq!(d["location"], "westeurope");
    assert_eq!(d["properties"]["osType"], "Linux");
    assert_eq!(d["properties"]["osState"], "Generalized");
    assert_eq!(d["properties"]["hyperVGeneration"], "V2");
    assert_eq!(
        d["properties"]["identifier"],
        json!({"publisher": "acme", "offer": "base-debian12", "sku": "base-debian12"})
    );

    // The gallery version: made from the blob, replicated to both regions, in latest, tagged.
    let versions: Vec<_> = c
        .rec
        .requests()
        .into_iter()
        .filter(|r| r["method"] == "PUT" && r["path"].as_str().unwrap().contains("/versions/"))
        .collect();
    assert_eq!(versions.len(), 1);
    let path = versions[0]["path"].as_str().unwrap();
    assert!(
        path.starts_with(&format!(
            "/subscriptions/{GALLERY_SUB}/resourceGroups/rg-images/providers/Microsoft.Compute/galleries/acme_images/images/base-debian12/versions/"
        )),
        "{path}"
    );
    let name = path.rsplit('/').next().unwrap();
    let parts: Vec<u64> = name.split('.').map(|p| p.parse().unwrap()).collect();
    assert!(
        parts.len() == 3 && parts.iter().all(|&p| p <= i32::MAX as u64),
        "{name}"
    );
    assert!(
        versions[0]["query"]
            .as_str()
            .unwrap()
            .starts_with("api-version=")
    );
    let b = &versions[0]["body"];
    assert_eq!(b["location"], "westeurope");
    assert_eq!(
        b["properties"]["storageProfile"]["osDiskImage"]["source"],
        json!({
            "storageAccountId": format!("/subscriptions/{GALLERY_SUB}/resourceGroups/rg-images/providers/Microsoft.Storage/storageAccounts/devstoreaccount1"),
            "uri": format!("{}/kiln-vhds/{blob_name}", c.az.endpoint),
        })
    );
    let regions: Vec<&str> = b["properties"]["publishingProfile"]["targetRegions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(regions, ["westeurope", "northeurope"]);
    assert_eq!(
        b["properties"]["publishingProfile"]["excludeFromLatest"],
        false
    );
    assert_eq!(b["tags"]["kiln:version"], id.as_str());
    assert_eq!(b["tags"]["kiln:git-commit"], "abc123");
    assert_eq!(b["tags"]["team"], "platform");

    // The gallery is shared with every Azure principal in the map.
    let shares = c.rec.matching("POST", "/galleries/acme_images/share");
    assert_eq!(shares.len(), 1);
    assert_eq!(
        shares[0]["body"],
        json!({"operationType": "Add", "groups": [
            {"type": "Subscriptions", "ids": [SUB_PROD, SUB_TEST]},
            {"type": "AADTenants", "ids": [TENANT]}
        ]})
    );

    // One artifact per region, naming the gallery version.
    let arts = artifacts_on(&f, &id, "azure");
    assert_eq!(
        arts.iter().map(|a| a.0.as_str()).collect::<Vec<_>>(),
        ["northeurope", "westeurope"]
    );
    assert!(arts.iter().all(|a| a.1 == path));

    // A re-run finds everything: no upload, no new version, no share change.
    let before = c.rec.requests().len();
    let out = ok(&kiln(
        &f,
        &c,
        &["publish", "base-debian12", &id, "--target", "azure"],
    ));
    assert!(
        out.contains("already complete") && out.contains(" found "),
        "{out}"
    );
    let again: Vec<_> = c.rec.requests()[before..]
        .iter()
        .filter(|r| r["method"] != "GET" && !r["path"].as_str().unwrap().ends_with("/listKeys"))
        .cloned()
        .collect();
    assert!(again.is_empty(), "a re-run changed something: {again:?}");

    // A subscription leaves the map: the share is removed from the gallery.
    std::fs::write(f.join("accounts.yaml"), accounts(&[])).unwrap();
    let out = ok(&kiln(
        &f,
        &c,
        &["publish", "base-debian12", &id, "--target", "azure"],
    ));
    assert!(out.contains("gallery shares +0 -1"), "{out}");
    let shares = c.rec.matching("POST", "/galleries/acme_images/share");
    assert_eq!(
        shares.last().unwrap()["body"],
        json!({"operationType": "Remove", "groups": [{"type": "Subscriptions", "ids": [SUB_PROD]}]})
    );

    // Revocation excludes the version from latest and tags it; restore undoes both.
    let out = ok(&kiln(
        &f,
        &c,
        &[
            "revoke",
            "base-debian12",
            &id,
            "--reason",
            "CVE-2099-0002",
            "--role",
            "security",
        ],
    ));
    assert!(out.contains("excluded from latest"), "{out}");
    let patch = c.rec.matching("PATCH", path);
    assert_eq!(patch.len(), 1);
    assert_eq!(
        patch[0]["body"]["properties"],
        json!({"publishingProfile": {"excludeFromLatest": true}})
    );
    assert_eq!(patch[0]["body"]["tags"]["kiln:revoked"], "CVE-2099-0002");
    assert_eq!(patch[0]["body"]["tags"]["kiln:version"], id.as_str());
    let o = kiln(
        &f,
        &c,
        &["publish", "base-debian12", &id, "--target", "azure"],
    );
    assert!(!o.status.success(), "a revoked version was published");
    ok(&kiln(
        &f,
        &c,
        &["restore", "base-debian12", &id, "--role", "security"],
    ));
    let patch = c.rec.matching("PATCH", path);
    assert_eq!(patch.len(), 2);
    assert_eq!(
        patch[1]["body"]["properties"]["publishingProfile"]["excludeFromLatest"],
        false
    );
    assert!(patch[1]["body"]["tags"].get("kiln:revoked").is_none());
}

#[test]
fn a_channel_without_azure_principals_shares_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (f, vhd) = setup(dir.path());
    let id = stored_version(&f, &[("vhd", &vhd)], true, "dev");
    let c = Clouds {
        az: Azurite::start(),
        rec: Recorder::start(),
    };
    let o = kiln(
        &f,
        &c,
        &["publish", "base-debian12", &id, "--target", "azure"],
    );
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("no Azure subscription or tenant"), "{err}");
    assert!(c.rec.requests().is_empty(), "Azure was called");
    assert!(artifacts_on(&f, &id, "azure").is_empty());

    // A build from another branch than the block's default_branch is refused too.
    let mut r = kiln_registry::Registry::open(&f.join(".kiln/registry.db")).unwrap();
    let a = kiln_registry::Actor::new("ops", kiln_registry::Role::Admin);
    let other = r
        .start_version(
            &a,
            "base-debian12",
            "fp3",
            &[],
            json!({"boot": "uefi", "git_branch": "feature/x"}),
        )
        .unwrap();
    r.attach_report(
        &a,
        &other,
        "test",
        &json!({"results": [{"id": "c1", "status": "pass"}]}),
    )
    .unwrap();
    r.complete(&a, &other).unwrap();
    r.promote(&a, "base-debian12", &other, "production", "qa")
        .unwrap();
    let o = kiln(
        &f,
        &c,
        &["publish", "base-debian12", &other, "--target", "azure"],
    );
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("branch `feature/x`") && err.contains("limited to branch `main`"),
        "{err}"
    );
    assert!(c.rec.requests().is_empty(), "Azure was called");
}
