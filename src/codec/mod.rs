//! Wire codec: the only module that names the `kafka_protocol` crate.
//!
//! Depends on: nothing inside the crate. Does no IO: it turns typed requests
//! into length-prefixed frames and frames back into typed responses.

pub(crate) mod batch;
pub(crate) mod compression;
mod decode;
pub(crate) mod group;
mod guard;
pub(crate) mod produce;
pub(crate) mod records;
mod shapes;
pub(crate) mod versions;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Message, StrBytes};

pub(crate) use versions::{ApiVersionRange, Versions};

/// Message types, re-exported so upper layers never name `kafka_protocol`.
pub(crate) mod msg {
    pub(crate) use kafka_protocol::messages::*;
    pub(crate) use kafka_protocol::messages::{
        create_topics_request::{CreatableTopic, CreatableTopicConfig},
        delete_topics_request::DeleteTopicState,
        fetch_request::{FetchPartition, FetchTopic, ForgottenTopic},
        join_group_request::JoinGroupRequestProtocol,
        leave_group_request::MemberIdentity,
        list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic},
        metadata_request::MetadataRequestTopic,
        sync_group_request::SyncGroupRequestAssignment,
    };
    pub(crate) use kafka_protocol::protocol::StrBytes;

    /// A topic name as the protocol types carry it.
    pub(crate) fn topic_name(t: &str) -> TopicName {
        TopicName(StrBytes::from_string(t.to_owned()))
    }
}

/// Errors from encoding or decoding bytes. Cheap to clone so one failure can
/// be handed to every request waiting on a connection.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// A request could not be encoded (a client bug or an oversized field).
    #[error("cannot encode {api} v{version} request: {reason}")]
    Encode {
        api: &'static str,
        version: i16,
        reason: String,
    },
    /// A response did not parse at the negotiated version.
    #[error("malformed {api} v{version} response: {reason}")]
    Decode {
        api: &'static str,
        version: i16,
        reason: String,
    },
    /// A frame shorter than its fixed header.
    #[error("frame of {0} bytes is shorter than a response header")]
    ShortFrame(usize),
    /// A record batch that does not decode, or fails its checks.
    #[error("bad record batch: {0}")]
    Records(String),
    /// Compression or decompression failed, or exceeded its size limit.
    #[error("{codec} compression: {reason}")]
    Compression { codec: &'static str, reason: String },
}

/// Any request type kafka-protocol can encode (the codec's own bound).
pub(crate) trait Wire:
    kafka_protocol::protocol::Request + Message + Encodable + HeaderVersion + Send + 'static
{
}
impl<T> Wire for T where
    T: kafka_protocol::protocol::Request + Message + Encodable + HeaderVersion + Send + 'static
{
}

/// A request type the client knows how to send.
pub(crate) trait Request:
    kafka_protocol::protocol::Request<Response: Throttled>
    + Message
    + Encodable
    + HeaderVersion
    + Send
    + 'static
{
}
impl<T> Request for T where
    T: kafka_protocol::protocol::Request<Response: Throttled>
        + Message
        + Encodable
        + HeaderVersion
        + Send
        + 'static
{
}

/// The broker's `throttle_time_ms` of a response (KIP-219), 0 when the
/// response (or its version) carries none.
pub(crate) trait Throttled {
    fn throttle_time_ms(&self) -> i32;
}

macro_rules! throttled {
    ($($t:ident),* $(;)? $(none: $($n:ident),*)?) => {
        $(impl Throttled for kafka_protocol::messages::$t {
            fn throttle_time_ms(&self) -> i32 {
                self.throttle_time_ms
            }
        })*
        $($(impl Throttled for kafka_protocol::messages::$n {
            fn throttle_time_ms(&self) -> i32 {
                0
            }
        })*)?
    };
}

throttled!(
    ApiVersionsResponse, CreateTopicsResponse, DeleteTopicsResponse, DescribeGroupsResponse,
    FetchResponse, FindCoordinatorResponse, HeartbeatResponse, InitProducerIdResponse,
    JoinGroupResponse, LeaveGroupResponse, ListOffsetsResponse, MetadataResponse,
    OffsetCommitResponse, OffsetFetchResponse, ProduceResponse, SyncGroupResponse,
    DescribeConfigsResponse, CreatePartitionsResponse, DescribeClusterResponse, ListGroupsResponse,
    DeleteGroupsResponse, OffsetDeleteResponse, DeleteRecordsResponse,
    IncrementalAlterConfigsResponse, AlterConfigsResponse, DescribeClientQuotasResponse,
    AlterClientQuotasResponse, ConsumerGroupDescribeResponse;
    none: SaslHandshakeResponse, SaslAuthenticateResponse
);

/// Human name of an API key, for errors and traces.
pub fn api_name(key: i16) -> &'static str {
    use kafka_protocol::messages::ApiKey;
    match ApiKey::try_from(key) {
        Ok(ApiKey::Produce) => "Produce",
        Ok(ApiKey::Fetch) => "Fetch",
        Ok(ApiKey::ListOffsets) => "ListOffsets",
        Ok(ApiKey::Metadata) => "Metadata",
        Ok(ApiKey::OffsetCommit) => "OffsetCommit",
        Ok(ApiKey::OffsetFetch) => "OffsetFetch",
        Ok(ApiKey::FindCoordinator) => "FindCoordinator",
        Ok(ApiKey::JoinGroup) => "JoinGroup",
        Ok(ApiKey::Heartbeat) => "Heartbeat",
        Ok(ApiKey::LeaveGroup) => "LeaveGroup",
        Ok(ApiKey::SyncGroup) => "SyncGroup",
        Ok(ApiKey::DescribeGroups) => "DescribeGroups",
        Ok(ApiKey::ListGroups) => "ListGroups",
        Ok(ApiKey::ApiVersions) => "ApiVersions",
        Ok(ApiKey::CreateTopics) => "CreateTopics",
        Ok(ApiKey::DeleteTopics) => "DeleteTopics",
        Ok(ApiKey::InitProducerId) => "InitProducerId",
        Ok(ApiKey::DescribeConfigs) => "DescribeConfigs",
        Ok(ApiKey::CreatePartitions) => "CreatePartitions",
        Ok(ApiKey::DescribeCluster) => "DescribeCluster",
        Ok(ApiKey::IncrementalAlterConfigs) => "IncrementalAlterConfigs",
        Ok(ApiKey::DeleteRecords) => "DeleteRecords",
        Ok(ApiKey::DeleteGroups) => "DeleteGroups",
        Ok(ApiKey::OffsetDelete) => "OffsetDelete",
        Ok(ApiKey::DescribeClientQuotas) => "DescribeClientQuotas",
        Ok(ApiKey::AlterClientQuotas) => "AlterClientQuotas",
        Ok(ApiKey::ConsumerGroupDescribe) => "ConsumerGroupDescribe",
        Ok(ApiKey::SaslHandshake) => "SaslHandshake",
        Ok(ApiKey::SaslAuthenticate) => "SaslAuthenticate",
        Ok(_) => "Other",
        Err(_) => "Unknown",
    }
}

/// Writes `req`'s body with kafka-protocol.
pub(crate) fn write_request<R: Wire>(
    req: &R,
    buf: &mut BytesMut,
    version: i16,
) -> Result<(), CodecError> {
    let err = |e: anyhow::Error| CodecError::Encode {
        api: api_name(R::KEY),
        version,
        reason: e.to_string(),
    };
    buf.reserve(req.compute_size(version).map_err(err)?);
    req.encode(buf, version).map_err(err)
}

/// A frame of request type `R` (4-byte size, header) whose body `body`
/// writes, into `buf` (cleared first). Produce bodies are written this way
/// by [`produce::write_body`]; every other request by [`write_request`].
pub(crate) fn encode_frame_with<R: Wire>(
    version: i16,
    correlation_id: i32,
    client_id: &str,
    mut buf: BytesMut,
    body: impl FnOnce(&mut BytesMut, i16) -> Result<(), CodecError>,
) -> Result<Bytes, CodecError> {
    let err = |reason: String| CodecError::Encode {
        api: api_name(R::KEY),
        version,
        reason,
    };
    let header = RequestHeader::default()
        .with_request_api_key(R::KEY)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_string(client_id.to_owned())));
    buf.clear();
    buf.put_i32(0); // the size, below
    header
        .encode(&mut buf, R::header_version(version))
        .map_err(|e| err(e.to_string()))?;
    body(&mut buf, version)?;
    let size = i32::try_from(buf.len() - 4).map_err(|_| err(format!("{} bytes", buf.len())))?;
    buf[..4].copy_from_slice(&size.to_be_bytes());
    Ok(buf.freeze())
}

/// Reads the correlation id that starts every response frame (after the size).
pub(crate) fn correlation_id(frame: &[u8]) -> Result<i32, CodecError> {
    match frame.get(..4) {
        Some(b) => Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]])),
        None => Err(CodecError::ShortFrame(frame.len())),
    }
}

/// The error code of an ApiVersions response frame, readable whatever its version.
pub(crate) fn api_versions_error(frame: &[u8]) -> Option<i16> {
    frame.get(4..6).map(|b| i16::from_be_bytes([b[0], b[1]]))
}

/// Decodes a response frame (without its size prefix) at `version`.
pub(crate) fn decode_response<R: Wire>(
    mut frame: Bytes,
    version: i16,
) -> Result<R::Response, CodecError> {
    let err = |e: anyhow::Error| CodecError::Decode {
        api: api_name(R::KEY),
        version,
        reason: e.to_string(),
    };
    let header_version = <R::Response as HeaderVersion>::header_version(version);
    ResponseHeader::decode(&mut frame, header_version).map_err(err)?;
    // kafka-protocol pre-allocates from counts it reads: check they fit first.
    guard::check_response(R::KEY, version, &frame).map_err(|e| err(anyhow::anyhow!(e)))?;
    <R::Response as Decodable>::decode(&mut frame, version).map_err(err)
}

/// A Kafka error code with its protocol name and retriability.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ErrorCode(pub i16);

impl ErrorCode {
    /// The protocol's name for this code, e.g. `TopicAlreadyExists`.
    pub fn name(self) -> String {
        match kafka_protocol::error::ResponseError::try_from_code(self.0) {
            Some(e) => format!("{e:?}"),
            None => format!("UnknownErrorCode({})", self.0),
        }
    }

    /// Whether the protocol guide marks this error as retriable.
    pub fn is_retriable(self) -> bool {
        kafka_protocol::error::ResponseError::try_from_code(self.0)
            .is_some_and(|e| e.is_retriable())
    }

    /// `Some(code)` unless the code means success.
    pub(crate) fn check(code: i16) -> Option<ErrorCode> {
        (code != 0).then_some(ErrorCode(code))
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (code {})", self.name(), self.0)
    }
}

/// Well-known codes the upper layers branch on.
pub(crate) mod codes {
    pub(crate) const UNKNOWN_SERVER_ERROR: i16 = -1;
    pub(crate) const OFFSET_OUT_OF_RANGE: i16 = 1;
    pub(crate) const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
    pub(crate) const LEADER_NOT_AVAILABLE: i16 = 5;
    pub(crate) const NOT_LEADER_OR_FOLLOWER: i16 = 6;
    pub(crate) const MESSAGE_TOO_LARGE: i16 = 10;
    pub(crate) const RECORD_LIST_TOO_LARGE: i16 = 18;
    pub(crate) const COORDINATOR_LOAD_IN_PROGRESS: i16 = 14;
    pub(crate) const COORDINATOR_NOT_AVAILABLE: i16 = 15;
    pub(crate) const NOT_COORDINATOR: i16 = 16;
    pub(crate) const ILLEGAL_GENERATION: i16 = 22;
    pub(crate) const UNKNOWN_MEMBER_ID: i16 = 25;
    pub(crate) const REBALANCE_IN_PROGRESS: i16 = 27;
    pub(crate) const UNSUPPORTED_VERSION: i16 = 35;
    pub(crate) const NOT_CONTROLLER: i16 = 41;
    pub(crate) const OUT_OF_ORDER_SEQUENCE_NUMBER: i16 = 45;
    pub(crate) const DUPLICATE_SEQUENCE_NUMBER: i16 = 46;
    pub(crate) const INVALID_PRODUCER_EPOCH: i16 = 47;
    pub(crate) const UNKNOWN_PRODUCER_ID: i16 = 59;
    pub(crate) const FETCH_SESSION_ID_NOT_FOUND: i16 = 70;
    pub(crate) const INVALID_FETCH_SESSION_EPOCH: i16 = 71;
    pub(crate) const FENCED_LEADER_EPOCH: i16 = 74;
    pub(crate) const MEMBER_ID_REQUIRED: i16 = 79;
    pub(crate) const FENCED_INSTANCE_ID: i16 = 82;
    pub(crate) const PRODUCER_FENCED: i16 = 90;
    pub(crate) const UNKNOWN_LEADER_EPOCH: i16 = 75;
    pub(crate) const UNKNOWN_TOPIC_ID: i16 = 100;

    /// Errors after which the metadata cache is stale.
    pub(crate) fn needs_metadata_refresh(code: i16) -> bool {
        matches!(
            code,
            UNKNOWN_TOPIC_OR_PARTITION
                | LEADER_NOT_AVAILABLE
                | NOT_LEADER_OR_FOLLOWER
                | NOT_CONTROLLER
                | FENCED_LEADER_EPOCH
                | UNKNOWN_LEADER_EPOCH
                | UNKNOWN_TOPIC_ID
        )
    }
}

/// Builds a protocol string.
pub(crate) fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_owned())
}
