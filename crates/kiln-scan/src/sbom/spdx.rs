//! SPDX 2.3 JSON: one package for the image, one for its OS, one per installed package with its
//! purl as a PACKAGE-MANAGER reference; the document DESCRIBES the image, which CONTAINS the rest.
//! SPDX ids allow only letters, digits, `.` and `-`, so they are numbered, never derived from
//! version strings.

use serde_json::{Value, json};

use super::{Sbom, purl};
use crate::sbom::DocMeta;

/// An SPDX-safe rendering of a name: anything outside `[A-Za-z0-9.-]` becomes `-`.
fn safe(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

pub fn document(sbom: &Sbom, meta: &DocMeta) -> Value {
    let os = &sbom.os;
    let image_id = format!("SPDXRef-Image-{}", safe(&meta.name));
    let os_id = format!("SPDXRef-OperatingSystem-{}", safe(&os.distro()));
    let mut image = json!({
        "SPDXID": image_id,
        "name": meta.name,
        "versionInfo": meta.version,
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": false,
        "primaryPackagePurpose": "OPERATING-SYSTEM",
        "licenseConcluded": "NOASSERTION",
        "licenseDeclared": "NOASSERTION",
        "copyrightText": "NOASSERTION",
    });
    if let Some(d) = &meta.sha256 {
        image["checksums"] = json!([{"algorithm": "SHA256", "checksumValue": d}]);
    }
    let mut packages = vec![
        image,
        json!({
            "SPDXID": os_id,
            "name": os.id,
            "versionInfo": os.version_id,
            "downloadLocation": "NOASSERTION",
            "filesAnalyzed": false,
            "primaryPackagePurpose": "OPERATING-SYSTEM",
        }),
    ];
    let mut relationships = vec![
        json!({"spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES", "relatedSpdxElement": image_id}),
        json!({"spdxElementId": image_id, "relationshipType": "CONTAINS", "relatedSpdxElement": os_id}),
    ];
    for (i, p) in sbom.packages.iter().enumerate() {
        let id = format!(
            "SPDXRef-Package-{}-{}-{}",
            p.kind.as_str(),
            safe(&p.name),
            i + 1
        );
        let mut pkg = json!({
            "SPDXID": id,
            "name": p.name,
            "versionInfo": p.full_version(),
            "downloadLocation": "NOASSERTION",
            "filesAnalyzed": false,
            "primaryPackagePurpose": "LIBRARY",
            "sourceInfo": format!("built package from: {} {}", p.source, p.source_version),
            "licenseConcluded": "NOASSERTION",
            "licenseDeclared": "NOASSERTION",
            "copyrightText": "NOASSERTION",
            "externalRefs": [{
                "referenceCategory": "PACKAGE-MANAGER",
                "referenceType": "purl",
                "referenceLocator": purl::of(p, os),
            }],
        });
        if let Some(l) = &p.license {
            // Kept as a comment: package databases do not promise valid SPDX expressions.
            pkg["licenseComments"] = json!(format!("license as the package states it: {l}"));
        }
        packages.push(pkg);
        relationships.push(json!({"spdxElementId": image_id, "relationshipType": "CONTAINS", "relatedSpdxElement": id}));
    }
    json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": format!("{}-{}", meta.name, meta.version),
        "documentNamespace": format!("https://kiln.invalid/spdx/{}/{}-{}", safe(&meta.name), safe(&meta.version), meta.uuid(sbom)),
        "creationInfo": {
            "created": meta.timestamp(),
            "creators": [format!("Tool: kiln-{}", env!("CARGO_PKG_VERSION"))],
        },
        "packages": packages,
        "relationships": relationships,
    })
}
