//! Frames from our encoder, at the highest version the client speaks, are
//! accepted by the real broker (KAFKA_BOOTSTRAP, default 127.0.0.1:9092) for
//! every API the client uses, and its answers pass our decoder.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use bytes::Bytes;
use kafka_ingest::internals::{self, kp, OutRecord, ProducerStamp};
use kafka_ingest::Compression;
use kp::messages::*;
use kp::protocol::{Decodable, Encodable, HeaderVersion, Message, Request, StrBytes};

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_owned())
}

struct Conn {
    s: TcpStream,
    corr: i32,
    ours: HashMap<i16, i16>,
    broker: HashMap<i16, i16>,
}

impl Conn {
    fn open() -> Conn {
        let addr = std::env::var("KAFKA_BOOTSTRAP").unwrap_or_else(|_| "127.0.0.1:9092".into());
        let addr = addr.split(',').next().unwrap().to_owned();
        let sock = TcpStream::connect(&addr).unwrap_or_else(|e| {
            panic!("Kafka is not reachable at {addr}: {e}; start it with `scripts/harness up`")
        });
        sock.set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let ours = internals::supported_versions()
            .into_iter()
            .map(|(k, _, hi)| (k, hi))
            .collect();
        let mut c = Conn {
            s: sock,
            corr: 0,
            ours,
            broker: HashMap::new(),
        };
        let r: ApiVersionsResponse = c.send(
            &ApiVersionsRequest::default()
                .with_client_software_name(s("protocol-tests"))
                .with_client_software_version(s("0")),
        );
        c.broker = r
            .api_keys
            .iter()
            .map(|k| (k.api_key, k.max_version))
            .collect();
        c
    }

    /// Sends at min(our max, broker max); decodes with the client's codec.
    fn send<R>(&mut self, req: &R) -> R::Response
    where
        R: Request + Message + Encodable + HeaderVersion + Send + 'static,
    {
        let v = self.ours[&R::KEY].min(*self.broker.get(&R::KEY).unwrap_or(&i16::MAX));
        self.corr += 1;
        let frame = internals::encode_request(req, v, self.corr, "protocol-tests").unwrap();
        self.s.write_all(&frame).unwrap();
        let mut len = [0u8; 4];
        self.s
            .read_exact(&mut len)
            .unwrap_or_else(|e| panic!("API {} v{v}: broker closed ({e})", R::KEY));
        let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
        self.s.read_exact(&mut body).unwrap();
        let body = Bytes::from(body);
        assert_eq!(internals::correlation_id(&body).unwrap(), self.corr);
        internals::decode_response(R::KEY, v, body.clone())
            .unwrap_or_else(|e| panic!("API {} v{v}: {e}", R::KEY));
        let mut b = body;
        ResponseHeader::decode(&mut b, R::Response::header_version(v)).unwrap();
        R::Response::decode(&mut b, v).unwrap()
    }
}

#[test]
fn broker_accepts_every_request_we_encode() {
    let mut c = Conn::open();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let topic = format!("pt-accept-{}-{nanos}", std::process::id());
    let group = format!("{topic}-g");
    let tn = || TopicName(s(&topic));

    let m: MetadataResponse = c.send(&MetadataRequest::default().with_topics(None));
    assert!(!m.brokers.is_empty());

    let mut ct = create_topics_request::CreatableTopic::default()
        .with_name(tn())
        .with_num_partitions(1)
        .with_replication_factor(1);
    ct.assignments = Vec::new();
    let r: CreateTopicsResponse = c.send(
        &CreateTopicsRequest::default()
            .with_topics(vec![ct])
            .with_timeout_ms(20_000),
    );
    assert_eq!(r.topics[0].error_code, 0, "{:?}", r.topics[0].error_message);

    let init = InitProducerIdRequest::default()
        .with_transactional_id(None)
        .with_transaction_timeout_ms(i32::MAX)
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    // A fresh broker may still be loading its coordinators:
    // COORDINATOR_LOAD_IN_PROGRESS (14) / COORDINATOR_NOT_AVAILABLE (15).
    let p: InitProducerIdResponse = ask_again(
        || c.send(&init),
        |r: &InitProducerIdResponse| r.error_code,
        &[14, 15],
    );
    assert_eq!(p.error_code, 0);
    let records: Vec<OutRecord> = (0..5)
        .map(|i| OutRecord {
            timestamp: 1_700_000_000_000 + i,
            key: Some(Bytes::from(format!("k{i}"))),
            value: Some(Bytes::from(vec![b'v'; 100 * i as usize])),
            headers: vec![("h".into(), Some(Bytes::from_static(b"x")))],
        })
        .collect();
    let stamp = ProducerStamp {
        producer_id: p.producer_id.0,
        epoch: p.producer_epoch,
        base_sequence: 0,
    };
    let batch = internals::encode_batch(&records, stamp, Compression::Zstd).unwrap();
    let part = produce_request::PartitionProduceData::default()
        .with_index(0)
        .with_records(Some(batch));
    let data = produce_request::TopicProduceData::default()
        .with_name(tn())
        .with_partition_data(vec![part]);
    let produce = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(20_000)
        .with_topic_data(vec![data]);
    // A fresh broker may not lead the new partition yet: NOT_LEADER_OR_FOLLOWER
    // (6) is retriable and nothing was written.
    let r: ProduceResponse = ask_again(
        || c.send(&produce),
        |r: &ProduceResponse| r.responses[0].partition_responses[0].error_code,
        &[6],
    );
    assert_eq!(r.responses[0].partition_responses[0].error_code, 0);

    let lp = list_offsets_request::ListOffsetsPartition::default()
        .with_partition_index(0)
        .with_timestamp(-1);
    let lt = list_offsets_request::ListOffsetsTopic::default()
        .with_name(tn())
        .with_partitions(vec![lp]);
    let r: ListOffsetsResponse = c.send(
        &ListOffsetsRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_topics(vec![lt]),
    );
    assert_eq!(r.topics[0].partitions[0].offset, 5);

    let fp = fetch_request::FetchPartition::default()
        .with_partition(0)
        .with_fetch_offset(0)
        .with_partition_max_bytes(1 << 20);
    let ft = fetch_request::FetchTopic::default()
        .with_topic(tn())
        .with_partitions(vec![fp]);
    let r: FetchResponse = c.send(
        &FetchRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_max_wait_ms(100)
            .with_min_bytes(1)
            .with_max_bytes(1 << 20)
            .with_session_epoch(-1)
            .with_topics(vec![ft]),
    );
    let set = r.responses[0].partitions[0].records.clone().unwrap();
    let got = internals::decode_batches(set, 1 << 20).unwrap();
    assert_eq!(got[0].records.len(), 5);
    assert_eq!(got[0].records[4].value, records[4].value);

    let r: FindCoordinatorResponse = c.send(
        &FindCoordinatorRequest::default()
            .with_key_type(0)
            .with_coordinator_keys(vec![s(&group)]),
    );
    assert_eq!(r.coordinators.len(), 1);

    let sub = {
        let m = ConsumerProtocolSubscription::default().with_topics(vec![s(&topic)]);
        let mut b = bytes::BytesMut::new();
        b.extend_from_slice(&0i16.to_be_bytes());
        m.encode(&mut b, 0).unwrap();
        b.freeze()
    };
    let join = |member: &str| {
        JoinGroupRequest::default()
            .with_group_id(GroupId(s(&group)))
            .with_session_timeout_ms(10_000)
            .with_rebalance_timeout_ms(10_000)
            .with_member_id(s(member))
            .with_protocol_type(s("consumer"))
            .with_protocols(vec![join_group_request::JoinGroupRequestProtocol::default(
            )
            .with_name(s("range"))
            .with_metadata(sub.clone())])
    };
    // A coordinator may still be loading or not yet own the group:
    // COORDINATOR_LOAD_IN_PROGRESS (14), _NOT_AVAILABLE (15), NOT_COORDINATOR (16).
    let first: JoinGroupResponse = ask_again(
        || c.send(&join("")),
        |r: &JoinGroupResponse| r.error_code,
        &[14, 15, 16],
    );
    // 79 = MEMBER_ID_REQUIRED: the broker hands out an id to join with.
    assert!(
        first.error_code == 79 || first.error_code == 0,
        "JoinGroup error {}",
        first.error_code
    );
    let member = first.member_id.to_string();
    let j: JoinGroupResponse = if first.error_code == 79 {
        c.send(&join(&member))
    } else {
        first
    };
    assert_eq!(j.error_code, 0);

    let assignment = {
        let tp = consumer_protocol_assignment::TopicPartition::default()
            .with_topic(tn())
            .with_partitions(vec![0]);
        let m = ConsumerProtocolAssignment::default().with_assigned_partitions(vec![tp]);
        let mut b = bytes::BytesMut::new();
        b.extend_from_slice(&0i16.to_be_bytes());
        m.encode(&mut b, 0).unwrap();
        b.freeze()
    };
    let sa = sync_group_request::SyncGroupRequestAssignment::default()
        .with_member_id(s(&member))
        .with_assignment(assignment);
    let r: SyncGroupResponse = c.send(
        &SyncGroupRequest::default()
            .with_group_id(GroupId(s(&group)))
            .with_generation_id(j.generation_id)
            .with_member_id(s(&member))
            .with_protocol_type(Some(s("consumer")))
            .with_protocol_name(Some(s("range")))
            .with_assignments(vec![sa]),
    );
    assert_eq!(r.error_code, 0);

    let r: HeartbeatResponse = c.send(
        &HeartbeatRequest::default()
            .with_group_id(GroupId(s(&group)))
            .with_generation_id(j.generation_id)
            .with_member_id(s(&member)),
    );
    assert_eq!(r.error_code, 0);

    let op = offset_commit_request::OffsetCommitRequestPartition::default()
        .with_partition_index(0)
        .with_committed_offset(3)
        .with_committed_leader_epoch(-1);
    let ot = offset_commit_request::OffsetCommitRequestTopic::default()
        .with_name(tn())
        .with_partitions(vec![op]);
    let r: OffsetCommitResponse = c.send(
        &OffsetCommitRequest::default()
            .with_group_id(GroupId(s(&group)))
            .with_generation_id_or_member_epoch(j.generation_id)
            .with_member_id(s(&member))
            .with_retention_time_ms(-1)
            .with_topics(vec![ot]),
    );
    assert_eq!(r.topics[0].partitions[0].error_code, 0);

    let ft = offset_fetch_request::OffsetFetchRequestTopic::default()
        .with_name(tn())
        .with_partition_indexes(vec![0]);
    let r: OffsetFetchResponse = c.send(
        &OffsetFetchRequest::default()
            .with_group_id(GroupId(s(&group)))
            .with_topics(Some(vec![ft])),
    );
    assert_eq!(r.topics[0].partitions[0].committed_offset, 3);

    let r: DescribeGroupsResponse =
        c.send(&DescribeGroupsRequest::default().with_groups(vec![GroupId(s(&group))]));
    assert_eq!(r.groups[0].error_code, 0);

    let r: LeaveGroupResponse = c.send(
        &LeaveGroupRequest::default()
            .with_group_id(GroupId(s(&group)))
            .with_members(vec![
                leave_group_request::MemberIdentity::default().with_member_id(s(&member))
            ]),
    );
    assert_eq!(r.error_code, 0);

    let res = describe_configs_request::DescribeConfigsResource::default()
        .with_resource_type(2)
        .with_resource_name(s(&topic));
    let r: DescribeConfigsResponse =
        c.send(&DescribeConfigsRequest::default().with_resources(vec![res]));
    assert_eq!(r.results[0].error_code, 0);

    let dt = delete_topics_request::DeleteTopicState::default().with_name(Some(tn()));
    let r: DeleteTopicsResponse = c.send(
        &DeleteTopicsRequest::default()
            .with_topics(vec![dt])
            .with_timeout_ms(20_000),
    );
    assert_eq!(r.responses[0].error_code, 0);
}

/// Sends again (up to ~10 s) while the reply's code is one of `retriable`,
/// as a client would.
fn ask_again<R>(mut send: impl FnMut() -> R, code: impl Fn(&R) -> i16, retriable: &[i16]) -> R {
    let mut r = send();
    for _ in 0..100 {
        if !retriable.contains(&code(&r)) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
        r = send();
    }
    r
}
