//! From snapshot to shared AMI against moto: registration (found again, not duplicated), launch
//! permissions set to exactly the wanted accounts and OUs (adding and removing), a copy in a
//! second region, the SSM parameter, and revocation pulling the permissions back (restore
//! returning them). moto implements neither EnableImageDeprecation nor its undo: the test checks
//! that the call was made and says it is not available there.

mod common;

use std::sync::Arc;

use common::{Moto, conn_in, disk};
use kiln_publish::aws::Clients;
use kiln_publish::aws::ami::{self, Sharing};
use kiln_publish::aws::ebs::{self, Upload};

fn set(v: &[&str]) -> std::collections::BTreeSet<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_share_copy_parameter_revoke_restore() {
    let moto = Moto::start();
    let east = Clients::new(&conn_in(&moto, "us-east-1")).await;
    let west = Clients::new(&conn_in(&moto, "us-west-2")).await;
    let dir = tempfile::tempdir().unwrap();
    let (path, sha, _) = disk(dir.path(), 8);
    let snap = ebs::upload(
        &east,
        &Upload {
            disk: &path,
            sha256: &sha,
            version: "01V",
            description: "d".into(),
            tags: vec![],
            parallel: 4,
        },
        Arc::new(|_, _| {}),
    )
    .await
    .unwrap();

    let tags = vec![
        ("kiln:bucket".to_string(), "base-debian12".to_string()),
        ("kiln:version".to_string(), "01V".to_string()),
    ];
    let (ami, new) = ami::register(&east, &snap.snapshot_id, "base-debian12-01V", true, &tags)
        .await
        .unwrap();
    assert!(new && ami.starts_with("ami-"));
    let (again, new) = ami::register(&east, &snap.snapshot_id, "base-debian12-01V", true, &tags)
        .await
        .unwrap();
    assert_eq!(
        (again.as_str(), new),
        (ami.as_str(), false),
        "found, not registered twice"
    );
    let img = east
        .ec2
        .describe_images()
        .image_ids(&ami)
        .send()
        .await
        .unwrap();
    let got: Vec<(String, String)> = img.images()[0]
        .tags()
        .iter()
        .map(|t| (t.key().unwrap().into(), t.value().unwrap().into()))
        .collect();
    for t in &tags {
        assert!(got.contains(t), "{t:?} not in {got:?}");
    }

    let ou = "arn:aws:organizations::222222222222:ou/o-exampleorg1/ou-ab12-cdef3456";
    let want = Sharing {
        accounts: set(&["111111111111", "222222222222"]),
        organizational_units: set(&[ou]),
        ..Sharing::default()
    };
    assert_eq!(ami::share(&east, &ami, &want).await.unwrap(), (3, 0));
    assert_eq!(ami::permissions(&east, &ami).await.unwrap(), want);
    assert_eq!(
        ami::share(&east, &ami, &want).await.unwrap(),
        (0, 0),
        "already so"
    );
    // The map drops an account: it loses access.
    let fewer = Sharing {
        accounts: set(&["222222222222"]),
        organizational_units: set(&[ou]),
        ..Sharing::default()
    };
    assert_eq!(ami::share(&east, &ami, &fewer).await.unwrap(), (0, 1));
    assert_eq!(ami::permissions(&east, &ami).await.unwrap(), fewer);

    let (copy, new) = ami::copy(&west, &ami, "us-east-1", "base-debian12-01V", &tags)
        .await
        .unwrap();
    assert!(new && copy != ami);
    let in_west = west
        .ec2
        .describe_images()
        .image_ids(&copy)
        .send()
        .await
        .unwrap();
    assert_eq!(in_west.images().len(), 1, "the copy is in us-west-2");
    let (copy2, new) = ami::copy(&west, &ami, "us-east-1", "base-debian12-01V", &tags)
        .await
        .unwrap();
    assert_eq!((copy2, new), (copy.clone(), false));

    let name = ami::set_parameter(&east, "base-debian12", "production", &ami)
        .await
        .unwrap();
    assert_eq!(name, "/kiln/base-debian12/production");
    let p = east.ssm.get_parameter().name(&name).send().await.unwrap();
    let p = p.parameter().unwrap();
    assert_eq!(p.value(), Some(ami.as_str()));
    assert_eq!(p.data_type(), Some("aws:ec2:image"));

    let r = ami::revoke(&east, &ami, "CVE-2099-0001").await.unwrap();
    assert_eq!(r.permissions_removed, 2);
    assert!(ami::permissions(&east, &ami).await.unwrap().is_empty());
    match &r.deprecated {
        Ok(()) => {}
        Err(e) => println!("NOTE: EnableImageDeprecation is not available on moto: {e}"),
    }
    let restored = ami::restore(&east, &ami, &fewer).await.unwrap();
    assert_eq!(ami::permissions(&east, &ami).await.unwrap(), fewer);
    if let Err(e) = restored {
        println!("NOTE: DisableImageDeprecation is not available on moto: {e}");
    }
}
