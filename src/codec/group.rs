//! The consumer protocol's embedded subscription and assignment (the bytes
//! inside JoinGroup and SyncGroup), encoded exactly as the Java client does.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::consumer_protocol_assignment::{
    ConsumerProtocolAssignment, TopicPartition as AssignedTp,
};
use kafka_protocol::messages::consumer_protocol_subscription::{
    ConsumerProtocolSubscription, TopicPartition as OwnedTp,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

use super::CodecError;

/// Subscription version written (3 adds the rack; readers ignore what they don't know).
const SUBSCRIPTION_VERSION: i16 = 3;
/// Assignment version written; v0..v3 share one layout.
const ASSIGNMENT_VERSION: i16 = 1;

/// A member's subscription metadata.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Subscription {
    pub topics: Vec<String>,
    pub user_data: Option<Bytes>,
    pub owned: Vec<(String, Vec<i32>)>,
    /// -1 when unknown (before v2, cooperative-sticky puts it in user data).
    pub generation: i32,
    pub rack: Option<String>,
}

/// A member's assignment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Assignment {
    pub partitions: Vec<(String, Vec<i32>)>,
    pub user_data: Option<Bytes>,
}

fn bad(what: &str, e: impl std::fmt::Display) -> CodecError {
    CodecError::Decode {
        api: what_static(what),
        version: -1,
        reason: e.to_string(),
    }
}

fn what_static(what: &str) -> &'static str {
    if what == "subscription" {
        "ConsumerProtocolSubscription"
    } else {
        "ConsumerProtocolAssignment"
    }
}

use super::msg::topic_name as name;

pub fn encode_subscription(s: &Subscription) -> Result<Bytes, CodecError> {
    let m = ConsumerProtocolSubscription::default()
        .with_topics(
            s.topics
                .iter()
                .map(|t| StrBytes::from_string(t.clone()))
                .collect(),
        )
        .with_user_data(s.user_data.clone())
        .with_owned_partitions(
            s.owned
                .iter()
                .map(|(t, p)| {
                    OwnedTp::default()
                        .with_topic(name(t))
                        .with_partitions(p.clone())
                })
                .collect(),
        )
        .with_generation_id(s.generation)
        .with_rack_id(s.rack.as_ref().map(|r| StrBytes::from_string(r.clone())));
    let mut buf = BytesMut::new();
    buf.put_i16(SUBSCRIPTION_VERSION);
    m.encode(&mut buf, SUBSCRIPTION_VERSION)
        .map_err(|e| CodecError::Encode {
            api: "ConsumerProtocolSubscription",
            version: SUBSCRIPTION_VERSION,
            reason: e.to_string(),
        })?;
    Ok(buf.freeze())
}

/// Reads a subscription of any version (newer ones at our highest: fields are appended).
pub fn decode_subscription(mut b: Bytes) -> Result<Subscription, CodecError> {
    if b.remaining() < 2 {
        return Err(bad("subscription", "shorter than its version"));
    }
    let v = b.get_i16();
    if v < 0 {
        return Err(bad("subscription", format!("negative version {v}")));
    }
    // kafka-protocol pre-allocates from counts it reads: check they fit first.
    super::guard::check_embedded("ConsumerProtocolSubscription", v.min(3), &b)
        .map_err(|e| bad("subscription", e))?;
    let m = ConsumerProtocolSubscription::decode(&mut b, v.min(3))
        .map_err(|e| bad("subscription", e))?;
    Ok(Subscription {
        topics: m.topics.into_iter().map(|t| t.to_string()).collect(),
        user_data: m.user_data,
        owned: m
            .owned_partitions
            .into_iter()
            .map(|t| (t.topic.0.to_string(), t.partitions))
            .collect(),
        generation: if v >= 2 { m.generation_id } else { -1 },
        rack: m.rack_id.map(|r| r.to_string()),
    })
}

pub fn encode_assignment(a: &Assignment) -> Result<Bytes, CodecError> {
    let m = ConsumerProtocolAssignment::default()
        .with_assigned_partitions(
            a.partitions
                .iter()
                .map(|(t, p)| {
                    AssignedTp::default()
                        .with_topic(name(t))
                        .with_partitions(p.clone())
                })
                .collect(),
        )
        .with_user_data(a.user_data.clone());
    let mut buf = BytesMut::new();
    buf.put_i16(ASSIGNMENT_VERSION);
    m.encode(&mut buf, ASSIGNMENT_VERSION)
        .map_err(|e| CodecError::Encode {
            api: "ConsumerProtocolAssignment",
            version: ASSIGNMENT_VERSION,
            reason: e.to_string(),
        })?;
    Ok(buf.freeze())
}

/// Reads an assignment; an empty buffer is an empty assignment (as Java treats it).
pub fn decode_assignment(mut b: Bytes) -> Result<Assignment, CodecError> {
    if b.is_empty() {
        return Ok(Assignment::default());
    }
    if b.remaining() < 2 {
        return Err(bad("assignment", "shorter than its version"));
    }
    let v = b.get_i16();
    if v < 0 {
        return Err(bad("assignment", format!("negative version {v}")));
    }
    super::guard::check_embedded("ConsumerProtocolAssignment", v.min(3), &b)
        .map_err(|e| bad("assignment", e))?;
    let m =
        ConsumerProtocolAssignment::decode(&mut b, v.min(3)).map_err(|e| bad("assignment", e))?;
    Ok(Assignment {
        partitions: m
            .assigned_partitions
            .into_iter()
            .map(|t| (t.topic.0.to_string(), t.partitions))
            .collect(),
        user_data: m.user_data,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let s = Subscription {
            topics: vec!["a".into(), "b".into()],
            user_data: Some(Bytes::from_static(&[0, 0, 0, 4])),
            owned: vec![("a".into(), vec![0, 2])],
            generation: 4,
            rack: None,
        };
        assert_eq!(
            decode_subscription(encode_subscription(&s).unwrap()).unwrap(),
            s
        );
        let a = Assignment {
            partitions: vec![("a".into(), vec![1, 3])],
            user_data: None,
        };
        assert_eq!(
            decode_assignment(encode_assignment(&a).unwrap()).unwrap(),
            a
        );
        assert_eq!(
            decode_assignment(Bytes::new()).unwrap(),
            Assignment::default()
        );
        assert!(decode_subscription(Bytes::from_static(&[0, 3, 0xff])).is_err());
    }
}
