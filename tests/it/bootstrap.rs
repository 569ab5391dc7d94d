//! Bootstrap lists and config errors.

use std::time::{Duration, Instant};

use kafka_ingest::{Client, Error};

use crate::support::{bootstrap, builder};

/// A loopback port with nothing listening.
fn dead_addr() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let a = l.local_addr().unwrap();
    drop(l);
    a.to_string()
}

#[tokio::test]
async fn dead_first_address_falls_through_to_the_next() {
    let _bound = crate::support::watchdog(
        "bootstrap::dead_first_address_falls_through_to_the_next",
        300,
    );
    let list = format!("{},{}", dead_addr(), bootstrap());
    let client = builder(&list).build().await.unwrap_or_else(|e| {
        panic!("should bootstrap via the second address ({e}); is `scripts/harness up` running?")
    });
    assert!(!client
        .admin()
        .describe_cluster()
        .await
        .unwrap()
        .brokers
        .is_empty());
}

#[tokio::test]
async fn unreachable_bootstrap_fails_within_the_timeout() {
    let _bound = crate::support::watchdog(
        "bootstrap::unreachable_bootstrap_fails_within_the_timeout",
        300,
    );
    let timeout = Duration::from_millis(1500);
    let start = Instant::now();
    let e = builder(&format!("{},{}", dead_addr(), dead_addr()))
        .api_timeout(timeout)
        .build()
        .await
        .unwrap_err();
    let took = start.elapsed();
    assert!(
        matches!(e, Error::NoBrokerAvailable { .. } | Error::Timeout { .. }),
        "{e:?}"
    );
    assert!(
        e.to_string().contains("127.0.0.1"),
        "error names the address: {e}"
    );
    assert!(e.is_retriable());
    // Bounded by the configured budget (plus scheduling slack), never a hang.
    assert!(took < timeout + Duration::from_secs(3), "took {took:?}");
}

#[tokio::test]
async fn invalid_config_is_rejected_before_connecting() {
    let _bound = crate::support::watchdog(
        "bootstrap::invalid_config_is_rejected_before_connecting",
        300,
    );
    let e = Client::builder()
        .set("request.timeout.ms", "-5")
        .build()
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::Config { key, .. } if key == "request.timeout.ms"),
        "{e:?}"
    );
    let e = Client::builder()
        .set("no.such.key", "1")
        .bootstrap("127.0.0.1:9092")
        .build()
        .await
        .unwrap_err();
    assert!(e.to_string().contains("no.such.key"), "{e}");
    let e = Client::builder()
        .bootstrap("not-an-address")
        .build()
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::Config { key, .. } if key == "bootstrap.servers"),
        "{e:?}"
    );
}

#[tokio::test]
async fn properties_file_configures_the_client() {
    let _bound = crate::support::watchdog("bootstrap::properties_file_configures_the_client", 300);
    let dir = std::env::temp_dir().join(format!("ki-props-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("client.properties");
    std::fs::write(
        &file,
        format!(
            "# test\nbootstrap.servers={}\nclient.id=from-file\nrequest.timeout.ms=5000\n",
            bootstrap()
        ),
    )
    .unwrap();
    let client = Client::builder()
        .properties_file(&file)
        .build()
        .await
        .unwrap();
    assert_eq!(client.config().client_id, "from-file");
    assert_eq!(client.config().request_timeout, Duration::from_millis(5000));
    let e = Client::builder()
        .properties_file(dir.join("missing.properties"))
        .build()
        .await
        .unwrap_err();
    assert!(matches!(e, Error::File { .. }), "{e:?}");
}
