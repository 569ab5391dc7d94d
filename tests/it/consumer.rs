//! Consumer groups against the real broker.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use kafka_ingest::{
    Consumer, ConsumerRecord, Error, Producer, ProducerRecord, RebalanceListener, TopicPartition,
};

use crate::support::{bootstrap, create_topic, unique};

/// Test defaults: manual commits, from the start, a fast 6 s session.
pub fn builder(group: &str, extra: &[(&str, &str)]) -> kafka_ingest::ConsumerBuilder {
    Consumer::builder()
        .bootstrap(&bootstrap())
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "6000")
        .set("heartbeat.interval.ms", "300")
        .set("fetch.max.wait.ms", "100")
        .properties(extra.iter().copied())
}

pub async fn consumer(group: &str, extra: &[(&str, &str)]) -> Consumer {
    builder(group, extra)
        .build()
        .await
        .unwrap_or_else(|e| panic!("consumer: {e}; is `scripts/harness up` running?"))
}

pub async fn topic_with(partitions: i32, records: usize) -> String {
    let topic = unique("grp");
    create_topic(&topic, partitions).await;
    produce(&topic, 0, records).await;
    topic
}

pub async fn produce(topic: &str, from: usize, n: usize) {
    let p = Producer::builder()
        .bootstrap(&bootstrap())
        .build()
        .await
        .unwrap();
    let mut futs = Vec::new();
    for i in from..from + n {
        futs.push(
            p.send(
                ProducerRecord::new(topic)
                    .key(format!("k{i}"))
                    .value(format!("{i}")),
            )
            .await
            .unwrap(),
        );
    }
    for f in futs {
        f.await.unwrap();
    }
    p.close(Duration::from_secs(5)).await;
}

/// Polls in the background, collecting records, until stopped.
struct Poller {
    consumer: Consumer,
    seen: Arc<Mutex<Vec<ConsumerRecord>>>,
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Poller {
    fn start(consumer: Consumer, commit_each_poll: bool) -> Poller {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let task = {
            let (c, seen, stop) = (consumer.clone(), seen.clone(), stop.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    match c.poll(Duration::from_millis(200)).await {
                        Ok(rs) => {
                            let n = rs.len();
                            seen.lock().unwrap().extend(rs);
                            if commit_each_poll && n > 0 {
                                // A commit racing a rebalance fails (REBALANCE_IN_PROGRESS or a
                                // stale generation); like any app, poll again and rejoin.
                                if let Err(e) = c.commit().await {
                                    eprintln!("commit failed, polling on: {e}");
                                }
                            }
                        }
                        Err(Error::Closed) => break,
                        Err(e) => panic!("poll: {e:?}"),
                    }
                }
            })
        };
        Poller {
            consumer,
            seen,
            stop,
            task,
        }
    }

    fn count(&self) -> usize {
        self.seen.lock().unwrap().len()
    }

    async fn stop(self) -> (Consumer, Vec<ConsumerRecord>) {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.unwrap();
        let seen = self.seen.lock().unwrap().clone();
        (self.consumer, seen)
    }
}

async fn wait_until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn positions(records: &[ConsumerRecord]) -> Vec<(i32, i64)> {
    records.iter().map(|r| (r.partition, r.offset)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_members_split_six_partitions_and_read_everything_once() {
    let _bound = crate::support::watchdog(
        "consumer::three_members_split_six_partitions_and_read_everything_once",
        300,
    );
    let topic = topic_with(6, 3000).await;
    let group = unique("g3");
    let mut pollers = Vec::new();
    for _ in 0..3 {
        let c = consumer(&group, &[]).await;
        c.subscribe(&[&topic]).await.unwrap();
        pollers.push(Poller::start(c, true));
    }
    wait_until("all records", Duration::from_secs(60), || {
        pollers.iter().map(Poller::count).sum::<usize>() >= 3000
    })
    .await;
    wait_until("a stable split", Duration::from_secs(30), || {
        pollers.iter().all(|p| p.consumer.assignment().len() == 2)
    })
    .await;
    let owned: Vec<BTreeSet<TopicPartition>> = pollers
        .iter()
        .map(|p| p.consumer.assignment().into_iter().collect())
        .collect();
    let all: BTreeSet<&TopicPartition> = owned.iter().flatten().collect();
    assert_eq!(
        all.len(),
        6,
        "every partition owned by exactly one member: {owned:?}"
    );
    let mut records = Vec::new();
    for p in pollers {
        let (c, seen) = p.stop().await;
        records.extend(seen);
        c.close().await;
    }
    let unique_pos: HashSet<(i32, i64)> = positions(&records).into_iter().collect();
    assert_eq!(unique_pos.len(), 3000, "every record consumed");
    assert_eq!(records.len(), 3000, "and only once");
}

/// Records every callback.
#[derive(Default)]
struct Recorder {
    revoked: Mutex<Vec<TopicPartition>>,
    assigned: Mutex<Vec<TopicPartition>>,
    commit_on_revoke: bool,
    committed_at_revoke: Mutex<BTreeMap<TopicPartition, i64>>,
}

impl RebalanceListener for Recorder {
    fn on_partitions_revoked<'a>(
        &'a self,
        consumer: &'a Consumer,
        partitions: &'a [TopicPartition],
    ) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            self.revoked
                .lock()
                .unwrap()
                .extend(partitions.iter().cloned());
            if self.commit_on_revoke {
                let offsets: BTreeMap<TopicPartition, i64> = partitions
                    .iter()
                    .filter_map(|tp| consumer.position(tp).map(|o| (tp.clone(), o)))
                    .collect();
                consumer.commit_offsets(&offsets).await.unwrap();
                self.committed_at_revoke.lock().unwrap().extend(offsets);
            }
        })
    }

    fn on_partitions_assigned<'a>(
        &'a self,
        _: &'a Consumer,
        partitions: &'a [TopicPartition],
    ) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            self.assigned
                .lock()
                .unwrap()
                .extend(partitions.iter().cloned())
        })
    }
}

async fn listening(group: &str, l: Arc<Recorder>, extra: &[(&str, &str)]) -> Consumer {
    builder(group, extra)
        .rebalance_listener(l)
        .build()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cooperative_sticky_moves_only_what_it_must() {
    let _bound =
        crate::support::watchdog("consumer::cooperative_sticky_moves_only_what_it_must", 300);
    let topic = topic_with(6, 60).await;
    let group = unique("coop");
    let coop = [("partition.assignment.strategy", "cooperative-sticky")];
    let mut members = Vec::new();
    for _ in 0..3 {
        let l = Arc::new(Recorder::default());
        let c = listening(&group, l.clone(), &coop).await;
        c.subscribe(&[&topic]).await.unwrap();
        members.push((Poller::start(c, true), l));
    }
    wait_until("3 balanced members", Duration::from_secs(30), || {
        members
            .iter()
            .all(|(p, _)| p.consumer.assignment().len() == 2)
    })
    .await;
    let before: Vec<BTreeSet<TopicPartition>> = members
        .iter()
        .map(|(p, _)| p.consumer.assignment().into_iter().collect())
        .collect();
    for (_, l) in &members {
        l.revoked.lock().unwrap().clear();
    }
    let l4 = Arc::new(Recorder::default());
    let c4 = listening(&group, l4.clone(), &coop).await;
    c4.subscribe(&[&topic]).await.unwrap();
    let p4 = Poller::start(c4, true);
    wait_until(
        "the 4th member to get partitions",
        Duration::from_secs(30),
        || !p4.consumer.assignment().is_empty(),
    )
    .await;
    wait_until("4 balanced members", Duration::from_secs(30), || {
        let n: Vec<usize> = members
            .iter()
            .map(|(p, _)| p.consumer.assignment().len())
            .collect();
        n.iter().sum::<usize>() + p4.consumer.assignment().len() == 6
            && n.iter().all(|x| (1..=2).contains(x))
    })
    .await;
    let moved: BTreeSet<TopicPartition> = p4.consumer.assignment().into_iter().collect();
    assert!(!moved.is_empty());
    for (i, (p, l)) in members.iter().enumerate() {
        let now: BTreeSet<TopicPartition> = p.consumer.assignment().into_iter().collect();
        let revoked: BTreeSet<TopicPartition> = l.revoked.lock().unwrap().iter().cloned().collect();
        // Only partitions that left this member were revoked; the rest stayed put.
        assert!(
            now.is_subset(&before[i]),
            "member {i} gained {now:?} from {:?}",
            before[i]
        );
        assert_eq!(
            revoked,
            before[i].difference(&now).cloned().collect(),
            "member {i}: revoked only what moved"
        );
        assert!(revoked.is_subset(&moved), "member {i}");
    }
    for (p, _) in members {
        p.stop().await.0.close().await;
    }
    p4.stop().await.0.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_close_rebalances_at_once_and_a_killed_member_expires() {
    let _bound = crate::support::watchdog(
        "consumer::graceful_close_rebalances_at_once_and_a_killed_member_expires",
        300,
    );
    let topic = topic_with(4, 0).await;
    let group = unique("leave");
    let a = consumer(&group, &[]).await;
    let b = consumer(&group, &[]).await;
    a.subscribe(&[&topic]).await.unwrap();
    b.subscribe(&[&topic]).await.unwrap();
    let pa = Poller::start(a, false);
    let pb = Poller::start(b, false);
    wait_until("a split", Duration::from_secs(30), || {
        pa.consumer.assignment().len() == 2 && pb.consumer.assignment().len() == 2
    })
    .await;
    // Graceful: LeaveGroup means no waiting for the 6 s session timeout.
    let (a, _) = pa.stop().await;
    let start = Instant::now();
    a.close().await;
    wait_until("b to own everything", Duration::from_secs(20), || {
        pb.consumer.assignment().len() == 4
    })
    .await;
    let took = start.elapsed();
    eprintln!("rebalance after graceful close took {took:?}");
    assert!(
        took < Duration::from_secs(6),
        "well inside the session timeout: {took:?}"
    );

    // Killed: a member that just vanishes (no LeaveGroup) is expired by the session timeout.
    let c = consumer(&group, &[]).await;
    c.subscribe(&[&topic]).await.unwrap();
    let pc = Poller::start(c, false);
    wait_until("a split again", Duration::from_secs(30), || {
        pc.consumer.assignment().len() == 2
    })
    .await;
    let (c, _) = pc.stop().await;
    let start = Instant::now();
    drop(c); // no close: heartbeats stop, nothing is sent
    wait_until("b to own everything again", Duration::from_secs(30), || {
        pb.consumer.assignment().len() == 4
    })
    .await;
    let took = start.elapsed();
    eprintln!("rebalance after a killed member took {took:?}");
    assert!(
        took >= Duration::from_secs(3),
        "only after the session timeout: {took:?}"
    );
    pb.stop().await.0.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uncommitted_records_are_delivered_again() {
    let _bound = crate::support::watchdog("consumer::uncommitted_records_are_delivered_again", 300);
    let topic = topic_with(1, 100).await;
    let group = unique("alo");
    let a = consumer(&group, &[("max.poll.records", "30")]).await;
    a.subscribe(&[&topic]).await.unwrap();
    let mut got = Vec::new();
    while got.len() < 60 {
        got.extend(a.poll(Duration::from_secs(1)).await.unwrap());
        if got.len() == 30 {
            a.commit().await.unwrap(); // processed the first batch
        }
    }
    assert_eq!(got.len(), 60);
    drop(a); // crash before committing the second batch
    let b = consumer(&group, &[]).await;
    b.subscribe(&[&topic]).await.unwrap();
    let mut again = Vec::new();
    while again.len() < 70 {
        again.extend(b.poll(Duration::from_secs(1)).await.unwrap());
    }
    assert_eq!(
        again.first().map(|r| r.offset),
        Some(30),
        "resumes at the last commit, so 30..60 come again"
    );
    assert_eq!(
        positions(&again),
        (30..100).map(|o| (0, o)).collect::<Vec<_>>(),
        "nothing skipped"
    );
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offsets_committed_on_revoke_are_where_the_next_owner_starts() {
    let _bound = crate::support::watchdog(
        "consumer::offsets_committed_on_revoke_are_where_the_next_owner_starts",
        300,
    );
    let topic = topic_with(2, 400).await;
    let group = unique("revoke");
    let la = Arc::new(Recorder {
        commit_on_revoke: true,
        ..Default::default()
    });
    let a = listening(&group, la.clone(), &[("max.poll.records", "50")]).await;
    a.subscribe(&[&topic]).await.unwrap();
    let mut a_seen = Vec::new();
    while a_seen.len() < 100 {
        a_seen.extend(a.poll(Duration::from_secs(1)).await.unwrap());
    }
    let pa = Poller::start(a, false);
    let b = consumer(&group, &[]).await;
    b.subscribe(&[&topic]).await.unwrap();
    let pb = Poller::start(b, false);
    wait_until("b to get a partition", Duration::from_secs(30), || {
        !pb.consumer.assignment().is_empty()
    })
    .await;
    // New records after the handover, so b has something past a's commit.
    produce(&topic, 400, 100).await;
    wait_until("b to read", Duration::from_secs(30), || pb.count() > 0).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (a, a_more) = pa.stop().await;
    let (b, b_seen) = pb.stop().await;
    let committed = la.committed_at_revoke.lock().unwrap().clone();
    assert!(
        !committed.is_empty(),
        "a committed in on_partitions_revoked"
    );
    for (tp, off) in &committed {
        if b.assignment().contains(tp) {
            let first = b_seen
                .iter()
                .filter(|r| r.partition == tp.partition)
                .map(|r| r.offset)
                .min();
            assert_eq!(first, Some(*off), "b starts exactly at a's commit on {tp}");
        }
    }
    // No record of a moved partition is read by both (a stopped at its commit).
    let a_pos: HashSet<(i32, i64)> = positions(&a_seen)
        .into_iter()
        .chain(positions(&a_more))
        .collect();
    assert!(
        positions(&b_seen).iter().all(|p| !a_pos.contains(p)),
        "no duplicates across the handover"
    );
    a.close().await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_partition_gets_nothing_and_the_member_stays() {
    let _bound = crate::support::watchdog(
        "consumer::paused_partition_gets_nothing_and_the_member_stays",
        300,
    );
    let topic = topic_with(2, 0).await;
    let group = unique("pause");
    let c = consumer(&group, &[]).await;
    c.subscribe(&[&topic]).await.unwrap();
    while c.assignment().len() < 2 {
        c.poll(Duration::from_millis(200)).await.unwrap();
    }
    let gen_before = c.group_generation().unwrap();
    let p0 = TopicPartition::new(&topic, 0);
    c.pause(std::slice::from_ref(&p0));
    assert_eq!(c.paused(), vec![p0.clone()]);
    let p = Producer::builder()
        .bootstrap(&bootstrap())
        .build()
        .await
        .unwrap();
    for i in 0..20 {
        p.send(
            ProducerRecord::new(&topic)
                .partition(i % 2)
                .value(format!("{i}")),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    }
    // Paused for longer than the 6 s session timeout, still polling.
    let start = Instant::now();
    let mut seen = Vec::new();
    while start.elapsed() < Duration::from_secs(8) {
        seen.extend(c.poll(Duration::from_millis(300)).await.unwrap());
    }
    assert!(
        seen.iter().all(|r| r.partition == 1),
        "nothing from the paused partition"
    );
    assert_eq!(seen.len(), 10);
    assert_eq!(
        c.group_generation().unwrap(),
        gen_before,
        "no rebalance: the member was never kicked out"
    );
    c.resume(&[p0]);
    let mut more = Vec::new();
    while more.len() < 10 {
        more.extend(c.poll(Duration::from_secs(1)).await.unwrap());
    }
    assert!(more.iter().all(|r| r.partition == 0));
    c.close().await;
    p.close(Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_member_restart_causes_no_rebalance() {
    let _bound =
        crate::support::watchdog("consumer::static_member_restart_causes_no_rebalance", 300);
    let topic = topic_with(4, 0).await;
    let group = unique("static");
    let a = consumer(&group, &[("group.instance.id", "instance-a")]).await;
    let b = consumer(&group, &[("group.instance.id", "instance-b")]).await;
    a.subscribe(&[&topic]).await.unwrap();
    b.subscribe(&[&topic]).await.unwrap();
    let pa = Poller::start(a, false);
    let pb = Poller::start(b, false);
    wait_until("a split", Duration::from_secs(30), || {
        pa.consumer.assignment().len() == 2 && pb.consumer.assignment().len() == 2
    })
    .await;
    let (a, _) = pa.stop().await;
    let a_parts = a.assignment();
    let b_gen = pb.consumer.group_generation().unwrap().1;
    a.close().await; // a static member does not send LeaveGroup
    let a2 = consumer(&group, &[("group.instance.id", "instance-a")]).await;
    a2.subscribe(&[&topic]).await.unwrap();
    while a2.assignment().is_empty() {
        a2.poll(Duration::from_millis(200)).await.unwrap();
    }
    assert_eq!(a2.assignment(), a_parts, "same partitions back");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        pb.consumer.group_generation().unwrap().1,
        b_gen,
        "b saw no rebalance"
    );
    assert_eq!(pb.consumer.assignment().len(), 2);
    a2.close().await;
    pb.stop().await.0.close().await;
}

#[tokio::test]
async fn assign_seek_committed_and_reset_none() {
    let _bound = crate::support::watchdog("consumer::assign_seek_committed_and_reset_none", 300);
    let topic = topic_with(1, 50).await;
    let tp = TopicPartition::new(&topic, 0);
    let group = unique("assign");
    let c = consumer(&group, &[]).await;
    c.assign(std::slice::from_ref(&tp)).await.unwrap();
    let mut got = Vec::new();
    while got.len() < 50 {
        got.extend(c.poll(Duration::from_secs(1)).await.unwrap());
    }
    assert_eq!(positions(&got), (0..50).map(|o| (0, o)).collect::<Vec<_>>());
    c.seek(&tp, 45).unwrap();
    let again = c.poll(Duration::from_secs(5)).await.unwrap();
    assert_eq!(again.first().map(|r| r.offset), Some(45));
    assert_eq!(c.position(&tp), Some(50));
    c.commit_async().await.unwrap().unwrap();
    assert_eq!(
        c.committed(std::slice::from_ref(&tp)).await.unwrap()[&tp],
        Some(50)
    );
    c.seek_to_beginning(std::slice::from_ref(&tp))
        .await
        .unwrap();
    assert_eq!(c.poll(Duration::from_secs(5)).await.unwrap()[0].offset, 0);
    c.close().await;

    let none = consumer(&unique("none"), &[("auto.offset.reset", "none")]).await;
    none.assign(&[tp]).await.unwrap();
    let e = none.poll(Duration::from_secs(2)).await.unwrap_err();
    assert!(matches!(e, Error::NoOffset { .. }), "{e:?}");
    none.close().await;
}

#[tokio::test]
async fn stream_yields_records_in_order() {
    let _bound = crate::support::watchdog("consumer::stream_yields_records_in_order", 300);
    use futures_util::StreamExt;
    let topic = topic_with(1, 20).await;
    let c = consumer(&unique("stream"), &[]).await;
    c.subscribe(&[&topic]).await.unwrap();
    let got: Vec<i64> = c
        .stream()
        .take(20)
        .map(|r| r.unwrap().offset)
        .collect()
        .await;
    assert_eq!(got, (0..20).collect::<Vec<_>>());
    c.close().await;
}
