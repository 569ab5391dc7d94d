//! The Produce request body, written by the client itself: an uncompressed
//! batch is copied once, from its chunks straight into the request frame.
//! (Through kafka-protocol it was copied twice: into a batch buffer, then
//! into the frame.) Produce v3 to v11; flexible from v9.

use bytes::{BufMut, Bytes, BytesMut};

use super::batch::BatchBody;
use super::records::ProducerStamp;
use super::CodecError;

/// One partition's records.
pub(crate) enum Records<'a> {
    /// A batch already encoded (compressed).
    Encoded(Bytes),
    /// An uncompressed batch, written into the frame with its header.
    Body(&'a BatchBody, ProducerStamp),
}

impl Records<'_> {
    fn len(&self) -> usize {
        match self {
            Records::Encoded(b) => b.len(),
            Records::Body(b, _) => b.uncompressed_len(),
        }
    }
}

/// A topic's partitions, in request order.
pub(crate) struct Topic<'a> {
    pub name: &'a str,
    pub partitions: Vec<(i32, Records<'a>)>,
}

/// Writes a ProduceRequest body (no transactional id) after its header.
pub(crate) fn write_body(
    buf: &mut BytesMut,
    version: i16,
    acks: i16,
    timeout_ms: i32,
    topics: &[Topic<'_>],
) -> Result<(), CodecError> {
    let err = |reason: String| CodecError::Encode {
        api: "Produce",
        version,
        reason,
    };
    if !(3..=11).contains(&version) {
        return Err(err("the client writes Produce v3 to v11".into()));
    }
    let flexible = version >= 9;
    // All at once: grown by doubling, the frame (kept for reuse) would
    // hold up to twice what it needs.
    let size: usize = topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|(_, r)| r.len() + 16))
        .chain(topics.iter().map(|t| t.name.len() + 8))
        .sum();
    buf.reserve(size + 16);
    let count = |buf: &mut BytesMut, n: usize| -> Result<(), CodecError> {
        match flexible {
            true => put_uvarint(buf, n as u64 + 1),
            false => buf.put_i32(i32::try_from(n).map_err(|_| err(format!("{n} entries")))?),
        }
        Ok(())
    };
    // Transactional id: null.
    match flexible {
        true => put_uvarint(buf, 0),
        false => buf.put_i16(-1),
    }
    buf.put_i16(acks);
    buf.put_i32(timeout_ms);
    count(buf, topics.len())?;
    for t in topics {
        match flexible {
            true => put_uvarint(buf, t.name.len() as u64 + 1),
            false => buf.put_i16(
                i16::try_from(t.name.len())
                    .map_err(|_| err(format!("topic name of {} bytes", t.name.len())))?,
            ),
        }
        buf.put_slice(t.name.as_bytes());
        count(buf, t.partitions.len())?;
        for (index, records) in &t.partitions {
            buf.put_i32(*index);
            count(buf, records.len())?;
            match records {
                Records::Encoded(b) => buf.put_slice(b),
                Records::Body(b, stamp) => b.write_uncompressed(*stamp, buf)?,
            }
            if flexible {
                put_uvarint(buf, 0); // tagged fields
            }
        }
        if flexible {
            put_uvarint(buf, 0);
        }
    }
    if flexible {
        put_uvarint(buf, 0);
    }
    Ok(())
}

fn put_uvarint(buf: &mut BytesMut, mut v: u64) {
    while v >= 0x80 {
        buf.put_u8(v as u8 | 0x80);
        v >>= 7;
    }
    buf.put_u8(v as u8);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::compression::Compression;
    use crate::codec::records::OutRecord;
    use crate::codec::{encode_frame_with, msg, write_request};
    use msg::produce_request::{PartitionProduceData, TopicProduceData};

    fn body(n: usize, seed: u8) -> BatchBody {
        let mut b = BatchBody::chunked(64, 300);
        for i in 0..n {
            b.push(&OutRecord {
                timestamp: 1_700_000_000_000 + i as i64,
                key: (i % 2 == 0).then(|| Bytes::from(vec![seed; i % 7])),
                value: Some(Bytes::from(vec![seed.wrapping_add(i as u8); 50 + i % 90])),
                headers: vec![("h".into(), Some(Bytes::from_static(b"x")))],
            });
        }
        b
    }

    #[test]
    fn frames_match_kafka_protocol_at_every_version() {
        let stamp = ProducerStamp {
            producer_id: 7,
            epoch: 2,
            base_sequence: 40,
        };
        // Chunked bodies (several chunks each), one compressed batch, two topics.
        let (a0, a3, b1) = (body(20, 1), body(3, 2), body(15, 3));
        let lz4 = b1.encode(stamp, Compression::Lz4).unwrap();
        let ours = |v: i16| {
            let topics = [
                Topic {
                    name: "events",
                    partitions: vec![
                        (0, Records::Body(&a0, stamp)),
                        (3, Records::Body(&a3, ProducerStamp::NONE)),
                    ],
                },
                Topic {
                    name: "other-topic",
                    partitions: vec![(1, Records::Encoded(lz4.clone()))],
                },
            ];
            encode_frame_with::<msg::ProduceRequest>(
                v,
                99,
                "client-1",
                BytesMut::new(),
                |buf, v| write_body(buf, v, -1, 30_000, &topics),
            )
            .unwrap()
        };
        let part = |i: i32, r: Bytes| {
            PartitionProduceData::default()
                .with_index(i)
                .with_records(Some(r))
        };
        let theirs = msg::ProduceRequest::default()
            .with_transactional_id(None)
            .with_acks(-1)
            .with_timeout_ms(30_000)
            .with_topic_data(vec![
                TopicProduceData::default()
                    .with_name(msg::topic_name("events"))
                    .with_partition_data(vec![
                        part(0, a0.encode(stamp, Compression::None).unwrap()),
                        part(
                            3,
                            a3.encode(ProducerStamp::NONE, Compression::None).unwrap(),
                        ),
                    ]),
                TopicProduceData::default()
                    .with_name(msg::topic_name("other-topic"))
                    .with_partition_data(vec![part(1, lz4.clone())]),
            ]);
        for v in 3..=11 {
            let want = encode_frame_with::<msg::ProduceRequest>(
                v,
                99,
                "client-1",
                BytesMut::new(),
                |b, v| write_request(&theirs, b, v),
            )
            .unwrap();
            assert_eq!(ours(v), want, "Produce v{v}");
        }
        let e = encode_frame_with::<msg::ProduceRequest>(12, 1, "c", BytesMut::new(), |buf, v| {
            write_body(buf, v, -1, 1, &[])
        });
        assert!(e.is_err(), "v12 is not written by hand");
    }
}
