//! librdkafka basics shared by the client helpers: [`client_config`] with short, explicit
//! timeouts, the admin client ([`admin`], [`admin_opts`]), and [`within`], a time limit for an
//! async call.

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;

pub fn client_config(bootstrap: &str, extra: &[(&str, &str)]) -> ClientConfig {
    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", bootstrap)
        .set("broker.address.family", "v4")
        .set("socket.timeout.ms", "10000");
    for (k, v) in extra {
        cfg.set(*k, *v);
    }
    cfg
}

pub fn admin(bootstrap: &str) -> AdminClient<DefaultClientContext> {
    client_config(bootstrap, &[])
        .create()
        .expect("create admin client")
}

pub fn admin_opts() -> AdminOptions {
    AdminOptions::new()
        .request_timeout(Some(Duration::from_secs(10)))
        .operation_timeout(Some(Duration::from_secs(10)))
}

/// Awaits `fut`, failing the test if it takes longer than `limit`.
pub async fn within<F: std::future::Future>(limit: Duration, what: &str, fut: F) -> F::Output {
    match tokio::time::timeout(limit, fut).await {
        Ok(v) => v,
        Err(_) => panic!("{what}: no result within {limit:?}"),
    }
}
