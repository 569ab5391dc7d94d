//! Codec entry points for `protocol-tests` and the fuzz targets, and test
//! hooks for the integration tests (feature `unstable-internals`). Not part
//! of the API: no stability promise.

use bytes::{Bytes, BytesMut};

pub use crate::codec::compression::{compress, decompress};
pub use crate::codec::group::{decode_assignment, decode_subscription};
pub use crate::codec::records::{
    decode_batches, encode_batch, InBatch, InRecord, OutRecord, ProducerStamp,
};
pub use crate::codec::CodecError;
use crate::codec::{self, msg};
/// The protocol crate the codec wraps, so tests build messages with the same version.
pub use kafka_protocol as kp;

use kp::protocol::{Decodable, Encodable, HeaderVersion};

/// `(api key, lowest, highest)` version the client speaks, per API.
pub fn supported_versions() -> Vec<(i16, i16, i16)> {
    codec::versions::ALL
        .iter()
        .map(|r| (r.key, r.min, r.max))
        .collect()
}

/// The correlation id leading a response frame (after its size prefix).
pub fn correlation_id(frame: &[u8]) -> Result<i32, CodecError> {
    codec::correlation_id(frame)
}

/// The error code of an ApiVersions response frame, whatever its version.
pub fn api_versions_error(frame: &[u8]) -> Option<i16> {
    codec::api_versions_error(frame)
}

/// Encodes `req` as a size-prefixed request frame, exactly as a connection does.
pub fn encode_request<R>(
    req: &R,
    version: i16,
    correlation_id: i32,
    client_id: &str,
) -> Result<Bytes, CodecError>
where
    R: kp::protocol::Request + kp::protocol::Message + Encodable + HeaderVersion + Send + 'static,
{
    codec::encode_frame_with::<R>(
        version,
        correlation_id,
        client_id,
        Default::default(),
        |b, v| codec::write_request(req, b, v),
    )
}

// Calls `$body` with `$R` bound to the request type of `$key`.
macro_rules! by_api {
    ($key:expr, $R:ident => $body:expr) => {
        match $key {
            0 => {
                type $R = msg::ProduceRequest;
                $body
            }
            1 => {
                type $R = msg::FetchRequest;
                $body
            }
            2 => {
                type $R = msg::ListOffsetsRequest;
                $body
            }
            3 => {
                type $R = msg::MetadataRequest;
                $body
            }
            8 => {
                type $R = msg::OffsetCommitRequest;
                $body
            }
            9 => {
                type $R = msg::OffsetFetchRequest;
                $body
            }
            10 => {
                type $R = msg::FindCoordinatorRequest;
                $body
            }
            11 => {
                type $R = msg::JoinGroupRequest;
                $body
            }
            12 => {
                type $R = msg::HeartbeatRequest;
                $body
            }
            13 => {
                type $R = msg::LeaveGroupRequest;
                $body
            }
            14 => {
                type $R = msg::SyncGroupRequest;
                $body
            }
            15 => {
                type $R = msg::DescribeGroupsRequest;
                $body
            }
            18 => {
                type $R = msg::ApiVersionsRequest;
                $body
            }
            19 => {
                type $R = msg::CreateTopicsRequest;
                $body
            }
            20 => {
                type $R = msg::DeleteTopicsRequest;
                $body
            }
            22 => {
                type $R = msg::InitProducerIdRequest;
                $body
            }
            32 => {
                type $R = msg::DescribeConfigsRequest;
                $body
            }
            37 => {
                type $R = msg::CreatePartitionsRequest;
                $body
            }
            44 => {
                type $R = msg::IncrementalAlterConfigsRequest;
                $body
            }
            21 => {
                type $R = msg::DeleteRecordsRequest;
                $body
            }
            16 => {
                type $R = msg::ListGroupsRequest;
                $body
            }
            42 => {
                type $R = msg::DeleteGroupsRequest;
                $body
            }
            47 => {
                type $R = msg::OffsetDeleteRequest;
                $body
            }
            48 => {
                type $R = msg::DescribeClientQuotasRequest;
                $body
            }
            49 => {
                type $R = msg::AlterClientQuotasRequest;
                $body
            }
            69 => {
                type $R = msg::ConsumerGroupDescribeRequest;
                $body
            }
            17 => {
                type $R = msg::SaslHandshakeRequest;
                $body
            }
            36 => {
                type $R = msg::SaslAuthenticateRequest;
                $body
            }
            k => Err(unknown(k)),
        }
    };
}

fn unknown(key: i16) -> CodecError {
    CodecError::Decode {
        api: codec::api_name(key),
        version: -1,
        reason: format!("API key {key} is not used by the client"),
    }
}

fn enc_err(e: anyhow::Error) -> CodecError {
    CodecError::Encode {
        api: "re-encode",
        version: -1,
        reason: e.to_string(),
    }
}

/// Decodes a response frame (after its size prefix) as the client does.
pub fn decode_response(api_key: i16, version: i16, frame: Bytes) -> Result<(), CodecError> {
    by_api!(api_key, R => codec::decode_response::<R>(frame, version).map(drop))
}

/// Decodes a response frame as the client does, then encodes it again
/// (header and body, no size prefix) for byte-for-byte comparison.
pub fn response_round_trip(api_key: i16, version: i16, frame: Bytes) -> Result<Bytes, CodecError> {
    by_api!(api_key, R => {
        let hv = <<R as kp::protocol::Request>::Response as HeaderVersion>::header_version(version);
        let header = msg::ResponseHeader::decode(&mut frame.clone(), hv)
            .map_err(|e| CodecError::Decode { api: codec::api_name(api_key), version, reason: e.to_string() })?;
        let body = codec::decode_response::<R>(frame, version)?;
        let mut out = BytesMut::new();
        header.encode(&mut out, hv).map_err(enc_err)?;
        body.encode(&mut out, version).map_err(enc_err)?;
        Ok(out.freeze())
    })
}

/// Decodes a request frame (after its size prefix; as a broker would) and
/// encodes it again. Returns `(api key, version, bytes)`. Not guarded (the
/// client never decodes requests): for trusted fixtures only, never fuzzing.
pub fn request_round_trip(frame: Bytes) -> Result<(i16, i16, Bytes), CodecError> {
    let short = || CodecError::ShortFrame(frame.len());
    let key = i16::from_be_bytes(
        frame
            .get(..2)
            .ok_or_else(short)?
            .try_into()
            .map_err(|_| short())?,
    );
    let version = i16::from_be_bytes(
        frame
            .get(2..4)
            .ok_or_else(short)?
            .try_into()
            .map_err(|_| short())?,
    );
    let dec = |e: anyhow::Error| CodecError::Decode {
        api: codec::api_name(key),
        version,
        reason: e.to_string(),
    };
    by_api!(key, R => {
        let hv = <R as HeaderVersion>::header_version(version);
        let mut buf = frame.clone();
        let header = msg::RequestHeader::decode(&mut buf, hv).map_err(dec)?;
        let body = R::decode(&mut buf, version).map_err(dec)?;
        let mut out = BytesMut::new();
        header.encode(&mut out, hv).map_err(enc_err)?;
        body.encode(&mut out, version).map_err(enc_err)?;
        Ok((key, version, out.freeze()))
    })
}

/// A default-valued response of `api_key` at `version`, encoded as a frame
/// body (header included), for layout checks across versions.
pub fn default_response_body(
    api_key: i16,
    version: i16,
    correlation_id: i32,
) -> Result<Bytes, CodecError> {
    by_api!(api_key, R => {
        type Resp = <R as kp::protocol::Request>::Response;
        let hv = <Resp as HeaderVersion>::header_version(version);
        let mut out = BytesMut::new();
        msg::ResponseHeader::default().with_correlation_id(correlation_id).encode(&mut out, hv).map_err(enc_err)?;
        Resp::default().encode(&mut out, version).map_err(enc_err)?;
        Ok(out.freeze())
    })
}

/// Long-polls the partition leader until a record at or after `offset`
/// exists or `max_wait` passes; returns whether one exists. The request stays
/// in flight on the leader's connection for up to `max_wait`.
pub async fn wait_for_records(
    admin: &crate::Admin,
    tp: &crate::TopicPartition,
    offset: i64,
    max_wait: std::time::Duration,
) -> crate::Result<bool> {
    Ok(crate::engine::admin::wait_for_records(&admin.cluster, tp, offset, max_wait).await?)
}

/// Fault injection: makes one of the consumer's background tasks panic, as
/// a bug would. The next `poll` must report it.
pub fn panic_a_consumer_task(consumer: &crate::Consumer) {
    consumer
        .engine_tasks()
        .spawn("injected", async { panic!("injected fault") });
}

/// Fault injection: the consumer's next fetch carries a session the broker
/// does not know (`unknown_id`: FETCH_SESSION_ID_NOT_FOUND) or an epoch it
/// does not expect (INVALID_FETCH_SESSION_EPOCH), as after a broker restart
/// or a lost response.
pub fn break_fetch_session(consumer: &crate::Consumer, unknown_id: bool) {
    consumer.inject_session_fault(unknown_id);
}

/// Fault injection: makes one of the producer's background tasks panic.
/// The next `send` and `flush` must report it.
pub fn panic_a_producer_task(producer: &crate::Producer) {
    producer
        .engine_tasks()
        .spawn("injected", async { panic!("injected fault") });
}
