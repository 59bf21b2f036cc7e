//! Azure Compute Gallery: each Kiln bucket is an image definition in the factory's gallery, each
//! published version an image version made from the uploaded page blob and replicated to the
//! target regions. Sharing is the gallery's (Azure shares whole galleries with subscriptions and
//! tenants, not single versions); a revoked version is excluded from `latest` and tagged.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::arm::{self, COMPUTE_API, STORAGE_API};
use crate::PublishError;
use crate::rest::Rest;

/// Where the gallery lives (from the `publish "azure"` block).
#[derive(Debug, Clone)]
pub struct Place {
    pub subscription: String,
    pub resource_group: String,
    pub gallery: String,
    pub storage_account: String,
}

impl Place {
    fn group(&self) -> String {
        format!(
            "/subscriptions/{}/resourceGroups/{}",
            self.subscription, self.resource_group
        )
    }

    /// The gallery's resource id.
    pub fn gallery_id(&self) -> String {
        format!(
            "{}/providers/Microsoft.Compute/galleries/{}",
            self.group(),
            self.gallery
        )
    }

    pub fn definition_id(&self, bucket: &str) -> String {
        format!("{}/images/{bucket}", self.gallery_id())
    }

    pub fn version_id(&self, bucket: &str, name: &str) -> String {
        format!("{}/versions/{name}", self.definition_id(bucket))
    }

    pub fn storage_account_id(&self) -> String {
        format!(
            "{}/providers/Microsoft.Storage/storageAccounts/{}",
            self.group(),
            self.storage_account
        )
    }
}

fn api(id: &str) -> String {
    format!("{id}?api-version={COMPUTE_API}")
}

/// A gallery version name (`MAJOR.MINOR.PATCH`, each a 32-bit integer) from the version's
/// creation time `2026-11-23T19:48:44.123Z`: `2026.1123.194844123`. Names sort as versions
/// were made, so the gallery's own `latest` follows Kiln's.
pub fn version_name(created_at: &str) -> Result<String, PublishError> {
    let d: String = created_at.chars().filter(char::is_ascii_digit).collect();
    if d.len() < 14 {
        return Err(PublishError::Cloud(format!(
            "cannot name a gallery version after the time `{created_at}`"
        )));
    }
    let millis = d.get(14..17).unwrap_or("000");
    let n = |s: &str| s.parse::<u32>().unwrap_or(0);
    Ok(format!(
        "{}.{}.{}",
        n(&d[0..4]),
        n(&d[4..8]),
        n(&format!("{}{millis:0<3}", &d[8..14]))
    ))
}

/// The account key, through Resource Manager (so only a Resource Manager token is needed).
pub fn account_key(rest: &Rest, place: &Place) -> Result<String, PublishError> {
    let r = rest
        .expect(
            "POST",
            &format!(
                "{}/listKeys?api-version={STORAGE_API}",
                place.storage_account_id()
            ),
            None,
            false,
        )?
        .expect("not missing_ok");
    r.body["keys"][0]["value"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| {
            PublishError::Cloud(format!(
                "listKeys for {} returned no key",
                place.storage_account
            ))
        })
}

/// Makes the bucket's image definition when it is missing (Linux, generalized, x64; Hyper-V
/// generation 2 for UEFI images, 1 for BIOS). Returns whether it was made.
pub fn ensure_definition(
    rest: &Rest,
    place: &Place,
    bucket: &str,
    publisher: &str,
    location: &str,
    uefi: bool,
) -> Result<bool, PublishError> {
    let id = place.definition_id(bucket);
    if rest.expect("GET", &api(&id), None, true)?.is_some() {
        return Ok(false);
    }
    let body = json!({
        "location": location,
        "properties": {
            "osType": "Linux",
            "osState": "Generalized",
            "hyperVGeneration": if uefi { "V2" } else { "V1" },
            "architecture": "x64",
            "identifier": { "publisher": publisher, "offer": bucket, "sku": bucket },
            "description": format!("Kiln bucket {bucket}"),
        }
    });
    arm::change(
        rest,
        &format!("creating image definition {bucket}"),
        "PUT",
        &api(&id),
        Some(&body),
    )?;
    Ok(true)
}

/// An existing version's tags, or `None` when it does not exist.
pub fn find_version(
    rest: &Rest,
    id: &str,
) -> Result<Option<BTreeMap<String, String>>, PublishError> {
    Ok(rest.expect("GET", &api(id), None, true)?.map(|r| {
        r.body["tags"]
            .as_object()
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                    .collect()
            })
            .unwrap_or_default()
    }))
}

/// What a gallery version is made of.
#[derive(Debug, Clone)]
pub struct NewVersion<'a> {
    pub id: &'a str,
    pub location: &'a str,
    pub regions: &'a [String],
    pub blob_url: &'a str,
    pub storage_account_id: &'a str,
    pub tags: &'a BTreeMap<String, String>,
}

/// The body of the image version PUT.
pub fn version_body(v: &NewVersion<'_>) -> Value {
    let targets: Vec<Value> = v
        .regions
        .iter()
        .map(|r| json!({ "name": r, "regionalReplicaCount": 1, "storageAccountType": "Standard_LRS" }))
        .collect();
    json!({
        "location": v.location,
        "tags": v.tags,
        "properties": {
            "publishingProfile": { "targetRegions": targets, "excludeFromLatest": false },
            "storageProfile": {
                "osDiskImage": {
                    "hostCaching": "ReadOnly",
                    "source": { "storageAccountId": v.storage_account_id, "uri": v.blob_url }
                }
            }
        }
    })
}

/// Creates the version and waits until it is replicated.
pub fn create_version(rest: &Rest, v: &NewVersion<'_>) -> Result<(), PublishError> {
    arm::change(
        rest,
        "creating the gallery image version",
        "PUT",
        &api(v.id),
        Some(&version_body(v)),
    )?;
    Ok(())
}

/// Marks a version revoked (excluded from `latest`, tagged) or restored.
pub fn set_revoked(
    rest: &Rest,
    id: &str,
    tags: &BTreeMap<String, String>,
    revoked: bool,
) -> Result<(), PublishError> {
    let body = json!({
        "tags": tags,
        "properties": { "publishingProfile": { "excludeFromLatest": revoked } }
    });
    arm::change(
        rest,
        if revoked {
            "excluding the revoked version from latest"
        } else {
            "restoring the version to latest"
        },
        "PATCH",
        &api(id),
        Some(&body),
    )?;
    Ok(())
}

/// Deletes a version (the reaper's job).
pub fn delete_version(rest: &Rest, id: &str) -> Result<bool, PublishError> {
    let r = rest.call("DELETE", &api(id), None)?;
    match r.status {
        404 | 204 => Ok(false),
        200..=299 => {
            arm::wait(rest, "deleting the gallery version", &api(id), &r)?;
            Ok(true)
        }
        code => Err(PublishError::Cloud(format!(
            "DELETE {id}: HTTP {code}: {}",
            r.body["error"]["message"].as_str().unwrap_or("failed")
        ))),
    }
}

/// Who the gallery is shared with: (subscriptions, tenants).
pub fn shared_with(rest: &Rest, place: &Place) -> Result<(Vec<String>, Vec<String>), PublishError> {
    let r = rest
        .expect(
            "GET",
            &format!("{}&$select=Permissions", api(&place.gallery_id())),
            None,
            false,
        )?
        .expect("not missing_ok");
    let mut subs = Vec::new();
    let mut tenants = Vec::new();
    for g in r.body["properties"]["sharingProfile"]["groups"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let ids = g["ids"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_string);
        match g["type"].as_str() {
            Some("Subscriptions") => subs.extend(ids),
            Some("AADTenants") => tenants.extend(ids),
            _ => {}
        }
    }
    Ok((subs, tenants))
}

/// Shares the gallery with exactly `subs` and `tenants`: adds what is missing, removes the rest.
/// Returns (added, removed).
pub fn share(
    rest: &Rest,
    place: &Place,
    subs: &[String],
    tenants: &[String],
) -> Result<(usize, usize), PublishError> {
    let (have_s, have_t) = shared_with(rest, place)?;
    let missing = |want: &[String], have: &[String]| -> Vec<String> {
        want.iter()
            .filter(|x| !have.iter().any(|h| h.eq_ignore_ascii_case(x)))
            .cloned()
            .collect()
    };
    let add = (missing(subs, &have_s), missing(tenants, &have_t));
    let remove = (missing(&have_s, subs), missing(&have_t, tenants));
    let path = format!("{}/share?api-version={COMPUTE_API}", place.gallery_id());
    let mut counts = (0, 0);
    for (op, (s, t), count) in [
        ("Add", &add, &mut counts.0),
        ("Remove", &remove, &mut counts.1),
    ] {
        let mut groups = Vec::new();
        if !s.is_empty() {
            groups.push(json!({ "type": "Subscriptions", "ids": s }));
        }
        if !t.is_empty() {
            groups.push(json!({ "type": "AADTenants", "ids": t }));
        }
        if groups.is_empty() {
            continue;
        }
        let body = json!({ "operationType": op, "groups": groups });
        arm::change(
            rest,
            &format!("sharing the gallery ({op})"),
            "POST",
            &path,
            Some(&body),
        )?;
        *count = s.len() + t.len();
    }
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_names_are_integers_that_sort_by_time() {
        assert_eq!(
            version_name("2026-11-23T19:48:44.123Z").unwrap(),
            "2026.1123.194844123"
        );
        assert_eq!(
            version_name("2026-01-05T00:00:07Z").unwrap(),
            "2026.105.7000"
        );
        let a = version_name("2026-01-05T23:59:59.999Z").unwrap();
        let b = version_name("2026-01-06T00:00:00.000Z").unwrap();
        let key = |s: &str| -> Vec<u32> { s.split('.').map(|x| x.parse().unwrap()).collect() };
        assert!(key(&a) < key(&b));
        assert!(key(&a).iter().all(|&x| x <= i32::MAX as u32));
        assert!(version_name("yesterday").is_err());
    }
}
