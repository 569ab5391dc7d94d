//! Kafka's topic-name rules (`org.apache.kafka.common.internals.Topic`),
//! checked locally so a bad name fails at once instead of after a metadata wait.

use crate::error::{Error, Result};

/// Longest legal topic name.
pub const MAX_TOPIC_NAME_LEN: usize = 249;

/// Checks `name` against Kafka's rules: 1 to 249 characters of ASCII
/// letters, digits, `.`, `_` and `-`, and neither `.` nor `..`.
pub fn validate_topic_name(name: &str) -> Result<()> {
    let bad = |why: &str| {
        Err(Error::invalid(format!(
            "topic name `{name}` is illegal: {why}"
        )))
    };
    if name.is_empty() {
        return bad("it is empty");
    }
    if name == "." || name == ".." {
        return bad("`.` and `..` are reserved");
    }
    if name.len() > MAX_TOPIC_NAME_LEN {
        return bad(&format!(
            "it is {} characters long, the limit is {MAX_TOPIC_NAME_LEN}",
            name.len()
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return bad(&format!(
            "{c:?} is not allowed (only ASCII letters, digits, `.`, `_` and `-`)"
        ));
    }
    Ok(())
}

/// Checks every name.
pub(crate) fn validate_all<S: AsRef<str>>(names: &[S]) -> Result<()> {
    names
        .iter()
        .try_for_each(|n| validate_topic_name(n.as_ref()))
}

/// Checks the topic of every partition.
pub(crate) fn validate_partitions<'a>(
    tps: impl IntoIterator<Item = &'a crate::types::TopicPartition>,
) -> Result<()> {
    tps.into_iter()
        .try_for_each(|tp| validate_topic_name(&tp.topic))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_rules() {
        for ok in ["a", "events.v1", "__consumer_offsets", "A-b_c.9"] {
            validate_topic_name(ok).unwrap();
        }
        let long = "x".repeat(250);
        for bad in [
            "",
            ".",
            "..",
            "has space",
            "slash/y",
            "ümlaut",
            long.as_str(),
        ] {
            let e = validate_topic_name(bad).unwrap_err();
            assert!(matches!(e, Error::InvalidArgument { .. }), "{bad}: {e}");
            assert!(e.to_string().contains("is illegal"), "{e}");
        }
        validate_topic_name(&"x".repeat(249)).unwrap();
    }
}
