//! AMF3 (Adobe "AMF 3 Specification", January 2013), only as far as RTMP needs it:
//! values after the AMF0 AVM+ switch marker (AMF0 spec §3.1) in command messages
//! (type 17) and data messages (type 15) sent by Flash/AIR clients.
//!
//! String references are resolved (and charged to the decoding budget of
//! [`super::amf0::Amf0Limits::max_string_bytes`] each time).
//! Object references (the shared table of AMF3 §2.2 for dates, arrays, objects, XML,
//! byte arrays, vectors and dictionaries) are kept as [`Value::Reference`] rather than
//! resolved, so decoding never builds cyclic or exponentially shared structures.
//! Externalizable objects are only understood for the two Flex wrapper classes
//! whose body is a single AMF3 value; other classes are [`RtmpError::Unsupported`].
//!
//! The encoder always writes inline values (it never emits references), so a
//! decode → encode round trip is byte-exact only for reference-free input.

use bytes::BufMut;

use super::amf0::Budget;
use super::error::RtmpError;
use super::reader::{Reader, lossy_string};

/// AMF3 type markers (AMF3 spec §3.1).
pub mod marker {
    /// undefined-marker.
    pub const UNDEFINED: u8 = 0x00;
    /// null-marker.
    pub const NULL: u8 = 0x01;
    /// false-marker.
    pub const FALSE: u8 = 0x02;
    /// true-marker.
    pub const TRUE: u8 = 0x03;
    /// integer-marker: U29, 29-bit signed.
    pub const INTEGER: u8 = 0x04;
    /// double-marker.
    pub const DOUBLE: u8 = 0x05;
    /// string-marker.
    pub const STRING: u8 = 0x06;
    /// xml-doc-marker.
    pub const XML_DOC: u8 = 0x07;
    /// date-marker.
    pub const DATE: u8 = 0x08;
    /// array-marker.
    pub const ARRAY: u8 = 0x09;
    /// object-marker.
    pub const OBJECT: u8 = 0x0A;
    /// xml-marker.
    pub const XML: u8 = 0x0B;
    /// byte-array-marker.
    pub const BYTE_ARRAY: u8 = 0x0C;
    /// vector-int-marker.
    pub const VECTOR_INT: u8 = 0x0D;
    /// vector-uint-marker.
    pub const VECTOR_UINT: u8 = 0x0E;
    /// vector-double-marker.
    pub const VECTOR_DOUBLE: u8 = 0x0F;
    /// vector-object-marker.
    pub const VECTOR_OBJECT: u8 = 0x10;
    /// dictionary-marker.
    pub const DICTIONARY: u8 = 0x11;
}

/// One AMF3 value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// AMF3 §3.2.
    Undefined,
    /// AMF3 §3.3.
    Null,
    /// AMF3 §3.4 / §3.5.
    Boolean(bool),
    /// AMF3 §3.6: 29-bit signed integer.
    Integer(i32),
    /// AMF3 §3.7.
    Double(f64),
    /// AMF3 §3.8.
    String(String),
    /// AMF3 §3.9 (legacy XMLDocument).
    XmlDocument(String),
    /// AMF3 §3.10: milliseconds since the epoch, UTC.
    Date(f64),
    /// AMF3 §3.11: associative part then dense part.
    Array {
        /// Named entries.
        assoc: Vec<(String, Value)>,
        /// Ordinal entries.
        dense: Vec<Value>,
    },
    /// AMF3 §3.12, a non-externalizable object.
    Object {
        /// Class name, empty for anonymous objects.
        class_name: String,
        /// Sealed members, in trait order.
        sealed: Vec<(String, Value)>,
        /// Dynamic members, `None` if the traits are not dynamic.
        dynamic: Option<Vec<(String, Value)>>,
    },
    /// AMF3 §3.12, an externalizable object of a known Flex wrapper class
    /// (`flex.messaging.io.ArrayCollection` / `ObjectProxy`): one inner value.
    Externalizable {
        /// The class name.
        class_name: String,
        /// The wrapped value.
        inner: Box<Value>,
    },
    /// AMF3 §3.13 (E4X XML).
    Xml(String),
    /// AMF3 §3.14.
    ByteArray(Vec<u8>),
    /// AMF3 §3.15 Vector.&lt;int&gt;.
    VectorInt {
        /// Fixed-length flag.
        fixed: bool,
        /// Items.
        items: Vec<i32>,
    },
    /// AMF3 §3.15 Vector.&lt;uint&gt;.
    VectorUint {
        /// Fixed-length flag.
        fixed: bool,
        /// Items.
        items: Vec<u32>,
    },
    /// AMF3 §3.15 Vector.&lt;Number&gt;.
    VectorDouble {
        /// Fixed-length flag.
        fixed: bool,
        /// Items.
        items: Vec<f64>,
    },
    /// AMF3 §3.15 Vector.&lt;Object&gt;.
    VectorObject {
        /// Fixed-length flag.
        fixed: bool,
        /// Element type name.
        type_name: String,
        /// Items.
        items: Vec<Value>,
    },
    /// AMF3 §3.16.
    Dictionary {
        /// Weak-keys flag.
        weak_keys: bool,
        /// Key/value pairs.
        entries: Vec<(Value, Value)>,
    },
    /// A reference into the object table (AMF3 §2.2), left unresolved.
    Reference {
        /// The marker of the referring value.
        marker: u8,
        /// Index into the object reference table.
        index: u32,
    },
}

impl Value {
    /// String content of String / XML values.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) | Value::XmlDocument(s) | Value::Xml(s) => Some(s),
            _ => None,
        }
    }

    /// Numeric value of Integer / Double.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Integer(i) => Some(f64::from(*i)),
            Value::Double(d) => Some(*d),
            _ => None,
        }
    }

    /// Looks up a member of an object (sealed then dynamic) or an array's
    /// associative part.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Object { sealed, dynamic, .. } => {
                find_member(sealed, key).or_else(|| dynamic.as_deref().and_then(|d| find_member(d, key)))
            }
            Value::Array { assoc, .. } => find_member(assoc, key),
            _ => None,
        }
    }
}

fn find_member<'v>(list: &'v [(String, Value)], key: &str) -> Option<&'v Value> {
    list.iter().find(|(k, _)| k == key).map(|(_, v)| v)
}

const MAX_U29: u32 = (1 << 29) - 1;

#[derive(Debug, Clone)]
struct Traits {
    class_name: String,
    sealed: Vec<String>,
    dynamic: bool,
    externalizable: bool,
}

/// Per-switch decoding context: AMF3 reference tables (AMF3 spec §2.2).
struct Ctx<'b> {
    budget: &'b mut Budget,
    strings: Vec<String>,
    traits: Vec<Traits>,
    objects: u32,
}

/// Decodes one AMF3 value, with fresh reference tables, from an AMF0 reader.
pub(crate) fn decode_value_in(r: &mut Reader<'_>, budget: &mut Budget, depth: usize) -> Result<Value, RtmpError> {
    let mut ctx = Ctx { budget, strings: Vec::new(), traits: Vec::new(), objects: 0 };
    ctx.value(r, depth)
}

fn read_u29(r: &mut Reader<'_>) -> Result<u32, RtmpError> {
    let mut v: u32 = 0;
    for _ in 0..3 {
        let b = r.u8()?;
        if b & 0x80 == 0 {
            return Ok((v << 7) | u32::from(b));
        }
        v = (v << 7) | u32::from(b & 0x7F);
    }
    Ok((v << 8) | u32::from(r.u8()?))
}

fn malformed(detail: &'static str) -> RtmpError {
    RtmpError::malformed("AMF3 value", detail)
}

impl Ctx<'_> {
    fn string(&mut self, r: &mut Reader<'_>) -> Result<String, RtmpError> {
        let h = read_u29(r)?;
        if h & 1 == 0 {
            let s = self.strings.get((h >> 1) as usize).ok_or_else(|| malformed("string reference out of range"))?;
            self.budget.string(s.len())?;
            return Ok(s.clone());
        }
        let len = (h >> 1) as usize;
        self.budget.string(len)?;
        let s = lossy_string(r.bytes(len)?);
        if !s.is_empty() {
            self.strings.push(s.clone());
        }
        Ok(s)
    }

    /// Reads a U29 header of a referenceable value. `Ok(Err(reference))` for a
    /// reference, `Ok(Ok(payload))` (header >> 1) for an inline value, which is
    /// given the next object table index.
    fn object_header(&mut self, r: &mut Reader<'_>, m: u8) -> Result<Result<u32, Value>, RtmpError> {
        let h = read_u29(r)?;
        if h & 1 == 0 {
            if h >> 1 >= self.objects {
                return Err(malformed("object reference out of range"));
            }
            return Ok(Err(Value::Reference { marker: m, index: h >> 1 }));
        }
        self.objects = self.objects.saturating_add(1);
        Ok(Ok(h >> 1))
    }

    fn value(&mut self, r: &mut Reader<'_>, depth: usize) -> Result<Value, RtmpError> {
        self.budget.value()?;
        let m = r.u8()?;
        Ok(match m {
            marker::UNDEFINED => Value::Undefined,
            marker::NULL => Value::Null,
            marker::FALSE => Value::Boolean(false),
            marker::TRUE => Value::Boolean(true),
            marker::INTEGER => {
                let u = read_u29(r)?;
                // Sign-extend the 29-bit value (AMF3 §3.6).
                Value::Integer(((u << 3) as i32) >> 3)
            }
            marker::DOUBLE => Value::Double(r.f64()?),
            marker::STRING => Value::String(self.string(r)?),
            marker::XML_DOC | marker::XML | marker::BYTE_ARRAY => {
                let len = match self.object_header(r, m)? {
                    Ok(len) => len as usize,
                    Err(reference) => return Ok(reference),
                };
                self.budget.string(len)?;
                let bytes = r.bytes(len)?;
                match m {
                    marker::XML_DOC => Value::XmlDocument(lossy_string(bytes)),
                    marker::XML => Value::Xml(lossy_string(bytes)),
                    _ => Value::ByteArray(bytes.to_vec()),
                }
            }
            marker::DATE => match self.object_header(r, m)? {
                Ok(_) => Value::Date(r.f64()?),
                Err(reference) => reference,
            },
            marker::ARRAY => {
                let dense_len = match self.object_header(r, m)? {
                    Ok(n) => n as usize,
                    Err(reference) => return Ok(reference),
                };
                let d = self.budget.enter(depth)?;
                let mut assoc = Vec::new();
                loop {
                    let key = self.string(r)?;
                    if key.is_empty() {
                        break;
                    }
                    let v = self.value(r, d)?;
                    assoc.push((key, v));
                }
                let mut dense = Vec::with_capacity(dense_len.min(r.remaining()));
                for _ in 0..dense_len {
                    dense.push(self.value(r, d)?);
                }
                Value::Array { assoc, dense }
            }
            marker::OBJECT => self.object(r, depth)?,
            marker::VECTOR_INT | marker::VECTOR_UINT | marker::VECTOR_DOUBLE => {
                let count = match self.object_header(r, m)? {
                    Ok(n) => n as usize,
                    Err(reference) => return Ok(reference),
                };
                let fixed = r.u8()? != 0;
                let size = if m == marker::VECTOR_DOUBLE { 8 } else { 4 };
                if count.saturating_mul(size) > r.remaining() {
                    return Err(malformed("vector longer than message"));
                }
                match m {
                    marker::VECTOR_INT => {
                        Value::VectorInt { fixed, items: (0..count).map(|_| r.i32()).collect::<Result<_, _>>()? }
                    }
                    marker::VECTOR_UINT => {
                        Value::VectorUint { fixed, items: (0..count).map(|_| r.u32()).collect::<Result<_, _>>()? }
                    }
                    _ => Value::VectorDouble { fixed, items: (0..count).map(|_| r.f64()).collect::<Result<_, _>>()? },
                }
            }
            marker::VECTOR_OBJECT => {
                let count = match self.object_header(r, m)? {
                    Ok(n) => n as usize,
                    Err(reference) => return Ok(reference),
                };
                let d = self.budget.enter(depth)?;
                let fixed = r.u8()? != 0;
                let type_name = self.string(r)?;
                let mut items = Vec::with_capacity(count.min(r.remaining()));
                for _ in 0..count {
                    items.push(self.value(r, d)?);
                }
                Value::VectorObject { fixed, type_name, items }
            }
            marker::DICTIONARY => {
                let count = match self.object_header(r, m)? {
                    Ok(n) => n as usize,
                    Err(reference) => return Ok(reference),
                };
                let d = self.budget.enter(depth)?;
                let weak_keys = r.u8()? != 0;
                let mut entries = Vec::with_capacity(count.min(r.remaining() / 2));
                for _ in 0..count {
                    let k = self.value(r, d)?;
                    let v = self.value(r, d)?;
                    entries.push((k, v));
                }
                Value::Dictionary { weak_keys, entries }
            }
            _ => return Err(malformed("unknown type marker")),
        })
    }

    /// AMF3 §3.12: U29O-ref | U29O-traits-ref | U29O-traits-ext | U29O-traits.
    fn object(&mut self, r: &mut Reader<'_>, depth: usize) -> Result<Value, RtmpError> {
        let h = match self.object_header(r, marker::OBJECT)? {
            Ok(h) => h, // already shifted by one
            Err(reference) => return Ok(reference),
        };
        let d = self.budget.enter(depth)?;
        let traits = if h & 1 == 0 {
            // Traits reference.
            self.traits.get((h >> 1) as usize).cloned().ok_or_else(|| malformed("traits reference out of range"))?
        } else if h & 2 != 0 {
            let class_name = self.string(r)?;
            let t = Traits { class_name, sealed: Vec::new(), dynamic: false, externalizable: true };
            self.traits.push(t.clone());
            t
        } else {
            let dynamic = h & 4 != 0;
            let count = (h >> 3) as usize;
            let class_name = self.string(r)?;
            let mut sealed = Vec::with_capacity(count.min(r.remaining()));
            for _ in 0..count {
                sealed.push(self.string(r)?);
            }
            let t = Traits { class_name, sealed, dynamic, externalizable: false };
            self.traits.push(t.clone());
            t
        };
        if traits.externalizable {
            return match traits.class_name.as_str() {
                "flex.messaging.io.ArrayCollection" | "flex.messaging.io.ObjectProxy" => {
                    Ok(Value::Externalizable { inner: Box::new(self.value(r, d)?), class_name: traits.class_name })
                }
                _ => Err(RtmpError::Unsupported("AMF3 externalizable object")),
            };
        }
        let mut sealed = Vec::with_capacity(traits.sealed.len());
        for name in traits.sealed {
            self.budget.string(name.len())?;
            let v = self.value(r, d)?;
            sealed.push((name, v));
        }
        let dynamic = if traits.dynamic {
            let mut members = Vec::new();
            loop {
                let key = self.string(r)?;
                if key.is_empty() {
                    break;
                }
                let v = self.value(r, d)?;
                members.push((key, v));
            }
            Some(members)
        } else {
            None
        };
        Ok(Value::Object { class_name: traits.class_name, sealed, dynamic })
    }
}

fn put_u29(out: &mut impl BufMut, v: u32) {
    let v = v.min(MAX_U29);
    if v < 0x80 {
        out.put_u8(v as u8);
    } else if v < 0x4000 {
        out.put_u8(((v >> 7) | 0x80) as u8);
        out.put_u8((v & 0x7F) as u8);
    } else if v < 0x20_0000 {
        out.put_u8(((v >> 14) | 0x80) as u8);
        out.put_u8((((v >> 7) & 0x7F) | 0x80) as u8);
        out.put_u8((v & 0x7F) as u8);
    } else {
        out.put_u8(((v >> 22) | 0x80) as u8);
        out.put_u8((((v >> 15) & 0x7F) | 0x80) as u8);
        out.put_u8((((v >> 8) & 0x7F) | 0x80) as u8);
        out.put_u8((v & 0xFF) as u8);
    }
}

/// Inline length header `(len << 1) | 1`, lengths clamped to what U29 can carry.
fn put_inline_len(out: &mut impl BufMut, len: usize) -> usize {
    let len = len.min((MAX_U29 >> 1) as usize);
    put_u29(out, ((len as u32) << 1) | 1);
    len
}

fn put_string(out: &mut impl BufMut, s: &str) {
    let mut len = s.len().min((MAX_U29 >> 1) as usize);
    while !s.is_char_boundary(len) {
        len -= 1;
    }
    put_inline_len(out, len);
    out.put_slice(&s.as_bytes()[..len]);
}

fn put_members(out: &mut impl BufMut, members: &[(String, Value)]) {
    for (k, v) in members {
        if k.is_empty() {
            continue; // the empty name terminates the list; cannot be encoded
        }
        put_string(out, k);
        encode(v, out);
    }
    put_string(out, "");
}

/// Appends the AMF3 encoding of `value` (inline forms only, no references).
pub fn encode(value: &Value, out: &mut impl BufMut) {
    match value {
        Value::Undefined => out.put_u8(marker::UNDEFINED),
        Value::Null => out.put_u8(marker::NULL),
        Value::Boolean(false) => out.put_u8(marker::FALSE),
        Value::Boolean(true) => out.put_u8(marker::TRUE),
        Value::Integer(i) if (-(1 << 28)..(1 << 28)).contains(i) => {
            out.put_u8(marker::INTEGER);
            put_u29(out, (*i as u32) & MAX_U29);
        }
        Value::Integer(i) => {
            out.put_u8(marker::DOUBLE);
            out.put_f64(f64::from(*i));
        }
        Value::Double(d) => {
            out.put_u8(marker::DOUBLE);
            out.put_f64(*d);
        }
        Value::String(s) => {
            out.put_u8(marker::STRING);
            put_string(out, s);
        }
        Value::XmlDocument(s) | Value::Xml(s) => {
            out.put_u8(if matches!(value, Value::Xml(_)) { marker::XML } else { marker::XML_DOC });
            put_string(out, s);
        }
        Value::ByteArray(b) => {
            out.put_u8(marker::BYTE_ARRAY);
            let len = put_inline_len(out, b.len());
            out.put_slice(&b[..len]);
        }
        Value::Date(ms) => {
            out.put_u8(marker::DATE);
            put_u29(out, 1);
            out.put_f64(*ms);
        }
        Value::Array { assoc, dense } => {
            out.put_u8(marker::ARRAY);
            let n = put_inline_len(out, dense.len());
            put_members(out, assoc);
            for v in &dense[..n] {
                encode(v, out);
            }
        }
        Value::Object { class_name, sealed, dynamic } => {
            out.put_u8(marker::OBJECT);
            let count = (sealed.len() as u32).min(MAX_U29 >> 4);
            let dyn_bit = if dynamic.is_some() { 0b1000 } else { 0 };
            put_u29(out, (count << 4) | dyn_bit | 0b0011);
            put_string(out, class_name);
            let sealed = &sealed[..count as usize];
            for (k, _) in sealed {
                put_string(out, k);
            }
            for (_, v) in sealed {
                encode(v, out);
            }
            if let Some(members) = dynamic {
                put_members(out, members);
            }
        }
        Value::Externalizable { class_name, inner } => {
            out.put_u8(marker::OBJECT);
            put_u29(out, 0b0111);
            put_string(out, class_name);
            encode(inner, out);
        }
        Value::VectorInt { fixed, items } => {
            out.put_u8(marker::VECTOR_INT);
            let n = put_inline_len(out, items.len());
            out.put_u8(u8::from(*fixed));
            items[..n].iter().for_each(|i| out.put_i32(*i));
        }
        Value::VectorUint { fixed, items } => {
            out.put_u8(marker::VECTOR_UINT);
            let n = put_inline_len(out, items.len());
            out.put_u8(u8::from(*fixed));
            items[..n].iter().for_each(|i| out.put_u32(*i));
        }
        Value::VectorDouble { fixed, items } => {
            out.put_u8(marker::VECTOR_DOUBLE);
            let n = put_inline_len(out, items.len());
            out.put_u8(u8::from(*fixed));
            items[..n].iter().for_each(|i| out.put_f64(*i));
        }
        Value::VectorObject { fixed, type_name, items } => {
            out.put_u8(marker::VECTOR_OBJECT);
            let n = put_inline_len(out, items.len());
            out.put_u8(u8::from(*fixed));
            put_string(out, type_name);
            items[..n].iter().for_each(|v| encode(v, out));
        }
        Value::Dictionary { weak_keys, entries } => {
            out.put_u8(marker::DICTIONARY);
            let n = put_inline_len(out, entries.len());
            out.put_u8(u8::from(*weak_keys));
            for (k, v) in &entries[..n] {
                encode(k, out);
                encode(v, out);
            }
        }
        Value::Reference { marker, index } => {
            out.put_u8(*marker);
            put_u29(out, (*index).min(MAX_U29 >> 1) << 1);
        }
    }
}

#[cfg(test)]
mod tests;
