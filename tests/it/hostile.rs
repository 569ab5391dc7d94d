//! Servers that are not Kafka, or misbehave: typed errors, never a hang.

use std::time::Duration;

use kafka_ingest::Error;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::support::builder;

/// Serves each connection with `reply` after reading the first bytes.
async fn server(reply: &'static [u8], close_after: bool) -> String {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
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
    builder(addr).request_timeout(Duration::from_millis(500)).api_timeout(Duration::from_secs(2))
}

#[tokio::test]
async fn http_server_is_a_protocol_error() {
    // "HTTP" read as a length prefix is ~1.2 GB: refused, not allocated.
    let addr = server(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n", true).await;
    let e = quick(&addr).build().await.unwrap_err();
    let text = e.to_string();
    assert!(text.contains("receive.message.max.bytes") || text.contains("protocol"), "{e}");
}

#[tokio::test]
async fn garbage_frame_is_a_protocol_error() {
    // A well-sized frame whose body is not an ApiVersions response.
    let addr = server(b"\x00\x00\x00\x06\x00\x00\x00\x01\xff\xff", true).await;
    let e = quick(&addr).build().await.unwrap_err();
    assert!(e.to_string().contains("malformed") || e.to_string().contains("protocol"), "{e}");
}

#[tokio::test]
async fn silent_server_times_out() {
    let addr = server(b"", false).await;
    let start = std::time::Instant::now();
    let e = quick(&addr).build().await.unwrap_err();
    assert!(e.to_string().contains("timed out"), "{e}");
    assert!(start.elapsed() < Duration::from_secs(6), "bounded by the api timeout");
}

#[tokio::test]
async fn wrong_correlation_id_closes_the_connection() {
    let addr = server(b"\x00\x00\x00\x08\x00\x00\x7f\x7f\x00\x00\x00\x00", true).await;
    let e = quick(&addr).build().await.unwrap_err();
    assert!(e.to_string().contains("correlation") || matches!(e, Error::NoBrokerAvailable { .. }), "{e}");
}
