//! Terraform consumes a channel with no provider: the real `terraform` binary (when this machine
//! has one) reads `terraform_remote_state` with `backend = "http"` from `kiln serve`, with HTTP
//! basic auth carrying a token. The protocol-level test of the same endpoint always runs.

mod common;

use std::process::Command;

use common::{Server, WEB_AMI};
use kiln_server::Config;

const TERRAFORM: &str = "/usr/local/bin/terraform";

#[test]
fn state_document_is_what_the_http_backend_reads() {
    let s = Server::start(Config::default());
    let path = "/v1/terraform/buckets/base/channels/production";
    // Terraform's http backend sends the token as the basic-auth password.
    let basic = |user: &str, pass: &str| {
        use base64::Engine;
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
        )
    };
    let resp = ureq::get(&format!("{}{path}", s.url))
        .set("Authorization", &basic("terraform", s.token("consumer")))
        .call()
        .unwrap();
    assert_eq!(resp.status(), 200);
    let doc: serde_json::Value = resp.into_json().unwrap();
    assert_eq!(doc["version"], 4);
    let out = &doc["outputs"];
    assert_eq!(out["version"]["value"], s.seeded.base[2]);
    assert_eq!(out["version"]["type"], "string");
    assert_eq!(out["artifacts"]["value"]["aws"]["us-east-1"], WEB_AMI);
    assert_eq!(
        out["artifacts"]["type"],
        serde_json::json!(["map", ["map", "string"]])
    );
    assert_eq!(out["revoked"]["value"], false);
    assert_eq!(out["labels"]["value"]["os"], "debian-12");
    assert!(
        out["fingerprint"]["value"]
            .as_str()
            .unwrap()
            .starts_with("fp")
    );
    // A wrong password is refused, as the backend expects (401 → "requires auth").
    let err = ureq::get(&format!("{}{path}", s.url))
        .set("Authorization", &basic("terraform", "kiln_wrong"))
        .call()
        .unwrap_err();
    assert!(matches!(err, ureq::Error::Status(401, _)), "{err}");
    // A channel with no version is a 404 (Terraform: "Unable to find remote state").
    let err = ureq::get(&format!(
        "{}/v1/terraform/buckets/base/channels/nothing",
        s.url
    ))
    .set("Authorization", &basic("terraform", s.token("consumer")))
    .call()
    .unwrap_err();
    assert!(matches!(err, ureq::Error::Status(404, _)), "{err}");

    // Revoking the production version moves the channel back (to v1); the state follows, and
    // the revoked version is never served.
    let admin = kiln_registry::Actor::new("sec", kiln_registry::Role::Security);
    let mut r = kiln_registry::Registry::open(&s.registry_path()).unwrap();
    r.revoke(&admin, &s.seeded.base[2], "bad", None, false)
        .unwrap();
    let doc: serde_json::Value = ureq::get(&format!("{}{path}", s.url))
        .set("Authorization", &basic("terraform", s.token("consumer")))
        .call()
        .map(|r| r.into_json().unwrap())
        .unwrap_or(serde_json::Value::Null);
    assert_ne!(
        doc["outputs"]["version"]["value"], s.seeded.base[2],
        "{doc}"
    );
}

#[test]
fn real_terraform_reads_the_artifact_id() {
    if !std::path::Path::new(TERRAFORM).exists() {
        println!(
            "SKIPPED: {TERRAFORM} is not on this machine; the protocol-level test covers the endpoint"
        );
        return;
    }
    let s = Server::start(Config::default());
    let work = tempfile::tempdir().unwrap();
    let rc = work.path().join("empty.tfrc");
    std::fs::write(&rc, "").unwrap();
    std::fs::write(
        work.path().join("main.tf"),
        format!(
            r#"
data "terraform_remote_state" "base" {{
  backend = "http"
  config = {{
    address  = "{}/v1/terraform/buckets/base/channels/production"
    username = "terraform"
    password = "{}"
  }}
}}
output "ami" {{
  value = data.terraform_remote_state.base.outputs.artifacts["aws"]["us-east-1"]
}}
output "version" {{
  value = data.terraform_remote_state.base.outputs.version
}}
"#,
            s.url,
            s.token("consumer")
        ),
    )
    .unwrap();
    let tf = |args: &[&str]| {
        let o = Command::new(TERRAFORM)
            .args(args)
            .current_dir(work.path())
            .env("TF_CLI_CONFIG_FILE", &rc)
            .env("CHECKPOINT_DISABLE", "1")
            .env("TF_IN_AUTOMATION", "1")
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "terraform {args:?}: {}\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).unwrap()
    };
    tf(&["init", "-input=false", "-no-color"]);
    tf(&["apply", "-auto-approve", "-input=false", "-no-color"]);
    let ami = tf(&["output", "-raw", "ami"]);
    println!("terraform read ami = {ami}");
    assert_eq!(ami, WEB_AMI);
    assert_eq!(tf(&["output", "-raw", "version"]), s.seeded.base[2]);
}
