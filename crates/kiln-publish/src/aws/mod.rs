//! AWS: the raw disk goes up as an EBS snapshot through the EBS direct APIs (no S3 bucket, no
//! VM Import role), then becomes an AMI. Clients come from the standard credential chain
//! (environment, profile, web identity from CI's OIDC, instance role); an endpoint override
//! points them at a local stand-in in tests.

pub mod ami;
pub mod ebs;
pub mod publish;

pub use kiln_store::aws::{Conn, sdk_config};

/// The clients one region needs.
#[derive(Debug, Clone)]
pub struct Clients {
    pub ebs: aws_sdk_ebs::Client,
    pub ec2: aws_sdk_ec2::Client,
    pub ssm: aws_sdk_ssm::Client,
}

impl Clients {
    pub async fn new(conn: &Conn) -> Clients {
        let c = sdk_config(conn).await;
        Clients {
            ebs: aws_sdk_ebs::Client::new(&c),
            ec2: aws_sdk_ec2::Client::new(&c),
            ssm: aws_sdk_ssm::Client::new(&c),
        }
    }
}

/// An AWS error in one line: the service's code and message when there is one.
pub fn describe<E: std::error::Error + 'static>(e: &E) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(x) = src {
        s.push_str(": ");
        s.push_str(&x.to_string());
        src = x.source();
    }
    s
}
