//! Where and as whom to call AWS, shared by the store (S3) and the publishers (EBS, EC2, SSM):
//! the standard credential chain (environment, profile, CI's web identity, instance role) unless
//! fixed credentials are given, and an endpoint override for S3-compatible stores and tests.

use aws_config::{BehaviorVersion, Region};
use aws_smithy_http_client::tls;

/// Where and as whom to call AWS.
#[derive(Debug, Clone, Default)]
pub struct Conn {
    pub region: String,
    /// Another endpoint than AWS's (a test stand-in such as moto).
    pub endpoint: Option<String>,
    /// Fixed credentials (tests); `None` uses the standard chain.
    pub static_credentials: Option<(String, String)>,
}

/// The SDK configuration for `conn`: rustls on ring for HTTPS.
pub async fn sdk_config(conn: &Conn) -> aws_config::SdkConfig {
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https();
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .http_client(http)
        .region(Region::new(conn.region.clone()));
    if let Some(e) = &conn.endpoint {
        loader = loader.endpoint_url(e);
    }
    if let Some((id, secret)) = &conn.static_credentials {
        loader = loader.credentials_provider(aws_sdk_s3::config::Credentials::new(
            id,
            secret,
            None,
            None,
            "kiln-static",
        ));
    }
    loader.load().await
}
