//! Record batch encode/decode (filled in by the producer and consumer engines).
