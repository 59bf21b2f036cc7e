//! CycloneDX 1.5 JSON: the image as `metadata.component`, its OS as an `operating-system`
//! component, every package a `library` with its purl and the source package as properties; the
//! dependency graph image → OS → packages.

use serde_json::{Value, json};

use super::{Sbom, purl};
use crate::sbom::DocMeta;

pub fn document(sbom: &Sbom, meta: &DocMeta) -> Value {
    let os = &sbom.os;
    let os_ref = format!("os:{}", os.distro());
    let image_ref = format!("image:{}@{}", meta.name, meta.version);
    let mut refs = Vec::new();
    let mut components = vec![json!({
        "type": "operating-system",
        "bom-ref": os_ref,
        "name": os.id,
        "version": os.version_id,
        "description": os.pretty_name.clone().unwrap_or_default(),
    })];
    for p in &sbom.packages {
        let purl = purl::of(p, os);
        let mut c = json!({
            "type": "library",
            "bom-ref": purl,
            "name": p.name,
            "version": p.full_version(),
            "purl": purl,
            "properties": [
                {"name": "kiln:package:type", "value": p.kind.as_str()},
                {"name": "kiln:package:arch", "value": p.arch},
                {"name": "kiln:package:source", "value": p.source},
                {"name": "kiln:package:source-version", "value": p.source_version},
            ],
        });
        if let Some(s) = &p.supplier {
            c["supplier"] = json!({"name": s});
        }
        if let Some(l) = &p.license {
            // Free text: package databases do not promise SPDX identifiers.
            c["licenses"] = json!([{"license": {"name": l}}]);
        }
        refs.push(purl);
        components.push(c);
    }
    let mut deps = vec![
        json!({"ref": image_ref, "dependsOn": [os_ref]}),
        json!({"ref": os_ref, "dependsOn": refs}),
    ];
    deps.extend(refs.iter().map(|r| json!({"ref": r, "dependsOn": []})));
    let mut component = json!({
        "type": "operating-system",
        "bom-ref": image_ref,
        "name": meta.name,
        "version": meta.version,
    });
    if let Some(d) = &meta.sha256 {
        component["hashes"] = json!([{"alg": "SHA-256", "content": d}]);
    }
    json!({
        "$schema": "http://cyclonedx.org/schema/bom-1.5.schema.json",
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "serialNumber": format!("urn:uuid:{}", meta.uuid(sbom)),
        "version": 1,
        "metadata": {
            "timestamp": meta.timestamp(),
            "lifecycles": [{"phase": "build"}],
            "tools": {"components": [{"type": "application", "name": "kiln", "version": env!("CARGO_PKG_VERSION")}]},
            "component": component,
        },
        "components": components,
        "dependencies": deps,
    })
}
