//! Consumer groups on the 3-node cluster while brokers die and come back:
//! every record is delivered, nothing committed is delivered again, the
//! commits end at the log end, and the longest pause stays bounded.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use kafka_ingest::{
    Consumer, NewTopic, Producer, ProducerRecord, RebalanceListener, TopicPartition,
};

use crate::support::{cluster_bootstrap, cluster_client, cluster_lock, unique, KilledNode};

const SESSION_TIMEOUT: Duration = Duration::from_secs(10);
const PARTITIONS: i32 = 6;

#[derive(Debug, Clone)]
struct Delivery {
    tp: TopicPartition,
    offset: i64,
    value: usize,
    at: Instant,
    member: usize,
}

/// What every member saw and did, shared by the members of one run.
#[derive(Default)]
struct Log {
    deliveries: Mutex<Vec<Delivery>>,
    /// (partition, committed offset, when the commit was acknowledged).
    commits: Mutex<Vec<(TopicPartition, i64, Instant)>>,
    /// (member, partition, when it was assigned).
    assigned: Mutex<Vec<(usize, TopicPartition, Instant)>>,
    distinct: Mutex<BTreeSet<usize>>,
}

struct Listener {
    member: usize,
    log: Arc<Log>,
}

impl RebalanceListener for Listener {
    fn on_partitions_assigned<'a>(
        &'a self,
        _consumer: &'a Consumer,
        partitions: &'a [TopicPartition],
    ) -> BoxFuture<'a, ()> {
        let now = Instant::now();
        let mut a = self.log.assigned.lock().unwrap();
        for tp in partitions {
            a.push((self.member, tp.clone(), now));
        }
        Box::pin(async {})
    }
}

struct Member {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

async fn start_member(member: usize, group: &str, topic: &str, log: Arc<Log>) -> Member {
    let consumer = Consumer::builder()
        .bootstrap(&cluster_bootstrap())
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set(
            "session.timeout.ms",
            &SESSION_TIMEOUT.as_millis().to_string(),
        )
        .set("heartbeat.interval.ms", "1000")
        .set("request.timeout.ms", "10000")
        .set("default.api.timeout.ms", "30000")
        .set("max.poll.records", "200")
        .rebalance_listener(Arc::new(Listener {
            member,
            log: log.clone(),
        }))
        .build()
        .await
        .unwrap_or_else(|e| panic!("member {member}: {e}"));
    consumer.subscribe(&[topic]).await.unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let task = {
        let stop = stop.clone();
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let records = match consumer.poll(Duration::from_millis(250)).await {
                    Ok(r) => r,
                    Err(e) => {
                        // Transient while brokers restart; the member goes on.
                        eprintln!("member {member}: poll: {e}");
                        continue;
                    }
                };
                if records.is_empty() {
                    continue;
                }
                let now = Instant::now();
                let mut last: BTreeMap<TopicPartition, i64> = BTreeMap::new();
                {
                    let mut d = log.deliveries.lock().unwrap();
                    let mut distinct = log.distinct.lock().unwrap();
                    for r in &records {
                        let value: usize = std::str::from_utf8(r.value.as_deref().unwrap())
                            .unwrap()
                            .parse()
                            .unwrap();
                        let tp = TopicPartition::new(&*r.topic, r.partition);
                        last.insert(tp.clone(), r.offset + 1);
                        distinct.insert(value);
                        d.push(Delivery {
                            tp,
                            offset: r.offset,
                            value,
                            at: now,
                            member,
                        });
                    }
                }
                // At-least-once: commit what was processed, then record it.
                match consumer.commit_offsets(&last).await {
                    Ok(()) => {
                        let at = Instant::now();
                        let mut c = log.commits.lock().unwrap();
                        c.extend(last.into_iter().map(|(tp, o)| (tp, o, at)));
                    }
                    Err(e) => eprintln!("member {member}: commit: {e}"),
                }
            }
            consumer.close().await;
        })
    };
    Member { stop, task }
}

impl Member {
    async fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        tokio::time::timeout(Duration::from_secs(60), self.task)
            .await
            .expect("member stops")
            .unwrap();
    }
}

/// An idempotent producer writing `n` records (values 0..n) at about `rate`/s.
fn produce(
    topic: &str,
    n: usize,
    rate: usize,
    sent: Arc<AtomicUsize>,
) -> tokio::task::JoinHandle<()> {
    let topic = topic.to_owned();
    tokio::spawn(async move {
        let p = Producer::builder()
            .bootstrap(&cluster_bootstrap())
            .set("linger.ms", "5")
            .set("request.timeout.ms", "10000")
            .set("delivery.timeout.ms", "120000")
            .build()
            .await
            .unwrap();
        let start = Instant::now();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        for i in 0..n {
            let due = start + Duration::from_secs_f64(i as f64 / rate as f64);
            tokio::time::sleep_until(due.into()).await;
            let tx = tx.clone();
            p.send_with_callback(
                ProducerRecord::new(&topic)
                    .key(format!("k{}", i % 97))
                    .value(i.to_string()),
                move |r| {
                    let _ = tx.send(r.map(drop).map_err(|e| e.to_string()));
                },
            )
            .await
            .unwrap();
            sent.fetch_add(1, Ordering::Relaxed);
        }
        p.flush().await.unwrap();
        p.close(Duration::from_secs(30)).await;
        drop(tx);
        let mut failed = Vec::new();
        while let Some(r) = rx.recv().await {
            if let Err(e) = r {
                failed.push(e);
            }
        }
        assert!(
            failed.is_empty(),
            "every record acknowledged: {:?}",
            &failed[..failed.len().min(3)]
        );
    })
}

async fn new_topic() -> String {
    let admin = cluster_client().await.admin();
    let topic = unique("group-failover");
    admin
        .create_topic(NewTopic::new(&topic, PARTITIONS, 3).config("min.insync.replicas", "2"))
        .await
        .unwrap();
    topic
}

async fn coordinator_of(group: &str) -> i32 {
    let admin = cluster_client().await.admin();
    admin.describe_group(group).await.unwrap().coordinator
}

async fn wait_all_seen(log: &Log, n: usize, within: Duration) {
    let start = Instant::now();
    while log.distinct.lock().unwrap().len() < n {
        assert!(
            start.elapsed() < within,
            "only {} of {n} records delivered after {within:?}",
            log.distinct.lock().unwrap().len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The checks every run ends with; returns the longest pause between
/// consecutive deliveries.
async fn check(log: &Log, topic: &str, group: &str, n: usize) -> Duration {
    let deliveries = log.deliveries.lock().unwrap().clone();
    let distinct: BTreeSet<usize> = deliveries.iter().map(|d| d.value).collect();
    assert_eq!(distinct.len(), n, "every record delivered at least once");
    assert!(distinct.iter().next_back() == Some(&(n - 1)));

    // Nothing whose commit was acknowledged before a member got its
    // partition is delivered to that member again.
    let commits = log.commits.lock().unwrap().clone();
    let assigned = log.assigned.lock().unwrap().clone();
    let mut violations = Vec::new();
    for d in &deliveries {
        let since = assigned
            .iter()
            .filter(|(m, tp, at)| *m == d.member && *tp == d.tp && *at <= d.at)
            .map(|(_, _, at)| *at)
            .max();
        let Some(since) = since else { continue };
        let committed_before = commits
            .iter()
            .filter(|(tp, _, at)| *tp == d.tp && *at < since)
            .map(|(_, o, _)| *o)
            .max();
        if committed_before.is_some_and(|c| d.offset < c) {
            violations.push((d.tp.clone(), d.offset, committed_before));
        }
    }
    assert!(
        violations.is_empty(),
        "committed records delivered again: {:?}",
        &violations[..violations.len().min(5)]
    );
    let mut per_offset: HashMap<(TopicPartition, i64), usize> = HashMap::new();
    for d in &deliveries {
        *per_offset.entry((d.tp.clone(), d.offset)).or_default() += 1;
    }
    let duplicates: usize = per_offset.values().map(|c| c - 1).sum();

    // The group's commits end at the log end.
    let desc = cluster_client()
        .await
        .admin()
        .describe_group(group)
        .await
        .unwrap();
    let ours: Vec<_> = desc
        .offsets
        .iter()
        .filter(|o| o.partition.topic == topic)
        .collect();
    assert_eq!(ours.len(), PARTITIONS as usize, "{desc:?}");
    for o in &ours {
        assert_eq!(
            o.committed,
            Some(o.log_end),
            "committed = log end for {}",
            o.partition
        );
    }

    let mut times: Vec<Instant> = deliveries.iter().map(|d| d.at).collect();
    times.sort();
    let (longest, at) = times
        .windows(2)
        .map(|w| (w[1] - w[0], w[0]))
        .max()
        .unwrap_or((Duration::ZERO, Instant::now()));
    eprintln!(
        "longest pause began at {:?} since the first delivery",
        at - times[0]
    );
    eprintln!(
        "delivered {} ({} distinct, {duplicates} duplicates); longest pause between records: {longest:?}",
        deliveries.len(),
        distinct.len()
    );
    longest
}

fn kill_later(id: i32, after: Duration, down: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        tokio::time::sleep(after).await;
        let killed = tokio::task::spawn_blocking(move || KilledNode::kill(id))
            .await
            .unwrap();
        tokio::time::sleep(down).await;
        tokio::task::spawn_blocking(move || killed.restart())
            .await
            .unwrap();
    })
}

async fn run_with_kills(members: usize) {
    crate::support::init_logging();
    let _serial = cluster_lock().await;
    let topic = new_topic().await;
    let group = unique("gf");
    let log = Arc::new(Log::default());
    let mut ms = Vec::new();
    for m in 0..members {
        ms.push(start_member(m, &group, &topic, log.clone()).await);
    }
    const N: usize = 60_000;
    let sent = Arc::new(AtomicUsize::new(0));
    let producer = produce(&topic, N, 4_000, sent.clone());
    // Wait until the group consumes, then kill its coordinator, then another node.
    wait_all_seen(&log, 2_000, Duration::from_secs(60)).await;
    let first = coordinator_of(&group).await;
    let second = first % 3 + 1;
    eprintln!("killing node {first} (the coordinator), then node {second}");
    kill_later(first, Duration::ZERO, Duration::from_secs(5))
        .await
        .unwrap();
    kill_later(second, Duration::from_secs(1), Duration::from_secs(5))
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(180), producer)
        .await
        .expect("producer done")
        .unwrap();
    wait_all_seen(&log, N, Duration::from_secs(120)).await;
    for m in ms {
        m.stop().await;
    }
    let longest = check(&log, &topic, &group, N).await;
    assert!(
        longest < SESSION_TIMEOUT + Duration::from_secs(10),
        "the group stalled for {longest:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_member_survives_two_broker_restarts() {
    let _bound = crate::support::watchdog(
        "group_failover::one_member_survives_two_broker_restarts",
        420,
    );
    run_with_kills(1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_members_survive_two_broker_restarts() {
    let _bound = crate::support::watchdog(
        "group_failover::three_members_survive_two_broker_restarts",
        420,
    );
    run_with_kills(3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coordinator_killed_while_a_member_joins() {
    let _bound = crate::support::watchdog(
        "group_failover::coordinator_killed_while_a_member_joins",
        420,
    );
    let _serial = cluster_lock().await;
    let topic = new_topic().await;
    let group = unique("gfj");
    let log = Arc::new(Log::default());
    let mut ms = vec![
        start_member(0, &group, &topic, log.clone()).await,
        start_member(1, &group, &topic, log.clone()).await,
    ];
    const N: usize = 40_000;
    let sent = Arc::new(AtomicUsize::new(0));
    let producer = produce(&topic, N, 4_000, sent.clone());
    wait_all_seen(&log, 2_000, Duration::from_secs(60)).await;
    let coordinator = coordinator_of(&group).await;
    // A third member joins (a rebalance starts) as the coordinator dies.
    let killer = kill_later(
        coordinator,
        Duration::from_millis(100),
        Duration::from_secs(6),
    );
    ms.push(start_member(2, &group, &topic, log.clone()).await);
    killer.await.unwrap();
    tokio::time::timeout(Duration::from_secs(180), producer)
        .await
        .expect("producer done")
        .unwrap();
    wait_all_seen(&log, N, Duration::from_secs(120)).await;
    // All three members end up sharing the partitions.
    let start = Instant::now();
    loop {
        let desc = cluster_client()
            .await
            .admin()
            .describe_group(&group)
            .await
            .unwrap();
        let sizes: Vec<usize> = desc.members.iter().map(|m| m.assignment.len()).collect();
        if desc.state == "Stable" && sizes.len() == 3 && sizes.iter().all(|s| *s == 2) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "group did not settle: {desc:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    for m in ms {
        m.stop().await;
    }
    let longest = check(&log, &topic, &group, N).await;
    assert!(
        longest < SESSION_TIMEOUT + Duration::from_secs(10),
        "the group stalled for {longest:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_killed_during_a_long_poll_fetch() {
    let _bound = crate::support::watchdog(
        "group_failover::broker_killed_during_a_long_poll_fetch",
        420,
    );
    let _serial = cluster_lock().await;
    let topic = new_topic().await;
    let admin = cluster_client().await.admin();
    let leader = admin.describe_topic(&topic).await.unwrap().partitions[0]
        .leader
        .unwrap();
    let request_timeout = Duration::from_secs(10);
    let consumer = Consumer::builder()
        .bootstrap(&cluster_bootstrap())
        .set("auto.offset.reset", "earliest")
        .set("fetch.max.wait.ms", "5000")
        .set(
            "request.timeout.ms",
            &request_timeout.as_millis().to_string(),
        )
        .build()
        .await
        .unwrap();
    let tp = TopicPartition::new(&topic, 0);
    consumer.assign(std::slice::from_ref(&tp)).await.unwrap();
    // Caught up on an empty partition: the fetch now long-polls the leader.
    assert!(consumer
        .poll(Duration::from_secs(2))
        .await
        .unwrap()
        .is_empty());
    tokio::time::sleep(Duration::from_secs(1)).await;
    let killed = tokio::task::spawn_blocking(move || KilledNode::kill(leader))
        .await
        .unwrap();
    let producer = Producer::builder()
        .bootstrap(&cluster_bootstrap())
        .set("request.timeout.ms", "10000")
        .build()
        .await
        .unwrap();
    let meta = producer
        .send(
            ProducerRecord::new(&topic)
                .partition(0)
                .value("after the kill"),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    let acked = Instant::now();
    let mut got = Vec::new();
    while got.is_empty() {
        got = consumer.poll(Duration::from_millis(500)).await.unwrap();
        assert!(
            acked.elapsed() < request_timeout + Duration::from_secs(10),
            "the record written to the new leader did not arrive"
        );
    }
    eprintln!("record arrived {:?} after its ack", acked.elapsed());
    assert_eq!(got[0].offset, meta.offset);
    producer.close(Duration::from_secs(10)).await;
    consumer.close().await;
    tokio::task::spawn_blocking(move || killed.restart())
        .await
        .unwrap();
}
