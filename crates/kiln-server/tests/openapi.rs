//! `/v1/openapi.json` is a valid OpenAPI 3.0 document (checked by openapi-spec-validator), and it
//! and the router agree: every documented operation is served (no fallback 404), with the access
//! the document states.

mod common;

use std::process::Command;

use common::Server;
use kiln_server::Config;
use serde_json::Value;

const VALIDATOR: &str = "/var/cache/kiln/venv-server/bin/python";

#[test]
fn the_description_is_valid_and_matches_the_routes() {
    let s = Server::start(Config::default());
    let (st, doc) = s.call("GET", "/v1/openapi.json", None, None);
    assert_eq!(st, 200, "the description is public");
    assert_eq!(doc["openapi"], "3.0.3");

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("openapi.json");
    std::fs::write(&file, doc.to_string()).unwrap();
    let o = Command::new(VALIDATOR)
        .args(["-m", "openapi_spec_validator"])
        .arg(&file)
        .output()
        .expect("run scripts/host-deps.sh server (openapi-spec-validator)");
    assert!(
        o.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );

    let paths = doc["paths"].as_object().unwrap();
    let mut ops = 0;
    for (path, methods) in paths {
        for (method, op) in methods.as_object().unwrap() {
            ops += 1;
            let concrete = path
                .replace("{bucket}", "base")
                .replace("{channel}", "dev")
                .replace("{id}", &s.seeded.base[0])
                .replace("{kind}", "sbom")
                .replace("{name}", "nobody");
            // Without a token: documented reads and mutations say 401, public ones answer.
            let (st, b) = s.call(
                &method.to_uppercase(),
                &concrete,
                None,
                Some(&Value::Object(Default::default())),
            );
            let message = b["error"]["message"].as_str().unwrap_or_default();
            assert_ne!(
                message, "no such route",
                "{method} {path} is documented but not served"
            );
            let secured = !op["security"].as_array().unwrap().is_empty();
            if secured {
                assert_eq!(
                    st, 401,
                    "{method} {path} is documented as needing a token: {b}"
                );
            }
        }
    }
    assert!(ops >= 28, "{ops} operations documented");
}
