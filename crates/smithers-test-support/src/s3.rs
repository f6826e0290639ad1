//! A real S3-compatible server for the S3 audit destination's tests:
//! moto's server (PyPI `moto[server]`, installed by `ensure_moto` in
//! scripts/lib.sh, named by `SMITHERS_MOTO_SERVER`), started on a free
//! loopback port for one test and killed with it. moto enforces Object
//! Lock: a canary test checks that deleting a locked version fails, so a
//! server that stopped enforcing it fails the suite.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use aws_sdk_s3::config::{Credentials, Region};
use aws_sdk_s3::types::{
    DefaultRetention, ObjectLockConfiguration, ObjectLockEnabled, ObjectLockRetentionMode,
    ObjectLockRule,
};

/// The access key moto takes (it checks none).
pub const ACCESS: &str = "AKIAMOTOTEST0000";
pub const SECRET: &str = "moto-secret-0000";

/// A running moto server.
pub struct Moto {
    url: String,
    child: Child,
}

/// How a test bucket locks its objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lock {
    Compliance,
    Governance,
    /// Object Lock not enabled at all.
    None,
}

impl Moto {
    /// Starts moto's server on a free loopback port and waits until it
    /// answers.
    pub async fn start() -> Moto {
        let program = std::env::var("SMITHERS_MOTO_SERVER").unwrap_or_else(|_| {
            panic!(
                "SMITHERS_MOTO_SERVER is not set: run the tests through scripts/test, or \
                 `. scripts/lib.sh; ensure_moto` and export it"
            )
        });
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let child = Command::new(&program)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{program}: {e}"));
        let url = format!("http://127.0.0.1:{port}");
        let moto = Moto { url, child };
        let http = reqwest::Client::new();
        for _ in 0..200 {
            if http.get(&moto.url).send().await.is_ok() {
                return moto;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("moto's server did not answer on {}", moto.url);
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// A client of the server.
    pub fn client(&self) -> aws_sdk_s3::Client {
        let config = aws_sdk_s3::config::Builder::new()
            .behavior_version_latest()
            .http_client(
                aws_smithy_http_client::Builder::new()
                    .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                        aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
                    ))
                    .build_https(),
            )
            .endpoint_url(&self.url)
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new(ACCESS, SECRET, None, None, "test"))
            .force_path_style(true)
            .build();
        aws_sdk_s3::Client::from_conf(config)
    }

    /// Makes bucket `name`, locking objects as `lock` says (a default
    /// retention of one day).
    pub async fn bucket(&self, name: &str, lock: Lock) {
        let s3 = self.client();
        s3.create_bucket()
            .bucket(name)
            .object_lock_enabled_for_bucket(lock != Lock::None)
            .send()
            .await
            .unwrap();
        let mode = match lock {
            Lock::Compliance => ObjectLockRetentionMode::Compliance,
            Lock::Governance => ObjectLockRetentionMode::Governance,
            Lock::None => return,
        };
        s3.put_object_lock_configuration()
            .bucket(name)
            .object_lock_configuration(
                ObjectLockConfiguration::builder()
                    .object_lock_enabled(ObjectLockEnabled::Enabled)
                    .rule(
                        ObjectLockRule::builder()
                            .default_retention(
                                DefaultRetention::builder().mode(mode).days(1).build(),
                            )
                            .build(),
                    )
                    .build(),
            )
            .send()
            .await
            .unwrap();
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
