//! AMF0: the Action Message Format version 0 (Adobe "AMF 0 File Format
//! Specification", December 2007), used by RTMP command (type 20) and data (type 18)
//! messages.
//!
//! Decoding borrows the input and is bounded: nesting depth, number of values and
//! total materialised string bytes are limited by [`Amf0Limits`]. The AVM+ switch
//! marker (0x11, AMF0 spec §3.1) hands over to the [`super::amf3`] decoder for one
//! value. Encoding appends to a caller's buffer and never fails.

use bytes::BufMut;

use super::amf3;
use super::error::RtmpError;
use super::reader::{Reader, lossy_string};

/// AMF0 type markers (AMF0 spec §2.1).
pub mod marker {
    /// number-marker: IEEE-754 double, big-endian (§2.2).
    pub const NUMBER: u8 = 0x00;
    /// boolean-marker (§2.3).
    pub const BOOLEAN: u8 = 0x01;
    /// string-marker: u16 length + UTF-8 (§2.4).
    pub const STRING: u8 = 0x02;
    /// object-marker: properties until object-end (§2.5).
    pub const OBJECT: u8 = 0x03;
    /// movieclip-marker: reserved, not supported (§2.6).
    pub const MOVIECLIP: u8 = 0x04;
    /// null-marker (§2.7).
    pub const NULL: u8 = 0x05;
    /// undefined-marker (§2.8).
    pub const UNDEFINED: u8 = 0x06;
    /// reference-marker: u16 index of an earlier complex value (§2.9).
    pub const REFERENCE: u8 = 0x07;
    /// ecma-array-marker: u32 count hint + properties until object-end (§2.10).
    pub const ECMA_ARRAY: u8 = 0x08;
    /// object-end-marker (§2.11).
    pub const OBJECT_END: u8 = 0x09;
    /// strict-array-marker: u32 count + values (§2.12).
    pub const STRICT_ARRAY: u8 = 0x0A;
    /// date-marker: double ms + s16 time zone (§2.13).
    pub const DATE: u8 = 0x0B;
    /// long-string-marker: u32 length + UTF-8 (§2.14).
    pub const LONG_STRING: u8 = 0x0C;
    /// unsupported-marker (§2.15).
    pub const UNSUPPORTED: u8 = 0x0D;
    /// recordset-marker: reserved, not supported (§2.16).
    pub const RECORDSET: u8 = 0x0E;
    /// xml-document-marker: u32 length + UTF-8 (§2.17).
    pub const XML_DOCUMENT: u8 = 0x0F;
    /// typed-object-marker: class name + properties (§2.18).
    pub const TYPED_OBJECT: u8 = 0x10;
    /// avmplus-object-marker: the next value is AMF3 (§3.1).
    pub const AVMPLUS: u8 = 0x11;
}

/// An ordered list of named properties (object, ECMA array, typed object).
pub type Properties = Vec<(String, Value)>;

/// One AMF0 value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// AMF0 §2.2.
    Number(f64),
    /// AMF0 §2.3.
    Boolean(bool),
    /// AMF0 §2.4. Encoded as a long string if longer than 65535 bytes.
    String(String),
    /// AMF0 §2.5, anonymous object; property order is kept.
    Object(Properties),
    /// AMF0 §2.7.
    Null,
    /// AMF0 §2.8.
    Undefined,
    /// AMF0 §2.9: index of an earlier complex value, kept unresolved.
    Reference(u16),
    /// AMF0 §2.10, associative array (`onMetaData` uses it).
    EcmaArray(Properties),
    /// AMF0 §2.12.
    StrictArray(Vec<Value>),
    /// AMF0 §2.13: milliseconds since the Unix epoch, UTC; time zone should be 0.
    Date {
        /// Milliseconds since 1970-01-01T00:00:00Z.
        millis: f64,
        /// Reserved time-zone offset (should be 0x0000).
        time_zone: i16,
    },
    /// AMF0 §2.14.
    LongString(String),
    /// AMF0 §2.15.
    Unsupported,
    /// AMF0 §2.17.
    XmlDocument(String),
    /// AMF0 §2.18.
    TypedObject {
        /// The registered class name.
        class_name: String,
        /// Ordered properties.
        properties: Properties,
    },
    /// A value after the AVM+ switch marker (§3.1), in AMF3 encoding.
    Avmplus(amf3::Value),
}

impl Value {
    /// Shorthand for a string value.
    pub fn string(s: impl Into<String>) -> Value {
        Value::String(s.into())
    }

    /// Shorthand for an object built from `(&str, Value)` pairs.
    pub fn object<'k>(props: impl IntoIterator<Item = (&'k str, Value)>) -> Value {
        Value::Object(props.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
    }

    /// The string content of a String, LongString, XML document or AMF3 string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) | Value::LongString(s) | Value::XmlDocument(s) => Some(s),
            Value::Avmplus(v) => v.as_str(),
            _ => None,
        }
    }

    /// The value of a Number (or an AMF3 integer/double).
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Number(n) => Some(*n),
            Value::Avmplus(v) => v.as_f64(),
            _ => None,
        }
    }

    /// The value of a Boolean.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Boolean(b) => Some(*b),
            Value::Avmplus(amf3::Value::Boolean(b)) => Some(*b),
            _ => None,
        }
    }

    /// Null or Undefined (in either encoding).
    pub fn is_null_or_undefined(&self) -> bool {
        matches!(
            self,
            Value::Null | Value::Undefined | Value::Avmplus(amf3::Value::Null) | Value::Avmplus(amf3::Value::Undefined)
        )
    }

    /// The properties of an Object, ECMA array or typed object.
    pub fn properties(&self) -> Option<&[(String, Value)]> {
        match self {
            Value::Object(p) | Value::EcmaArray(p) => Some(p),
            Value::TypedObject { properties, .. } => Some(properties),
            _ => None,
        }
    }

    /// Looks up a property by key in an Object, ECMA array or typed object
    /// (first match). For AMF3 objects use [`amf3::Value::get`].
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.properties()?.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// `get(key)` then `as_str()`.
    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.get(key)?.as_str()
    }

    /// `get(key)` then `as_f64()`.
    pub fn get_f64(&self, key: &str) -> Option<f64> {
        self.get(key)?.as_f64()
    }

    /// Appends the AMF0 encoding of this value to `out`.
    pub fn encode(&self, out: &mut impl BufMut) {
        encode(self, out);
    }

    /// The AMF0 encoding of this value as a new vector.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::new();
        encode(self, &mut v);
        v
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::String(s.to_owned())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::String(s)
    }
}

impl From<f64> for Value {
    fn from(n: f64) -> Self {
        Value::Number(n)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Boolean(b)
    }
}

/// Bounds for decoding AMF (both AMF0 and the AMF3 values embedded in it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Amf0Limits {
    /// Maximum nesting of objects/arrays. Default 32.
    pub max_depth: usize,
    /// Maximum number of values in one decode call. Default 65 536.
    pub max_values: usize,
    /// Maximum bytes of strings materialised in one decode call, counting AMF3
    /// string references each time they are resolved. Default 16 MiB.
    pub max_string_bytes: usize,
}

impl Default for Amf0Limits {
    fn default() -> Self {
        Amf0Limits { max_depth: 32, max_values: 65_536, max_string_bytes: 16 << 20 }
    }
}

/// Remaining allowances of one decode call, shared with the AMF3 decoder.
#[derive(Debug)]
pub(crate) struct Budget {
    pub(crate) limits: Amf0Limits,
    values: usize,
    string_bytes: usize,
}

impl Budget {
    pub(crate) fn new(limits: Amf0Limits) -> Self {
        Budget { limits, values: 0, string_bytes: 0 }
    }

    pub(crate) fn value(&mut self) -> Result<(), RtmpError> {
        self.values += 1;
        if self.values > self.limits.max_values {
            return Err(RtmpError::limit("AMF value count", self.values as u64, self.limits.max_values as u64));
        }
        Ok(())
    }

    pub(crate) fn string(&mut self, len: usize) -> Result<(), RtmpError> {
        self.string_bytes = self.string_bytes.saturating_add(len);
        if self.string_bytes > self.limits.max_string_bytes {
            return Err(RtmpError::limit(
                "AMF string bytes",
                self.string_bytes as u64,
                self.limits.max_string_bytes as u64,
            ));
        }
        Ok(())
    }

    pub(crate) fn enter(&self, depth: usize) -> Result<usize, RtmpError> {
        let d = depth + 1;
        if d > self.limits.max_depth {
            return Err(RtmpError::limit("AMF nesting depth", d as u64, self.limits.max_depth as u64));
        }
        Ok(d)
    }
}

/// A streaming AMF0 decoder over a borrowed buffer.
#[derive(Debug)]
pub struct Decoder<'a> {
    reader: Reader<'a>,
    budget: Budget,
}

impl<'a> Decoder<'a> {
    /// A decoder over `buf` with the given bounds.
    pub fn new(buf: &'a [u8], limits: Amf0Limits) -> Self {
        Decoder { reader: Reader::new(buf, "AMF0 value"), budget: Budget::new(limits) }
    }

    /// Bytes consumed so far.
    pub fn position(&self) -> usize {
        self.reader.position()
    }

    /// True when the whole buffer has been consumed.
    pub fn is_empty(&self) -> bool {
        self.reader.is_empty()
    }

    /// The unconsumed rest of the buffer.
    pub fn rest(&self) -> &'a [u8] {
        self.reader.rest()
    }

    /// Decodes the next value.
    pub fn decode(&mut self) -> Result<Value, RtmpError> {
        decode_value(&mut self.reader, &mut self.budget, 0)
    }

    /// Decodes values until the buffer is exhausted.
    pub fn decode_all(mut self) -> Result<Vec<Value>, RtmpError> {
        let mut out = Vec::new();
        while !self.reader.is_empty() {
            out.push(self.decode()?);
        }
        Ok(out)
    }
}

/// Decodes every value in `buf` (a whole command or data message body).
pub fn decode_all(buf: &[u8], limits: Amf0Limits) -> Result<Vec<Value>, RtmpError> {
    Decoder::new(buf, limits).decode_all()
}

/// Decodes one value from the front of `buf`; returns it and the bytes consumed.
pub fn decode_one(buf: &[u8], limits: Amf0Limits) -> Result<(Value, usize), RtmpError> {
    let mut d = Decoder::new(buf, limits);
    let v = d.decode()?;
    Ok((v, d.position()))
}

fn read_utf8(r: &mut Reader<'_>, budget: &mut Budget) -> Result<String, RtmpError> {
    let len = r.u16()? as usize;
    budget.string(len)?;
    Ok(lossy_string(r.bytes(len)?))
}

fn read_long_utf8(r: &mut Reader<'_>, budget: &mut Budget) -> Result<String, RtmpError> {
    let len = r.u32()? as usize;
    budget.string(len)?;
    Ok(lossy_string(r.bytes(len)?))
}

fn decode_value(r: &mut Reader<'_>, budget: &mut Budget, depth: usize) -> Result<Value, RtmpError> {
    budget.value()?;
    let m = r.u8()?;
    Ok(match m {
        marker::NUMBER => Value::Number(r.f64()?),
        marker::BOOLEAN => Value::Boolean(r.u8()? != 0),
        marker::STRING => Value::String(read_utf8(r, budget)?),
        marker::OBJECT => Value::Object(read_properties(r, budget, budget.enter(depth)?, false)?),
        marker::NULL => Value::Null,
        marker::UNDEFINED => Value::Undefined,
        marker::REFERENCE => Value::Reference(r.u16()?),
        marker::ECMA_ARRAY => {
            // The count is only a hint (encoders get it wrong); the end marker rules.
            let _count = r.u32()?;
            Value::EcmaArray(read_properties(r, budget, budget.enter(depth)?, true)?)
        }
        marker::STRICT_ARRAY => {
            let d = budget.enter(depth)?;
            let count = r.u32()? as usize;
            // Every value takes at least one byte: never trust the count for allocation.
            let mut items = Vec::with_capacity(count.min(r.remaining()));
            for _ in 0..count {
                items.push(decode_value(r, budget, d)?);
            }
            Value::StrictArray(items)
        }
        marker::DATE => {
            let millis = r.f64()?;
            let time_zone = r.i16()?;
            Value::Date { millis, time_zone }
        }
        marker::LONG_STRING => Value::LongString(read_long_utf8(r, budget)?),
        marker::UNSUPPORTED => Value::Unsupported,
        marker::XML_DOCUMENT => Value::XmlDocument(read_long_utf8(r, budget)?),
        marker::TYPED_OBJECT => {
            let d = budget.enter(depth)?;
            let class_name = read_utf8(r, budget)?;
            Value::TypedObject { class_name, properties: read_properties(r, budget, d, false)? }
        }
        marker::AVMPLUS => Value::Avmplus(amf3::decode_value_in(r, budget, depth)?),
        marker::MOVIECLIP | marker::RECORDSET => {
            return Err(RtmpError::Unsupported("AMF0 movieclip/recordset marker"));
        }
        marker::OBJECT_END => {
            return Err(RtmpError::malformed("AMF0 value", "object-end outside object"));
        }
        _ => return Err(RtmpError::malformed("AMF0 value", "unknown type marker")),
    })
}

/// Reads `(key, value)` pairs until the empty key followed by object-end (§2.5).
/// With `lenient_end`, input ending exactly at a key boundary is accepted as the
/// end (some encoders omit the terminator of a trailing ECMA array).
fn read_properties(
    r: &mut Reader<'_>,
    budget: &mut Budget,
    depth: usize,
    lenient_end: bool,
) -> Result<Properties, RtmpError> {
    let mut props = Vec::new();
    loop {
        if lenient_end && r.is_empty() {
            return Ok(props);
        }
        let key = read_utf8(r, budget)?;
        if key.is_empty() && r.peek_u8() == Some(marker::OBJECT_END) {
            r.u8()?;
            return Ok(props);
        }
        let value = decode_value(r, budget, depth)?;
        props.push((key, value));
    }
}

fn put_utf8(out: &mut impl BufMut, s: &str) {
    // Keys and short strings carry a u16 length: cut over-long ones at a char boundary.
    let mut end = s.len().min(u16::MAX as usize);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    out.put_u16(end as u16);
    out.put_slice(&s.as_bytes()[..end]);
}

fn put_long_utf8(out: &mut impl BufMut, s: &str) {
    let mut end = s.len().min(u32::MAX as usize);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    out.put_u32(end as u32);
    out.put_slice(&s.as_bytes()[..end]);
}

fn put_properties(out: &mut impl BufMut, props: &[(String, Value)]) {
    for (k, v) in props {
        put_utf8(out, k);
        encode(v, out);
    }
    out.put_u16(0);
    out.put_u8(marker::OBJECT_END);
}

/// Appends the AMF0 encoding of `value` (AMF0 spec §2).
pub fn encode(value: &Value, out: &mut impl BufMut) {
    match value {
        Value::Number(n) => {
            out.put_u8(marker::NUMBER);
            out.put_f64(*n);
        }
        Value::Boolean(b) => {
            out.put_u8(marker::BOOLEAN);
            out.put_u8(u8::from(*b));
        }
        Value::String(s) if s.len() <= u16::MAX as usize => {
            out.put_u8(marker::STRING);
            put_utf8(out, s);
        }
        Value::String(s) | Value::LongString(s) => {
            out.put_u8(marker::LONG_STRING);
            put_long_utf8(out, s);
        }
        Value::Object(props) => {
            out.put_u8(marker::OBJECT);
            put_properties(out, props);
        }
        Value::Null => out.put_u8(marker::NULL),
        Value::Undefined => out.put_u8(marker::UNDEFINED),
        Value::Reference(i) => {
            out.put_u8(marker::REFERENCE);
            out.put_u16(*i);
        }
        Value::EcmaArray(props) => {
            out.put_u8(marker::ECMA_ARRAY);
            out.put_u32(props.len().min(u32::MAX as usize) as u32);
            put_properties(out, props);
        }
        Value::StrictArray(items) => {
            out.put_u8(marker::STRICT_ARRAY);
            out.put_u32(items.len().min(u32::MAX as usize) as u32);
            for v in items.iter().take(u32::MAX as usize) {
                encode(v, out);
            }
        }
        Value::Date { millis, time_zone } => {
            out.put_u8(marker::DATE);
            out.put_f64(*millis);
            out.put_i16(*time_zone);
        }
        Value::Unsupported => out.put_u8(marker::UNSUPPORTED),
        Value::XmlDocument(s) => {
            out.put_u8(marker::XML_DOCUMENT);
            put_long_utf8(out, s);
        }
        Value::TypedObject { class_name, properties } => {
            out.put_u8(marker::TYPED_OBJECT);
            put_utf8(out, class_name);
            put_properties(out, properties);
        }
        Value::Avmplus(v) => {
            out.put_u8(marker::AVMPLUS);
            amf3::encode(v, out);
        }
    }
}

/// Encodes several values back to back (a command or data message body).
pub fn encode_all<'v>(values: impl IntoIterator<Item = &'v Value>, out: &mut impl BufMut) {
    for v in values {
        encode(v, out);
    }
}

#[cfg(test)]
mod tests;
