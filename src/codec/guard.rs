//! Bounds checks run before kafka-protocol decodes untrusted bytes.
//!
//! kafka-protocol sizes collections from the count it reads
//! (`Vec::with_capacity(n)` for arrays; record batches are read by
//! `decode.rs`, which checks its own counts). A hostile
//! 4-byte count in a small frame would ask for many GB, and a failed
//! allocation aborts the process. These walks prove first that every counted
//! element and every length-prefixed field is really present, so the
//! decoder's allocations stay proportional to the bytes received.

use super::shapes;

/// A field's wire type, as kafka-protocol reads it.
#[derive(Debug)]
pub(super) enum Ty {
    I8,
    I16,
    I32,
    I64,
    Uuid,
    Str,
    CStr,
    Bytes,
    CBytes,
    Arr(&'static Ty),
    CArr(&'static Ty),
    S(&'static St),
}

/// A field present in versions `lo..=hi`.
#[derive(Debug)]
pub(super) struct Fld {
    pub lo: i16,
    pub hi: i16,
    pub ty: Ty,
}

/// A known tagged field, decoded (in versions `lo..=hi`) from the stream itself.
#[derive(Debug)]
pub(super) struct Tag {
    pub tag: u32,
    pub lo: i16,
    pub hi: i16,
    pub ty: Ty,
}

/// A struct's layout; tagged fields follow from version `flex_from`.
#[derive(Debug)]
pub(super) struct St {
    pub name: &'static str,
    pub flex_from: i16,
    pub fields: &'static [Fld],
    pub tags: &'static [Tag],
}

struct Cur<'a>(&'a [u8]);

type R<T> = Result<T, String>;

impl Cur<'_> {
    fn skip(&mut self, n: usize, what: &str) -> R<()> {
        match self.0.get(n..) {
            Some(rest) => {
                self.0 = rest;
                Ok(())
            }
            None => Err(format!(
                "{what} of {n} bytes overruns the {} bytes left",
                self.0.len()
            )),
        }
    }

    fn be<const N: usize>(&mut self) -> R<[u8; N]> {
        let b: [u8; N] = self
            .0
            .get(..N)
            .and_then(|b| b.try_into().ok())
            .ok_or("truncated field")?;
        self.0 = &self.0[N..];
        Ok(b)
    }

    fn i16(&mut self) -> R<i16> {
        Ok(i16::from_be_bytes(self.be()?))
    }

    fn i32(&mut self) -> R<i32> {
        Ok(i32::from_be_bytes(self.be()?))
    }

    /// kafka-protocol's unsigned varint: at most 5 bytes, high bits dropped.
    fn uvar(&mut self) -> R<u32> {
        let mut v = 0u32;
        for i in 0..5 {
            let b = self.be::<1>()?[0] as u32;
            v |= (b & 0x7f) << (i * 7);
            if b < 0x80 {
                break;
            }
        }
        Ok(v)
    }

    /// An element count: each element takes at least one byte.
    fn count(&self, n: usize, what: &str) -> R<()> {
        if n > self.0.len() {
            return Err(format!(
                "{what} count {n} exceeds the {} bytes left",
                self.0.len()
            ));
        }
        Ok(())
    }
}

fn walk(c: &mut Cur, ty: &Ty, v: i16) -> R<()> {
    match ty {
        Ty::I8 => c.skip(1, "int8"),
        Ty::I16 => c.skip(2, "int16"),
        Ty::I32 => c.skip(4, "int32"),
        Ty::I64 => c.skip(8, "int64"),
        Ty::Uuid => c.skip(16, "uuid"),
        Ty::Str => match c.i16()? {
            n if n >= 0 => c.skip(n as usize, "string"),
            -1 => Ok(()),
            n => Err(format!("negative string length {n}")),
        },
        Ty::Bytes => match c.i32()? {
            n if n >= 0 => c.skip(n as usize, "bytes"),
            -1 => Ok(()),
            n => Err(format!("negative bytes length {n}")),
        },
        Ty::CStr | Ty::CBytes => match c.uvar()? {
            0 => Ok(()),
            n => c.skip(n as usize - 1, "compact bytes"),
        },
        Ty::Arr(e) => match c.i32()? {
            n if n >= 0 => elems(c, e, n as usize, v),
            -1 => Ok(()),
            n => Err(format!("negative array length {n}")),
        },
        Ty::CArr(e) => match c.uvar()? {
            0 => Ok(()),
            n => elems(c, e, n as usize - 1, v),
        },
        Ty::S(s) => walk_struct(c, s, v),
    }
}

fn elems(c: &mut Cur, e: &Ty, n: usize, v: i16) -> R<()> {
    c.count(n, "array")?;
    (0..n).try_for_each(|_| walk(c, e, v))
}

fn walk_struct(c: &mut Cur, s: &St, v: i16) -> R<()> {
    for f in s.fields.iter().filter(|f| (f.lo..=f.hi).contains(&v)) {
        walk(c, &f.ty, v).map_err(|e| format!("{}: {e}", s.name))?;
    }
    if v < s.flex_from {
        return Ok(());
    }
    // Each tagged field takes at least two bytes, so the loop ends with the input.
    for _ in 0..c.uvar()? {
        let tag = c.uvar()?;
        let size = c.uvar()? as usize;
        match s
            .tags
            .iter()
            .find(|t| t.tag == tag && (t.lo..=t.hi).contains(&v))
        {
            Some(t) => walk(c, &t.ty, v),
            None => c.skip(size, "tagged field"),
        }
        .map_err(|e| format!("{}: {e}", s.name))?;
    }
    Ok(())
}

/// Checks a response body (after its header) of `api_key` at `version`.
pub(crate) fn check_response(api_key: i16, version: i16, body: &[u8]) -> Result<(), String> {
    let s = shapes::response(api_key).ok_or_else(|| {
        format!("no wire layout for API key {api_key} (run scripts/gen-codec-shapes)")
    })?;
    walk_struct(&mut Cur(body), s, version)
}

/// Checks an embedded message (e.g. `ConsumerProtocolAssignment`) at `version`.
pub(crate) fn check_embedded(name: &str, version: i16, body: &[u8]) -> Result<(), String> {
    let s = shapes::embedded(name)
        .ok_or_else(|| format!("no wire layout for {name} (run scripts/gen-codec-shapes)"))?;
    walk_struct(&mut Cur(body), s, version)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_api_has_a_layout() {
        for api in super::super::versions::ALL {
            assert!(shapes::response(api.key).is_some(), "API key {}", api.key);
        }
    }

    #[test]
    fn hostile_counts_are_refused() {
        // Metadata v12 body: throttle, then brokers as a compact array of 2^32-2.
        let body = [0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f];
        let e = check_response(3, 12, &body).unwrap_err();
        assert!(e.contains("exceeds"), "{e}");
        // Metadata v4: brokers array of i32::MAX.
        let body = [0, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff];
        assert!(check_response(3, 4, &body).is_err());
    }

    #[test]
    fn hostile_embedded_counts_are_refused() {
        // A subscription v0 whose topic count is i32::MAX.
        let e = check_embedded("ConsumerProtocolSubscription", 0, &[0x7f, 0xff, 0xff, 0xff])
            .unwrap_err();
        assert!(e.contains("exceeds"), "{e}");
        assert!(check_embedded(
            "ConsumerProtocolAssignment",
            1,
            &[0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]
        )
        .is_ok());
    }
}
