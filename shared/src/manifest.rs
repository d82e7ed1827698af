//! Augmented manifests: one JSON object per line, each a data object with exactly one of `source` (inline
//! text) or `source-ref` (an S3 URI), plus any labels of earlier jobs.
//!
//! Ground Truth copies every key it does not own into the output unchanged, so a line here keeps its keys
//! in their order (serde_json's `preserve_order`) and, while nothing changes it, its exact original text:
//! reading and writing a manifest is a byte-for-byte round trip. The reader streams, bounds the memory of
//! one line, and reports every bad line with its 1-based number and a short reason instead of stopping at
//! the first one (`contracts.md` §1.1, §1.5: lines up to 100 KB).

use std::borrow::Cow;
use std::fmt;
use std::io::{self, BufRead, Read, Write};

use serde_json::{Map, Value};

/// The largest manifest line Ground Truth accepts (100 KB).
pub const MAX_LINE_BYTES: usize = 100 * 1024;

/// The key holding inline data.
pub const SOURCE: &str = "source";
/// The UTF-8 byte order mark, accepted (and dropped) before a line or a payload.
pub const BOM: char = '\u{feff}';

/// The key holding an S3 URI of the data.
pub const SOURCE_REF: &str = "source-ref";

/// Why one line is not a valid data object.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineProblem {
    /// The line is empty or only whitespace.
    #[error("empty line")]
    Empty,
    /// The line is longer than [`MAX_LINE_BYTES`].
    #[error("line is {bytes} bytes, over the {MAX_LINE_BYTES}-byte limit")]
    TooLong {
        /// Length of the line without its newline (at least this long when the reader stopped early).
        bytes: usize,
    },
    /// The bytes are not UTF-8.
    #[error("not valid UTF-8")]
    NotUtf8,
    /// Not JSON at all.
    #[error("invalid JSON: {0}")]
    InvalidJson(String),
    /// Valid JSON, but not an object.
    #[error("not a JSON object (found {0})")]
    NotAnObject(&'static str),
    /// Neither `source` nor `source-ref`.
    #[error("neither `source` nor `source-ref` is present")]
    NoSource,
    /// Both `source` and `source-ref`.
    #[error("both `source` and `source-ref` are present (exactly one is allowed)")]
    BothSources,
    /// `source-ref` is not the S3 URI of an object (`s3://bucket/key`), which Ground Truth needs.
    #[error("`source-ref` must be the S3 URI of an object (s3://bucket/key), not `{value}`")]
    InvalidSourceRef {
        /// The value, cut short.
        value: String,
    },
    /// `source` or `source-ref` is not a string.
    #[error("`{key}` must be a string (found {found})")]
    SourceNotString {
        /// `source` or `source-ref`.
        key: &'static str,
        /// The JSON type found instead.
        found: &'static str,
    },
}

/// A bad line of a manifest, with where it is.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// A line that is not a valid data object.
    #[error("line {line}: {problem}")]
    Line {
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        problem: LineProblem,
    },
    /// Reading failed.
    #[error("line {line}: read failed: {source}")]
    Io {
        /// 1-based number of the line being read.
        line: usize,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
}

impl ManifestError {
    /// The 1-based line number.
    pub fn line(&self) -> usize {
        match self {
            ManifestError::Line { line, .. } | ManifestError::Io { line, .. } => *line,
        }
    }
}

/// Where a data object's data is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataSource<'a> {
    /// `source-ref`: an S3 URI (kept as text; it is Ground Truth's to resolve).
    SourceRef(&'a str),
    /// `source`: the inline data.
    Source(&'a str),
}

impl<'a> DataSource<'a> {
    /// The value, whichever key holds it.
    pub fn value(&self) -> &'a str {
        match self {
            DataSource::SourceRef(v) | DataSource::Source(v) => v,
        }
    }

    /// The key that holds it.
    pub fn key(&self) -> &'static str {
        match self {
            DataSource::SourceRef(_) => SOURCE_REF,
            DataSource::Source(_) => SOURCE,
        }
    }
}

/// One data object of a manifest: its keys in their original order, and its original text while unchanged.
#[derive(Clone, PartialEq)]
pub struct ManifestLine {
    fields: Map<String, Value>,
    /// Top-level values a `Value` would not write back as they came, with their exact text: numbers
    /// past what an f64 holds exactly (integers past 64 bits, which read rounded), numbers no f64 holds
    /// at all (`1e400`, which read as null), `2.50`, objects written with spaces. They are written back
    /// as they came while their key is untouched, also when other keys of the line change.
    exact: Vec<(String, Box<str>)>,
    /// The exact text the line was parsed from; dropped by any change so the writer re-serialises.
    original: Option<Box<str>>,
}

impl fmt::Debug for ManifestLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManifestLine")
            .field("fields", &self.fields)
            .field("exact_values", &self.exact.len())
            .field("unchanged", &self.original.is_some())
            .finish()
    }
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Whether `uri` names an S3 object: `s3://`, a bucket, a key that is not a folder. (The bucket name is
/// S3's to check: old and S3-compatible buckets break today's naming rules.)
fn is_object_uri(uri: &str) -> bool {
    uri.strip_prefix("s3://")
        .and_then(|rest| rest.split_once('/'))
        .is_some_and(|(bucket, key)| !bucket.is_empty() && !key.is_empty() && !key.ends_with('/'))
}

/// A JSON object's keys, in order, with their values' text.
struct RawFields(Vec<(String, Box<serde_json::value::RawValue>)>);

impl<'de> serde::Deserialize<'de> for RawFields {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Fields;
        impl<'de> serde::de::Visitor<'de> for Fields {
            type Value = RawFields;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<RawFields, A::Error> {
                let mut fields = Vec::new();
                while let Some(entry) = map.next_entry()? {
                    fields.push(entry);
                }
                Ok(RawFields(fields))
            }
        }
        deserializer.deserialize_map(Fields)
    }
}

impl ManifestLine {
    /// Parses one line (without its newline).
    pub fn parse(text: &str) -> Result<Self, LineProblem> {
        // A UTF-8 byte order mark (editors on Windows write one before the first line) is not data.
        let text = text.strip_prefix(BOM).unwrap_or(text);
        if text.len() > MAX_LINE_BYTES {
            return Err(LineProblem::TooLong { bytes: text.len() });
        }
        if text.trim().is_empty() {
            return Err(LineProblem::Empty);
        }
        // Key by key, so that a number a `Value` would rewrite keeps its text.
        let Some((fields, exact)) = read_key_by_key(text) else {
            return Err(match serde_json::from_str::<Value>(text) {
                Ok(other) => LineProblem::NotAnObject(json_type(&other)),
                Err(e) => LineProblem::InvalidJson(e.to_string()),
            });
        };
        let mut line = Self::from_object(fields)?;
        line.exact = exact;
        line.original = Some(text.into());
        Ok(line)
    }

    /// Checks a JSON object (a Lambda event's `dataObject`, say) as a data object.
    pub fn from_object(fields: Map<String, Value>) -> Result<Self, LineProblem> {
        match (fields.get(SOURCE), fields.get(SOURCE_REF)) {
            (None, None) => return Err(LineProblem::NoSource),
            (Some(_), Some(_)) => return Err(LineProblem::BothSources),
            (Some(v), None) if !v.is_string() => {
                return Err(LineProblem::SourceNotString {
                    key: SOURCE,
                    found: json_type(v),
                });
            }
            (None, Some(v)) if !v.is_string() => {
                return Err(LineProblem::SourceNotString {
                    key: SOURCE_REF,
                    found: json_type(v),
                });
            }
            (None, Some(Value::String(uri))) if !is_object_uri(uri) => {
                return Err(LineProblem::InvalidSourceRef {
                    value: crate::text::echo(uri).into_owned(),
                });
            }
            _ => {}
        }
        Ok(ManifestLine {
            fields,
            exact: Vec::new(),
            original: None,
        })
    }

    /// Checks a Lambda event's `dataObject`, given as its exact JSON text, as a data object: as
    /// [`ManifestLine::from_object`], and no larger than a manifest line may be ([`MAX_LINE_BYTES`],
    /// measured as compact JSON), since Ground Truth sends one manifest line per event and a larger
    /// object cannot be a real one.
    ///
    /// The line's text stays the event's, byte for byte ([`ManifestLine::to_json_line`]); its fields are
    /// the keys whose values a `serde_json::Value` can hold. A value it cannot (`1e400`) is Ground
    /// Truth's to copy, not ours to read: it stays in the text and is left out of the fields, so it
    /// neither rejects the object nor gets rounded.
    pub fn from_data_object(text: &str) -> Result<Self, LineProblem> {
        let (raw, exact, bytes) = match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(fields)) => {
                let bytes = crate::text::compact_json_len(&fields);
                (fields, Vec::new(), bytes)
            }
            Ok(other) => return Err(LineProblem::NotAnObject(json_type(&other))),
            Err(e) => {
                let (fields, exact) =
                    read_key_by_key(text).ok_or_else(|| LineProblem::InvalidJson(e.to_string()))?;
                // The values left out count too: the text's own length.
                (fields, exact, text.len())
            }
        };
        if bytes > MAX_LINE_BYTES {
            return Err(LineProblem::TooLong { bytes });
        }
        let mut line = Self::from_object(raw)?;
        line.exact = exact;
        line.original = Some(text.into());
        Ok(line)
    }

    /// The data: `source-ref` or `source`.
    pub fn source(&self) -> DataSource<'_> {
        // `from_object` guarantees exactly one string-valued source key.
        match (self.fields.get(SOURCE_REF), self.fields.get(SOURCE)) {
            (Some(Value::String(s)), _) => DataSource::SourceRef(s),
            (_, Some(Value::String(s))) => DataSource::Source(s),
            _ => DataSource::Source(""),
        }
    }

    /// A key's value.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.fields.get(key)
    }

    /// All keys, in order.
    pub fn fields(&self) -> &Map<String, Value> {
        &self.fields
    }

    /// Consumes the line, giving its keys.
    pub fn into_fields(self) -> Map<String, Value> {
        self.fields
    }

    /// Sets a key, keeping its position when it exists and appending it otherwise (as Ground Truth
    /// overwrites an existing `<LAN>`). The source keys cannot be changed this way.
    pub fn insert(&mut self, key: impl Into<String>, value: Value) {
        let key = key.into();
        if key == SOURCE || key == SOURCE_REF {
            return;
        }
        self.original = None;
        self.exact.retain(|(k, _)| *k != key);
        self.fields.insert(key, value);
    }

    /// Removes a key (never a source key); returns its value.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        if key == SOURCE || key == SOURCE_REF {
            return None;
        }
        let removed = self.fields.shift_remove(key);
        self.exact.retain(|(k, _)| k != key);
        if removed.is_some() {
            self.original = None;
        }
        removed
    }

    /// The line as written: the original text while unchanged, compact JSON otherwise.
    pub fn to_json_line(&self) -> Cow<'_, str> {
        match &self.original {
            Some(text) => Cow::Borrowed(text),
            // Serialising a map of `Value`s cannot fail.
            None if self.exact.is_empty() => {
                Cow::Owned(Value::Object(self.fields.clone()).to_string())
            }
            None => Cow::Owned(serde_json::to_string(&WithExact(self)).unwrap_or_default()),
        }
    }
}

/// A line's keys read one by one, keeping the exact text of the top-level values a `Value` does not
/// write back as they came (a value no `Value` holds reads as null); `None` when the text is not a
/// JSON object.
#[allow(clippy::type_complexity)]
fn read_key_by_key(text: &str) -> Option<(Map<String, Value>, Vec<(String, Box<str>)>)> {
    let keyed = serde_json::from_str::<RawFields>(text).ok()?.0;
    let mut fields = Map::with_capacity(keyed.len());
    let mut exact = Vec::new();
    for (key, raw) in keyed {
        let value = serde_json::from_str::<Value>(raw.get()).ok();
        // Whether writing the value back would change its text (`2.50`, `1e400`, an integer past 64
        // bits, spaces inside an object).
        let rewritten = value
            .as_ref()
            .is_none_or(|v| serde_json::to_string(v).map_or(true, |w| w != raw.get()));
        // A key given twice keeps its last value (as a JSON object map does).
        exact.retain(|(k, _): &(String, Box<str>)| *k != key);
        if rewritten {
            exact.push((key.clone(), raw.get().into()));
        }
        fields.insert(key, value.unwrap_or(Value::Null));
    }
    Some((fields, exact))
}

/// A changed line with exact values: the fields in order, the exact ones as they were read.
struct WithExact<'a>(&'a ManifestLine);

impl serde::Serialize for WithExact<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{Error, SerializeMap};
        let line = self.0;
        let mut map = serializer.serialize_map(Some(line.fields.len()))?;
        for (key, value) in &line.fields {
            match line.exact.iter().find(|(k, _)| k == key) {
                Some((_, text)) => {
                    let raw = serde_json::value::RawValue::from_string(text.to_string())
                        .map_err(S::Error::custom)?;
                    map.serialize_entry(key, &raw)?;
                }
                None => map.serialize_entry(key, value)?,
            }
        }
        map.end()
    }
}

/// Streams the lines of a manifest, one `Result` per line, never stopping at a bad one.
#[derive(Debug)]
pub struct ManifestReader<R> {
    reader: R,
    line: usize,
    buf: Vec<u8>,
    done: bool,
}

impl<R: BufRead> ManifestReader<R> {
    /// Reads from `reader`.
    pub fn new(reader: R) -> Self {
        ManifestReader {
            reader,
            line: 0,
            buf: Vec::with_capacity(4096),
            done: false,
        }
    }

    /// Reads one physical line into `buf` (without the newline), at most `MAX_LINE_BYTES + 1` bytes of it;
    /// the rest of a longer line is skipped. Returns the full length, or `None` at end of input.
    fn read_bounded_line(&mut self) -> io::Result<Option<usize>> {
        self.buf.clear();
        let limit = (MAX_LINE_BYTES + 2) as u64;
        let n = self
            .reader
            .by_ref()
            .take(limit)
            .read_until(b'\n', &mut self.buf)?;
        if n == 0 {
            return Ok(None);
        }
        let mut length = self.buf.len();
        if self.buf.last() == Some(&b'\n') {
            self.buf.pop();
            length -= 1;
        } else if n as u64 == limit {
            // Over the limit: skip to the end of the physical line without keeping it.
            loop {
                let available = self.reader.fill_buf()?;
                if available.is_empty() {
                    break;
                }
                match available.iter().position(|b| *b == b'\n') {
                    Some(i) => {
                        length += i;
                        self.reader.consume(i + 1);
                        break;
                    }
                    None => {
                        let len = available.len();
                        length += len;
                        self.reader.consume(len);
                    }
                }
            }
        }
        if self.buf.last() == Some(&b'\r') {
            self.buf.pop();
            length -= 1;
        }
        Ok(Some(length))
    }
}

impl<R: BufRead> Iterator for ManifestReader<R> {
    type Item = Result<(usize, ManifestLine), ManifestError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        self.line += 1;
        let line = self.line;
        let length = match self.read_bounded_line() {
            Ok(Some(length)) => length,
            Ok(None) => {
                self.done = true;
                return None;
            }
            Err(source) => {
                self.done = true;
                return Some(Err(ManifestError::Io { line, source }));
            }
        };
        if length > MAX_LINE_BYTES {
            return Some(Err(ManifestError::Line {
                line,
                problem: LineProblem::TooLong { bytes: length },
            }));
        }
        let parsed = std::str::from_utf8(&self.buf)
            .map_err(|_| LineProblem::NotUtf8)
            .and_then(ManifestLine::parse);
        Some(
            parsed
                .map(|l| (line, l))
                .map_err(|problem| ManifestError::Line { line, problem }),
        )
    }
}

/// Writes manifest lines, one per line, each ending in `\n`.
#[derive(Debug)]
pub struct ManifestWriter<W> {
    writer: W,
}

impl<W: Write> ManifestWriter<W> {
    /// Writes to `writer`.
    pub fn new(writer: W) -> Self {
        ManifestWriter { writer }
    }

    /// Writes one line.
    pub fn write_line(&mut self, line: &ManifestLine) -> io::Result<()> {
        self.writer.write_all(line.to_json_line().as_bytes())?;
        self.writer.write_all(b"\n")
    }

    /// Flushes and gives back the writer.
    pub fn into_inner(mut self) -> io::Result<W> {
        self.writer.flush()?;
        Ok(self.writer)
    }
}

/// The outcome of checking a whole manifest.
#[derive(Debug, Default)]
pub struct Validation {
    /// Number of lines read.
    pub lines: usize,
    /// Number of valid data objects.
    pub valid: usize,
    /// Every bad line, in order.
    pub errors: Vec<ManifestError>,
}

impl Validation {
    /// True when every line is a valid data object.
    pub fn is_ok(&self) -> bool {
        self.errors.is_empty()
    }
}

/// Reads a whole manifest and lists every bad line. Stops only on an I/O error.
pub fn validate<R: BufRead>(reader: R) -> Validation {
    let mut report = Validation::default();
    for item in ManifestReader::new(reader) {
        report.lines += 1;
        match item {
            Ok(_) => report.valid += 1,
            Err(e) => report.errors.push(e),
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_byte_order_mark_before_the_first_line_is_accepted() {
        let text = "\u{feff}{\"source-ref\":\"s3://bkt/a.jpg\"}\n{\"source\":\"b\"}\n";
        let report = validate(text.as_bytes());
        assert_eq!((report.lines, report.valid), (2, 2), "{:?}", report.errors);
        let line = ManifestLine::parse("\u{feff}{\"source\":\"b\"}").unwrap();
        assert_eq!(line.to_json_line(), "{\"source\":\"b\"}");
    }
    use proptest::prelude::*;

    fn read_all(text: &str) -> Vec<Result<(usize, ManifestLine), ManifestError>> {
        ManifestReader::new(text.as_bytes()).collect()
    }

    #[test]
    fn keeps_key_order_and_exact_text() {
        let text = r#"{"z":1,"source-ref":"s3://b/k.jpg","a":{"y":2,"b":[1,2.50]},"m":"é"}"#;
        let line = ManifestLine::parse(text).unwrap();
        let keys: Vec<_> = line.fields().keys().map(String::as_str).collect();
        assert_eq!(keys, ["z", "source-ref", "a", "m"]);
        assert_eq!(line.to_json_line(), text);
        assert_eq!(line.source(), DataSource::SourceRef("s3://b/k.jpg"));
    }

    #[test]
    fn values_no_f64_can_hold_come_through_byte_for_byte_even_after_a_change() {
        let text = r#"{"a":1e400,"source-ref":"s3://b/k.jpg","big":123456789012345678901234567890,"z":-1E+999}"#;
        let mut line = ManifestLine::parse(text).expect("a line with 1e400 is a line");
        assert_eq!(line.to_json_line(), text, "unchanged: the text as read");
        assert_eq!(line.source(), DataSource::SourceRef("s3://b/k.jpg"));
        line.insert("animal", Value::from(1));
        assert_eq!(
            line.to_json_line(),
            r#"{"a":1e400,"source-ref":"s3://b/k.jpg","big":123456789012345678901234567890,"z":-1E+999,"animal":1}"#
        );
        // Overwriting or removing such a key drops its text.
        line.insert("a", Value::from("x"));
        line.remove("z");
        assert_eq!(
            line.to_json_line(),
            r#"{"a":"x","source-ref":"s3://b/k.jpg","big":123456789012345678901234567890,"animal":1}"#
        );
        // Any value a `Value` would rewrite keeps its text: `2.50`, an object with spaces.
        let mut line =
            ManifestLine::parse(r#"{"source-ref":"s3://b/k", "p": 2.50, "m": {"x": [1, 2]}}"#)
                .unwrap();
        line.insert("animal", Value::from(0));
        assert_eq!(
            line.to_json_line(),
            r#"{"source-ref":"s3://b/k","p":2.50,"m":{"x": [1, 2]},"animal":0}"#
        );
        assert_eq!(line.get("m"), Some(&serde_json::json!({"x": [1, 2]})));
        // Not JSON at all is still refused.
        assert!(matches!(
            ManifestLine::parse(r#"{"source-ref":"s3://b/k","a":1e400"#),
            Err(LineProblem::InvalidJson(_))
        ));
    }

    #[test]
    fn a_change_reserialises_in_order() {
        let mut line = ManifestLine::parse(r#"{"source":"hi", "x": 1}"#).unwrap();
        line.insert("x", Value::from(2));
        line.insert("lan", Value::from(0));
        assert_eq!(line.to_json_line(), r#"{"source":"hi","x":2,"lan":0}"#);
        line.insert("source", Value::from("changed"));
        assert_eq!(line.source(), DataSource::Source("hi"));
    }

    #[test]
    fn reports_every_bad_line_with_its_number() {
        let text = concat!(
            "{\"source-ref\":\"s3://b/1.jpg\"}\n",
            "not json\n",
            "[1,2]\n",
            "{\"a\":1}\n",
            "{\"source\":\"x\",\"source-ref\":\"s3://b/2\"}\n",
            "\n",
            "{\"source-ref\":5}\r\n",
            "{\"source\":\"ok\"}\r\n",
        );
        let results = read_all(text);
        assert_eq!(results.len(), 8);
        let problems: Vec<_> = results
            .iter()
            .filter_map(|r| match r {
                Err(ManifestError::Line { line, problem }) => Some((*line, problem.clone())),
                _ => None,
            })
            .collect();
        assert!(matches!(problems[0], (2, LineProblem::InvalidJson(_))));
        assert_eq!(problems[1], (3, LineProblem::NotAnObject("an array")));
        assert_eq!(problems[2], (4, LineProblem::NoSource));
        assert_eq!(problems[3], (5, LineProblem::BothSources));
        assert_eq!(problems[4], (6, LineProblem::Empty));
        assert_eq!(
            problems[5],
            (
                7,
                LineProblem::SourceNotString {
                    key: SOURCE_REF,
                    found: "a number"
                }
            )
        );
        assert!(matches!(&results[7], Ok((8, l)) if l.source() == DataSource::Source("ok")));
    }

    #[test]
    fn too_long_lines_are_reported_and_skipped_without_losing_the_next() {
        let long = format!("{{\"source\":\"{}\"}}", "x".repeat(MAX_LINE_BYTES + 10));
        let text = format!("{long}\n{{\"source\":\"next\"}}\n");
        let results = read_all(&text);
        assert_eq!(results.len(), 2);
        match &results[0] {
            Err(ManifestError::Line {
                line: 1,
                problem: LineProblem::TooLong { bytes },
            }) => {
                assert_eq!(*bytes, long.len());
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(matches!(&results[1], Ok((2, _))));
    }

    #[test]
    fn a_line_of_exactly_the_limit_is_accepted() {
        let pad = MAX_LINE_BYTES - "{\"source\":\"\"}".len();
        let line = format!("{{\"source\":\"{}\"}}", "y".repeat(pad));
        assert_eq!(line.len(), MAX_LINE_BYTES);
        let results = read_all(&format!("{line}\n"));
        assert!(results[0].is_ok());
    }

    #[test]
    fn invalid_utf8_is_a_line_problem() {
        let bytes = b"{\"source\":\"\xff\"}\n{\"source\":\"a\"}\n";
        let results: Vec<_> = ManifestReader::new(&bytes[..]).collect();
        assert!(matches!(
            results[0],
            Err(ManifestError::Line {
                line: 1,
                problem: LineProblem::NotUtf8
            })
        ));
        assert!(results[1].is_ok());
    }

    #[test]
    fn validate_counts() {
        let report = validate("{\"source\":\"a\"}\n{}\n".as_bytes());
        assert_eq!((report.lines, report.valid, report.errors.len()), (2, 1, 1));
        assert_eq!(report.errors[0].line(), 2);
        assert_eq!(
            report.errors[0].to_string(),
            "line 2: neither `source` nor `source-ref` is present"
        );
    }

    fn arb_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            (-1e6f64..1e6).prop_map(Value::from),
            ".{0,12}".prop_map(Value::from),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
                prop::collection::vec(("[a-z-]{1,6}", inner), 0..4)
                    .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        })
    }

    fn arb_line() -> impl Strategy<Value = Map<String, Value>> {
        (
            prop_oneof![Just(SOURCE), Just(SOURCE_REF)],
            ".{0,20}",
            prop::collection::vec(("[a-z][a-z0-9-]{0,8}", arb_value()), 0..5),
        )
            .prop_map(|(key, src, extra)| {
                let mut map = Map::new();
                for (k, v) in extra {
                    if k != SOURCE && k != SOURCE_REF {
                        map.insert(k, v);
                    }
                }
                let src = if key == SOURCE_REF {
                    format!("s3://bkt/{src}x")
                } else {
                    src
                };
                map.insert(key.to_owned(), Value::from(src));
                map
            })
    }

    proptest! {
        #[test]
        fn write_then_read_round_trips(lines in prop::collection::vec(arb_line(), 0..8)) {
            let mut writer = ManifestWriter::new(Vec::new());
            for fields in &lines {
                writer.write_line(&ManifestLine::from_object(fields.clone()).unwrap()).unwrap();
            }
            let bytes = writer.into_inner().unwrap();
            let read: Vec<_> = ManifestReader::new(&bytes[..]).collect::<Result<_, _>>().unwrap();
            prop_assert_eq!(read.len(), lines.len());
            for ((n, line), fields) in read.iter().zip(&lines) {
                prop_assert_eq!(line.fields(), fields);
                prop_assert!(*n >= 1);
            }
            // A second pass over unchanged lines is byte-for-byte identical.
            let mut again = ManifestWriter::new(Vec::new());
            for (_, line) in &read {
                again.write_line(line).unwrap();
            }
            prop_assert_eq!(again.into_inner().unwrap(), bytes);
        }

        #[test]
        fn original_spacing_survives(fields in arb_line()) {
            let pretty = serde_json::to_string_pretty(&fields).unwrap().replace('\n', " ");
            let line = ManifestLine::parse(&pretty).unwrap();
            prop_assert_eq!(line.to_json_line(), pretty.as_str());
        }

        #[test]
        fn reader_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
            let lines = bytes.iter().filter(|b| **b == b'\n').count();
            let n = ManifestReader::new(&bytes[..]).count();
            prop_assert!(n == lines || n == lines + 1);
        }
    }
}
