//! Avro serialize/deserialize throughput with a warm schema cache.
fn main() {}
