//! Servers that are not Kafka, or misbehave: typed errors, never a hang.

use std::time::Duration;

use kafka_ingest::Error;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::support::builder;

/// Serves each connection with `reply` after reading the first bytes.
async fn server(reply: &'static [u8], close_after: bool) -> String {
    server_then_proxy(reply, close_after, usize::MAX).await
}

/// Like [`server`] for the first `bad` connections; later ones are relayed
/// to the real broker (a broker that starts behaving).
async fn server_then_proxy(reply: &'static [u8], close_after: bool, bad: usize) -> String {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        let mut n = 0;
        while let Ok((mut s, _)) = l.accept().await {
            n += 1;
            if n > bad {
                tokio::spawn(async move {
                    if let Ok(mut up) =
                        tokio::net::TcpStream::connect(crate::support::bootstrap()).await
                    {
                        let _ = tokio::io::copy_bidirectional(&mut s, &mut up).await;
                    }
                });
                continue;
            }
            tokio::spawn(async move {
                // Read the whole request so closing does not reset the socket.
                let mut len = [0u8; 4];
                if s.read_exact(&mut len).await.is_err() {
                    return;
                }
                let mut body = vec![0u8; u32::from_be_bytes(len).min(1 << 20) as usize];
                let _ = s.read_exact(&mut body).await;
                let _ = s.write_all(reply).await;
                let _ = s.flush().await;
                if close_after {
                    let _ = s.shutdown().await;
                }
                tokio::time::sleep(Duration::from_secs(60)).await;
            });
        }
    });
    addr
}

fn quick(addr: &str) -> kafka_ingest::ClientBuilder {
    builder(addr)
        .request_timeout(Duration::from_millis(500))
        .api_timeout(Duration::from_secs(2))
}

#[tokio::test]
async fn http_server_is_a_protocol_error() {
    let _bound = crate::support::watchdog("hostile::http_server_is_a_protocol_error", 300);
    // "HTTP" read as a length prefix is ~1.2 GB: refused, not allocated.
    let addr = server(
        b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n",
        true,
    )
    .await;
    let e = quick(&addr).build().await.unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("receive.message.max.bytes") || text.contains("protocol"),
        "{e}"
    );
}

#[tokio::test]
async fn garbage_frame_is_a_protocol_error() {
    let _bound = crate::support::watchdog("hostile::garbage_frame_is_a_protocol_error", 300);
    // A well-sized frame whose body is not an ApiVersions response.
    let addr = server(b"\x00\x00\x00\x06\x00\x00\x00\x01\xff\xff", true).await;
    let e = quick(&addr).build().await.unwrap_err();
    assert!(
        e.to_string().contains("malformed") || e.to_string().contains("protocol"),
        "{e}"
    );
}

#[tokio::test]
async fn silent_server_times_out() {
    let _bound = crate::support::watchdog("hostile::silent_server_times_out", 300);
    let addr = server(b"", false).await;
    let start = std::time::Instant::now();
    let e = quick(&addr).build().await.unwrap_err();
    assert!(e.to_string().contains("timed out"), "{e}");
    assert!(
        start.elapsed() < Duration::from_secs(6),
        "bounded by the api timeout"
    );
}

#[tokio::test]
async fn wrong_correlation_id_closes_the_connection() {
    let _bound =
        crate::support::watchdog("hostile::wrong_correlation_id_closes_the_connection", 300);
    let addr = server(b"\x00\x00\x00\x08\x00\x00\x7f\x7f\x00\x00\x00\x00", true).await;
    let e = quick(&addr).build().await.unwrap_err();
    assert!(
        e.to_string().contains("correlation") || matches!(e, Error::NoBrokerAvailable { .. }),
        "{e}"
    );
}

/// The client is still usable: with the hostile server first in the
/// bootstrap list it falls through to the real broker.
async fn usable_past(hostile: &str) {
    let c = quick(&format!("{hostile},{}", crate::support::bootstrap()))
        .build()
        .await
        .unwrap();
    c.admin().describe_cluster().await.unwrap();
}

/// The error from a server that always misbehaves; then, against one that
/// misbehaves once and then relays to the real broker, the client's own
/// retry succeeds.
async fn recovers_after(reply: &'static [u8], close_after: bool) -> Error {
    let e = quick(&server(reply, close_after).await)
        .build()
        .await
        .unwrap_err();
    let c = quick(&server_then_proxy(reply, close_after, 1).await)
        .build()
        .await
        .unwrap();
    c.admin().describe_cluster().await.unwrap();
    e
}

#[tokio::test]
async fn two_gigabyte_length_prefix_is_refused() {
    let _bound = crate::support::watchdog("hostile::two_gigabyte_length_prefix_is_refused", 300);
    // 0x7fffffff: refused by receive.message.max.bytes before any buffer is made.
    const REPLY: &[u8] = b"\x7f\xff\xff\xff\x00\x00\x00\x01";
    let e = recovers_after(REPLY, false).await;
    assert!(
        matches!(e, Error::Protocol { .. }) && e.to_string().contains("receive.message.max.bytes"),
        "{e:?}"
    );
    usable_past(&server(REPLY, false).await).await;
}

#[tokio::test]
async fn truncated_frame_then_close_is_a_connection_error() {
    let _bound = crate::support::watchdog(
        "hostile::truncated_frame_then_close_is_a_connection_error",
        300,
    );
    // Promises 100 bytes, sends 6, closes.
    const REPLY: &[u8] = b"\x00\x00\x00\x64\x00\x00\x00\x01\x00\x00";
    let e = recovers_after(REPLY, true).await;
    // Retried until the api timeout; the last cause is kept.
    let cause = match &e {
        Error::Timeout {
            last: Some(last), ..
        } => last.as_ref(),
        e => e,
    };
    assert!(
        matches!(
            cause,
            Error::Connection { .. } | Error::NoBrokerAvailable { .. }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("closed"), "{e}");
    usable_past(&server(REPLY, true).await).await;
}

#[tokio::test]
async fn unknown_correlation_id_fails_the_request() {
    let _bound = crate::support::watchdog("hostile::unknown_correlation_id_fails_the_request", 300);
    const REPLY: &[u8] = b"\x00\x00\x00\x08\x00\x00\x7f\x7f\x00\x00\x00\x00";
    let e = recovers_after(REPLY, false).await;
    assert!(
        matches!(e, Error::Protocol { .. }) && e.to_string().contains("correlation"),
        "{e:?}"
    );
    usable_past(&server(REPLY, false).await).await;
}

#[tokio::test]
async fn silent_broker_is_a_request_timeout() {
    let _bound = crate::support::watchdog("hostile::silent_broker_is_a_request_timeout", 300);
    let e = recovers_after(b"", false).await;
    assert!(
        matches!(e, Error::Timeout { .. } | Error::NoBrokerAvailable { .. }),
        "{e:?}"
    );
    assert!(e.to_string().contains("timed out"), "{e}");
    usable_past(&server(b"", false).await).await;
}

#[tokio::test]
async fn garbage_bytes_are_a_protocol_error() {
    let _bound = crate::support::watchdog("hostile::garbage_bytes_are_a_protocol_error", 300);
    // A sane length, then bytes that are no ApiVersions response.
    const REPLY: &[u8] = b"\x00\x00\x00\x0c\x00\x00\x00\x01\xde\xad\xbe\xef\xde\xad\xbe\xef";
    let e = recovers_after(REPLY, false).await;
    assert!(matches!(e, Error::Protocol { .. }), "{e:?}");
    usable_past(&server(REPLY, false).await).await;
}

#[tokio::test]
async fn hostile_array_count_is_a_protocol_error() {
    let _bound = crate::support::watchdog("hostile::hostile_array_count_is_a_protocol_error", 300);
    // An ApiVersions v3 response whose api_keys count is 2^32-2: without the
    // codec's guard, kafka-protocol would try to allocate ~100 GB and abort.
    const REPLY: &[u8] = b"\x00\x00\x00\x0b\x00\x00\x00\x01\x00\x00\xff\xff\xff\xff\x0f";
    let e = recovers_after(REPLY, false).await;
    assert!(
        matches!(e, Error::Protocol { .. }) && e.to_string().contains("exceeds"),
        "{e:?}"
    );
    usable_past(&server(REPLY, false).await).await;
}
