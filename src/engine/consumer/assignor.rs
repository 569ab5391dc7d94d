//! Partition assignors, computed by the group leader: range, round-robin and
//! cooperative-sticky (KIP-429), with Java's names and results.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::types::TopicPartition;

/// `partition.assignment.strategy` values, by Java's protocol names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Strategy {
    /// `range`: per topic, contiguous ranges in member order.
    Range,
    /// `roundrobin`: all partitions dealt in turn.
    RoundRobin,
    /// `cooperative-sticky`: balanced, keeps owners, moves in two rounds.
    CooperativeSticky,
}

impl Strategy {
    /// The protocol name sent in JoinGroup.
    pub fn name(self) -> &'static str {
        match self {
            Strategy::Range => "range",
            Strategy::RoundRobin => "roundrobin",
            Strategy::CooperativeSticky => "cooperative-sticky",
        }
    }

    /// Parses a protocol name or a Java class name.
    pub fn parse(s: &str) -> Option<Strategy> {
        let s = s.trim();
        let short = s.rsplit('.').next().unwrap_or(s);
        match short {
            "range" | "RangeAssignor" => Some(Strategy::Range),
            "roundrobin" | "RoundRobinAssignor" => Some(Strategy::RoundRobin),
            "cooperative-sticky" | "CooperativeStickyAssignor" => Some(Strategy::CooperativeSticky),
            _ => None,
        }
    }

    /// Whether members keep partitions across a rebalance (incremental).
    pub fn is_cooperative(self) -> bool {
        self == Strategy::CooperativeSticky
    }
}

/// One member as the leader sees it.
#[derive(Debug, Clone)]
pub(crate) struct Member {
    pub id: String,
    pub topics: BTreeSet<String>,
    pub owned: Vec<TopicPartition>,
    pub generation: i32,
}

/// Member id → assigned partitions (every member present, maybe empty).
pub(crate) type Plan = BTreeMap<String, Vec<TopicPartition>>;

pub(crate) fn assign(
    strategy: Strategy,
    members: &[Member],
    partitions: &HashMap<String, i32>,
) -> Plan {
    let mut plan: Plan = members.iter().map(|m| (m.id.clone(), Vec::new())).collect();
    match strategy {
        Strategy::Range => range(members, partitions, &mut plan),
        Strategy::RoundRobin => round_robin(members, partitions, &mut plan),
        Strategy::CooperativeSticky => sticky(members, partitions, &mut plan),
    }
    for v in plan.values_mut() {
        v.sort();
    }
    plan
}

fn range(members: &[Member], partitions: &HashMap<String, i32>, plan: &mut Plan) {
    let topics: BTreeSet<&String> = members.iter().flat_map(|m| m.topics.iter()).collect();
    for topic in topics {
        let Some(&n) = partitions.get(topic) else {
            continue;
        };
        let mut subs: Vec<&str> = members
            .iter()
            .filter(|m| m.topics.contains(topic))
            .map(|m| m.id.as_str())
            .collect();
        subs.sort();
        let (per, extra) = (n as usize / subs.len(), n as usize % subs.len());
        let mut next = 0;
        for (i, m) in subs.iter().enumerate() {
            let count = per + usize::from(i < extra);
            let e = plan.entry(m.to_string()).or_default();
            e.extend((next..next + count).map(|p| TopicPartition::new(topic.as_str(), p as i32)));
            next += count;
        }
    }
}

fn all_partitions(members: &[Member], partitions: &HashMap<String, i32>) -> Vec<TopicPartition> {
    let topics: BTreeSet<&String> = members.iter().flat_map(|m| m.topics.iter()).collect();
    topics
        .into_iter()
        .flat_map(|t| {
            (0..partitions.get(t).copied().unwrap_or(0))
                .map(move |p| TopicPartition::new(t.as_str(), p))
        })
        .collect()
}

fn round_robin(members: &[Member], partitions: &HashMap<String, i32>, plan: &mut Plan) {
    let mut ids: Vec<&Member> = members.iter().collect();
    ids.sort_by(|a, b| a.id.cmp(&b.id));
    let mut turn = 0;
    for tp in all_partitions(members, partitions) {
        // Next member in the circle that subscribes to the topic.
        for _ in 0..ids.len() {
            let m = ids[turn % ids.len()];
            turn += 1;
            if m.topics.contains(&tp.topic) {
                plan.entry(m.id.clone()).or_default().push(tp);
                break;
            }
        }
    }
}

/// Balanced and sticky: members keep what they own up to their fair share;
/// the rest goes to the least-loaded eligible member. Partitions that change
/// owner are left out this round (cooperative protocol, KIP-429): the old
/// owner revokes them and rejoins, and the next round hands them over.
fn sticky(members: &[Member], partitions: &HashMap<String, i32>, plan: &mut Plan) {
    let all = all_partitions(members, partitions);
    let total = all.len();
    let n = members.len().max(1);
    let (floor, extra) = (total / n, total % n);
    // Current owner of each partition: the claim with the highest generation wins.
    let mut owner: HashMap<&TopicPartition, (&str, i32)> = HashMap::new();
    for m in members {
        for tp in &m.owned {
            let better = owner.get(tp).is_none_or(|(_, g)| m.generation > *g);
            if better && m.topics.contains(&tp.topic) {
                owner.insert(tp, (m.id.as_str(), m.generation));
            }
        }
    }
    let valid: BTreeSet<&TopicPartition> = all.iter().collect();
    let mut ordered: Vec<&Member> = members.iter().collect();
    // Members with more owned partitions keep first so the `extra` slots go to them.
    ordered.sort_by(|a, b| b.owned.len().cmp(&a.owned.len()).then(a.id.cmp(&b.id)));
    let mut extra_left = extra;
    let mut taken: BTreeSet<TopicPartition> = BTreeSet::new();
    for m in &ordered {
        let mut keep: Vec<TopicPartition> = m
            .owned
            .iter()
            .filter(|tp| valid.contains(tp) && owner.get(tp).is_some_and(|(o, _)| *o == m.id))
            .cloned()
            .collect();
        keep.sort();
        let cap = if keep.len() > floor && extra_left > 0 {
            extra_left -= 1;
            floor + 1
        } else {
            floor
        };
        keep.truncate(cap);
        taken.extend(keep.iter().cloned());
        plan.insert(m.id.clone(), keep);
    }
    for tp in all.iter().filter(|tp| !taken.contains(*tp)) {
        let load = |m: &Member| plan.get(&m.id).map_or(0, Vec::len);
        let best = ordered
            .iter()
            .filter(|m| m.topics.contains(&tp.topic))
            .min_by_key(|m| load(m));
        if let Some(m) = best {
            plan.entry(m.id.clone()).or_default().push(tp.clone());
        }
    }
    // Cooperative: hold back partitions another member still owns.
    for (id, tps) in plan.iter_mut() {
        tps.retain(|tp| owner.get(tp).is_none_or(|(o, _)| *o == id.as_str()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: &str, topics: &[&str], owned: &[(&str, i32)]) -> Member {
        Member {
            id: id.into(),
            topics: topics.iter().map(|t| t.to_string()).collect(),
            owned: owned
                .iter()
                .map(|(t, p)| TopicPartition::new(*t, *p))
                .collect(),
            generation: 1,
        }
    }

    fn parts(n: i32) -> HashMap<String, i32> {
        [("t".to_string(), n)].into_iter().collect()
    }

    fn ids(v: &[TopicPartition]) -> Vec<i32> {
        v.iter().map(|tp| tp.partition).collect()
    }

    #[test]
    fn range_matches_java() {
        let ms = [
            member("a", &["t"], &[]),
            member("b", &["t"], &[]),
            member("c", &["t"], &[]),
        ];
        let p = assign(Strategy::Range, &ms, &parts(7));
        assert_eq!(ids(&p["a"]), vec![0, 1, 2]);
        assert_eq!(ids(&p["b"]), vec![3, 4]);
        assert_eq!(ids(&p["c"]), vec![5, 6]);
    }

    #[test]
    fn round_robin_deals_in_turn() {
        let ms = [member("b", &["t"], &[]), member("a", &["t"], &[])];
        let p = assign(Strategy::RoundRobin, &ms, &parts(5));
        assert_eq!(ids(&p["a"]), vec![0, 2, 4]);
        assert_eq!(ids(&p["b"]), vec![1, 3]);
    }

    #[test]
    fn sticky_balances_a_new_group() {
        let ms = [
            member("a", &["t"], &[]),
            member("b", &["t"], &[]),
            member("c", &["t"], &[]),
        ];
        let p = assign(Strategy::CooperativeSticky, &ms, &parts(6));
        assert!(p.values().all(|v| v.len() == 2), "{p:?}");
        let all: BTreeSet<_> = p.values().flatten().collect();
        assert_eq!(all.len(), 6);
    }

    #[test]
    fn sticky_adding_a_member_revokes_only_what_moves() {
        let owned_a = [("t", 0), ("t", 1), ("t", 2)];
        let owned_b = [("t", 3), ("t", 4), ("t", 5)];
        let ms = [
            member("a", &["t"], &owned_a),
            member("b", &["t"], &owned_b),
            member("c", &["t"], &[]),
        ];
        let first = assign(Strategy::CooperativeSticky, &ms, &parts(6));
        // Round one: a and b each give one up; c gets nothing yet.
        assert_eq!(first["a"].len(), 2);
        assert_eq!(first["b"].len(), 2);
        assert!(first["c"].is_empty());
        for tp in &first["a"] {
            assert!(
                owned_a.contains(&(tp.topic.as_str(), tp.partition)),
                "a keeps its own"
            );
        }
        // Round two: the revoked ones are free and go to c.
        let ms2 = [
            Member {
                owned: first["a"].clone(),
                ..ms[0].clone()
            },
            Member {
                owned: first["b"].clone(),
                ..ms[1].clone()
            },
            ms[2].clone(),
        ];
        let second = assign(Strategy::CooperativeSticky, &ms2, &parts(6));
        assert_eq!(second["a"], first["a"]);
        assert_eq!(second["b"], first["b"]);
        assert_eq!(second["c"].len(), 2);
    }

    #[test]
    fn strategy_names() {
        assert_eq!(
            Strategy::parse("org.apache.kafka.clients.consumer.CooperativeStickyAssignor"),
            Some(Strategy::CooperativeSticky)
        );
        assert_eq!(Strategy::parse("range"), Some(Strategy::Range));
        assert_eq!(Strategy::parse("sticky"), None);
    }
}
