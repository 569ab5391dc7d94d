//! Confluent Schema Registry client, Avro serde and an offline compatibility checker.
