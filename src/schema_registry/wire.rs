//! Confluent wire format: magic byte 0, the schema id as 4 big-endian
//! bytes, then the Avro binary body.

use super::error::{Error, Result};

/// The first byte of every framed message.
pub const MAGIC_BYTE: u8 = 0;
/// Magic byte plus schema id.
pub const HEADER_LEN: usize = 5;

/// Appends the 5-byte header for schema `id`.
pub fn write_header(id: u32, buf: &mut Vec<u8>) {
    buf.push(MAGIC_BYTE);
    buf.extend_from_slice(&id.to_be_bytes());
}

/// Splits framed bytes into the schema id and the Avro body.
pub fn split(bytes: &[u8]) -> Result<(u32, &[u8])> {
    match bytes {
        [] => Err(Error::WireFormat("empty payload (a null record needs no deserializing)".into())),
        [m, ..] if *m != MAGIC_BYTE => Err(Error::WireFormat(format!(
            "first byte is {m:#04x}, not the magic byte 0x00 (was this written without a schema registry serializer?)"
        ))),
        [_, a, b, c, d, body @ ..] => Ok((u32::from_be_bytes([*a, *b, *c, *d]), body)),
        _ => Err(Error::WireFormat(format!("{} bytes is shorter than the 5-byte header", bytes.len()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip_and_errors() {
        let mut b = Vec::new();
        write_header(0x01020304, &mut b);
        b.push(42);
        assert_eq!(b, [0, 1, 2, 3, 4, 42]);
        assert_eq!(split(&b).unwrap(), (0x01020304, &[42u8][..]));
        assert!(split(&[]).unwrap_err().to_string().contains("empty"));
        assert!(split(&[1, 0, 0, 0, 1])
            .unwrap_err()
            .to_string()
            .contains("magic byte"));
        assert!(split(&[0, 0, 1])
            .unwrap_err()
            .to_string()
            .contains("shorter"));
        assert_eq!(split(&[0, 0, 0, 0, 9]).unwrap(), (9, &[][..]));
    }
}
