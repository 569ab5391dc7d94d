//! Part 3: schema evolution under BACKWARD. v1 is registered before part 1;
//! v2 adds `source` with a default and is produced; the group reads both
//! with the v2 reader schema; an incompatible v3 is refused.

use std::time::Duration;

use kafka_ingest::schema_registry::compat::{check_compatibility, CompatibilityLevel};
use kafka_ingest::schema_registry::{parse_schema, AvroSerializer, Error, RecordPart};

use super::group::Group;
use super::{events, heading, producer, Ctx, Outcome};
use crate::out;

const LEVEL: CompatibilityLevel = CompatibilityLevel::Backward;

/// A schema as the registry numbered it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Registered {
    pub id: u32,
    pub version: i32,
}

pub(crate) struct Part3 {
    pub v3_refused: bool,
}

/// Registers `schema` for the demo topic's values (as the serializer
/// does); its id and version.
async fn register(ctx: &Ctx<'_>, schema: &str) -> Outcome<Registered> {
    let s = AvroSerializer::new(
        ctx.registry.clone(),
        &ctx.registry_config,
        RecordPart::Value,
        schema,
    )?;
    let id = s.schema_id(&ctx.names.topic).await?;
    let version = ctx
        .registry
        .versions(&ctx.names.subject)
        .await?
        .into_iter()
        .max()
        .unwrap_or(0);
    Ok(Registered { id, version })
}

/// Sets the subject's level to BACKWARD and registers v1.
pub(crate) async fn register_v1(ctx: &Ctx<'_>) -> Outcome<Registered> {
    ctx.registry
        .set_subject_compatibility(&ctx.names.subject, LEVEL)
        .await?;
    register(ctx, events::V1).await
}

/// The offline checker's verdict on `new` after `previous`, as lines.
fn offline(new: &str, previous: &[&str]) -> Outcome<Vec<String>> {
    let new = parse_schema(new, Some("new schema"))?;
    let previous = previous
        .iter()
        .map(|p| parse_schema(p, Some("previous schema")))
        .collect::<Result<Vec<_>, _>>()?;
    let report = check_compatibility(LEVEL, &new, &previous);
    Ok(report.problems.iter().map(|p| p.to_string()).collect())
}

pub(crate) async fn part3(
    ctx: &Ctx<'_>,
    group: &mut Group,
    v1: Registered,
    v1_events: u64,
    v2_events: u64,
) -> Outcome<Part3> {
    let v2_problems = offline(events::V2, &[events::V1])?;
    let v2 = register(ctx, events::V2).await?;
    let (p, outcomes, _) = producer::send(ctx, events::V2, v1_events, v2_events).await?;
    let pid = p.producer_id_and_epoch();
    p.close(Duration::from_secs(10)).await;
    let failed = outcomes.iter().filter(|o| o.is_err()).count();
    group.caught_up(ctx, v1_events + v2_events).await?;
    let t = group.tally();
    let v3_problems = offline(events::INCOMPATIBLE, &[events::V1, events::V2])?;
    let refusal = match ctx
        .registry
        .register(&ctx.names.subject, events::INCOMPATIBLE)
        .await
    {
        Err(Error::IncompatibleSchema { message, .. }) => Some(message),
        Err(e) => return Err(e.into()),
        Ok(_) => None,
    };

    heading(&format!(
        "3. Schema evolution (subject {}, level {})",
        ctx.names.subject,
        LEVEL.as_str()
    ));
    out!(
        "v1 (schemas/ingest_event_v1.avsc): schema id {}, version {}; part 1's {v1_events} \
         events carry it",
        v1.id,
        v1.version
    );
    out!("v2 (schemas/ingest_event_v2.avsc) adds `source`: [\"null\",\"string\"], default null");
    if v2_problems.is_empty() {
        out!(
            "  offline checker ({} against v1): compatible",
            LEVEL.as_str()
        );
    } else {
        out!(
            "  offline checker: INCOMPATIBLE: {}",
            v2_problems.join("; ")
        );
    }
    out!(
        "  registry: schema id {}, version {}; a new producer{} wrote {} events with it \
         ({failed} failed)",
        v2.id,
        v2.version,
        pid.map(|(id, e)| format!(" (producer id {id}, epoch {e})"))
            .unwrap_or_default(),
        outcomes.len()
    );
    out!("the group reads both with the v2 reader schema:");
    for (writer, n) in &t.by_writer {
        let nulls = t.source_null.get(writer).copied().unwrap_or(0);
        let label = if *writer == v1.id { "v1" } else { "v2" };
        out!("  {n} records written with {label} (id {writer}): `source` null in {nulls}");
        if let Some(s) = t.samples.get(writer) {
            out!("    e.g. {s}");
        }
    }
    if t.undecodable > 0 {
        out!("  {} records did not decode", t.undecodable);
    }
    out!("v3 (schemas/ingest_event_incompatible.avsc: `event_id` becomes a string, `data.unit` has no default):");
    out!(
        "  offline checker ({} against v2): {}",
        LEVEL.as_str(),
        if v3_problems.is_empty() {
            "compatible"
        } else {
            "incompatible"
        }
    );
    for p in &v3_problems {
        out!("    - {p}");
    }
    match &refusal {
        Some(e) => out!("  registry refused it (HTTP 409): {e}"),
        None => out!("  registry ACCEPTED it"),
    }
    Ok(Part3 {
        v3_refused: refusal.is_some(),
    })
}
