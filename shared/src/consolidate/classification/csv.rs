//! `task,worker,label` and `task,label` CSV files (the real crowd sets, the bench generator's output,
//! a user's own labels), and the accuracy / calibration measures used by tests, benches and the CLI.
//!
//! Files are read with the `csv` crate (RFC 4180 quoting, so a label may hold a comma or a quote; CRLF
//! line ends; blank lines skipped; a UTF-8 byte-order mark ignored), one reused record buffer and no
//! allocation per row beyond the first sighting of a task, worker or label. Every malformed row is named
//! by its line.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::io::Read;

use super::SingleLabelItem;

/// Why a CSV file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CsvError {
    /// The underlying reader failed.
    #[error("reading CSV: {0}")]
    Io(#[from] std::io::Error),
    /// The CSV syntax is broken (an unterminated quote, …).
    #[error("line {line}: {message}")]
    Syntax {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A field is not UTF-8.
    #[error("line {line}: field {field} is not valid UTF-8")]
    InvalidUtf8 {
        /// 1-based line number.
        line: usize,
        /// 1-based field number.
        field: usize,
    },
    /// The file has no header row.
    #[error("CSV file is empty (a header row is required)")]
    Empty,
    /// A row does not have the expected number of fields.
    #[error("line {line}: expected {expected} comma-separated fields, found {found}")]
    FieldCount {
        /// 1-based line number.
        line: usize,
        /// Fields required.
        expected: usize,
        /// Fields found.
        found: usize,
    },
    /// A field is empty.
    #[error("line {line}: field {field} is empty")]
    EmptyField {
        /// 1-based line number.
        line: usize,
        /// 1-based field number.
        field: usize,
    },
}

/// One worker judgment, as dense indices into a [`LabelTable`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LabelRow {
    /// Index into [`LabelTable::tasks`].
    pub task: usize,
    /// Index into [`LabelTable::workers`].
    pub worker: usize,
    /// Index into [`LabelTable::classes`].
    pub class: usize,
}

/// A `task,worker,label` file: tasks and workers in first-seen order, classes sorted (numerically when
/// every label is an integer, else lexicographically) so that class indices do not depend on row order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LabelTable {
    /// Task ids, first-seen order.
    pub tasks: Vec<String>,
    /// Worker ids, first-seen order.
    pub workers: Vec<String>,
    /// Class names, sorted.
    pub classes: Vec<String>,
    /// The judgments, in file order.
    pub rows: Vec<LabelRow>,
}

impl LabelTable {
    /// Builds a table from `(task, worker, label)` triples (classes sorted as in [`read_labels_csv`]).
    pub fn from_triples<'a>(
        triples: impl IntoIterator<Item = (&'a str, &'a str, &'a str)>,
    ) -> Self {
        let mut tasks = Interner::default();
        let mut workers = Interner::default();
        let mut labels = Interner::default();
        let raw = triples
            .into_iter()
            .map(|(task, worker, label)| {
                (
                    tasks.intern(task),
                    workers.intern(worker),
                    labels.intern(label),
                )
            })
            .collect();
        Self::from_interned(
            tasks.into_names(),
            workers.into_names(),
            &labels.into_names(),
            raw,
        )
    }

    /// A table from interned names and `(task, worker, label)` index rows, labels in first-seen order:
    /// the classes are sorted and the rows renumbered to match.
    fn from_interned(
        tasks: Vec<String>,
        workers: Vec<String>,
        class_names: &[String],
        raw: Vec<(usize, usize, usize)>,
    ) -> Self {
        let order = sorted_class_order(class_names);
        let mut new_index = vec![0; class_names.len()];
        for (new, &old) in order.iter().enumerate() {
            new_index[old] = new;
        }
        let classes = order.iter().map(|&old| class_names[old].clone()).collect();
        let rows = raw
            .into_iter()
            .map(|(task, worker, class)| LabelRow {
                task,
                worker,
                class: new_index[class],
            })
            .collect();
        Self {
            tasks,
            workers,
            classes,
            rows,
        }
    }

    /// The class index of a label name.
    pub fn class_index(&self, label: &str) -> Option<usize> {
        self.classes.iter().position(|c| c == label)
    }

    /// One [`SingleLabelItem`] per task, in [`LabelTable::tasks`] order.
    pub fn single_label_items(&self) -> Vec<SingleLabelItem<'_>> {
        // Each task's vote list allocated once at its final size (growing 100,000 lists by doubling
        // cost more than the votes).
        let mut answers = vec![0usize; self.tasks.len()];
        for row in &self.rows {
            if let Some(n) = answers.get_mut(row.task) {
                *n += 1;
            }
        }
        let mut items: Vec<SingleLabelItem<'_>> = answers
            .into_iter()
            .map(|n| SingleLabelItem {
                votes: Vec::with_capacity(n),
            })
            .collect();
        for row in &self.rows {
            if let (Some(item), Some(worker)) =
                (items.get_mut(row.task), self.workers.get(row.worker))
            {
                item.votes.push((worker.as_str(), row.class));
            }
        }
        items
    }

    /// The gold class index of every task: `None` when the task has no gold label, and `usize::MAX`
    /// (which no prediction matches) when its gold label is a class no worker used.
    pub fn gold_classes(&self, gold: &[(String, String)]) -> Vec<Option<usize>> {
        let by_task: HashMap<&str, &str> =
            gold.iter().map(|(t, l)| (t.as_str(), l.as_str())).collect();
        self.tasks
            .iter()
            .map(|task| {
                by_task
                    .get(task.as_str())
                    .map(|label| self.class_index(label).unwrap_or(usize::MAX))
            })
            .collect()
    }
}

/// Names in first-seen order, each stored once: the set's order is the index. A name of up to seven
/// bytes (most task, worker and label ids) is looked up by its bytes packed into one integer, which
/// hashes and compares in a few instructions; a longer one is hashed with FNV-1a (SipHash was most of
/// the read time of a 500,000-row file).
#[derive(Default)]
struct Interner {
    names: indexmap::IndexSet<String, BuildHasherDefault<super::FnvHasher>>,
    short: HashMap<u64, usize, BuildHasherDefault<PackedNameHasher>>,
    /// The last name seen, as `(packed name or None, index)`.
    last: Option<(Option<u64>, usize)>,
}

/// A name of at most seven bytes as one integer: its bytes, and its length in the top byte (so that
/// names differing only by trailing NUL bytes stay distinct). `None` for a longer name.
fn packed(name: &str) -> Option<u64> {
    let bytes = name.as_bytes();
    if bytes.len() > 7 {
        return None;
    }
    // Shifted into a register: bytes stored into an array and read back as one word stall the load.
    let key = bytes
        .iter()
        .enumerate()
        .fold((bytes.len() as u64) << 56, |key, (i, &b)| {
            key | u64::from(b) << (8 * i)
        });
    Some(key)
}

/// Hashes a [`packed`] name with one folded multiply (the high and low halves of a 128-bit product, so
/// that both the bucket bits and the tag bits of the table depend on every byte).
#[derive(Default)]
struct PackedNameHasher(u64);

impl std::hash::Hasher for PackedNameHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `u64` keys are hashed with this hasher; any other input still hashes, byte by byte.
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u64(&mut self, key: u64) {
        let product =
            u128::from(self.0 ^ key).wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835);
        self.0 = (product as u64) ^ ((product >> 64) as u64);
    }
}

impl Interner {
    fn intern(&mut self, name: &str) -> usize {
        let key = packed(name);
        // Rows usually come grouped (a task's answers together): the last name seen is checked first.
        if let Some((last_key, last)) = self.last {
            let same = match key {
                Some(key) => last_key == Some(key),
                None => last_key.is_none() && self.names.get_index(last).is_some_and(|n| n == name),
            };
            if same {
                return last;
            }
        }
        let index = match key {
            Some(key) => match self.short.get(&key) {
                Some(&i) => i,
                None => {
                    let i = self.names.insert_full(name.to_owned()).0;
                    self.short.insert(key, i);
                    i
                }
            },
            None => match self.names.get_index_of(name) {
                Some(i) => i,
                None => self.names.insert_full(name.to_owned()).0,
            },
        };
        self.last = Some((key, index));
        index
    }

    /// The names, in first-seen order.
    fn into_names(self) -> Vec<String> {
        self.names.into_iter().collect()
    }
}

fn sorted_class_order(names: &[String]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..names.len()).collect();
    let numeric: Option<Vec<i128>> = names.iter().map(|n| n.parse::<i128>().ok()).collect();
    match numeric {
        Some(values) => order.sort_by_key(|&i| values[i]),
        None => order.sort_by(|&a, &b| names[a].cmp(&names[b])),
    }
    order
}

/// The 1-based line of the record the `csv` crate places at byte `offset` of `data`. The crate puts a
/// record at the end of whatever precedes it (the `\n` of a `\r\n`, an empty line), and a record never
/// starts with a line end, so the line ends at `offset` are stepped over first. Only computed to name a
/// bad row.
fn line_of(data: &[u8], offset: u64) -> usize {
    let mut offset = usize::try_from(offset)
        .unwrap_or(usize::MAX)
        .min(data.len());
    while matches!(data.get(offset), Some(b'\r' | b'\n')) {
        offset += 1;
    }
    memchr::memchr_iter(b'\n', &data[..offset]).count() + 1
}

/// The most fields a row of these files has.
const MAX_FIELDS: usize = 3;

/// The UTF-8 byte-order mark some editors put at the start of a file.
const BYTE_ORDER_MARK: &[u8] = b"\xef\xbb\xbf";

/// One record's checks, shared by both parsers: blank records and the header are skipped, the field
/// count must be `n_fields`, every field UTF-8 and non-empty once trimmed; then `row` gets the fields.
struct Records<F> {
    n_fields: usize,
    saw_header: bool,
    row: F,
}

impl<F: FnMut(&[&str])> Records<F> {
    /// `count` fields, the first [`MAX_FIELDS`] of them in `fields`; `blank` when every field (not only
    /// the first ones) is whitespace; `line` names the record.
    fn accept<'a, T: Field<'a>>(
        &mut self,
        count: usize,
        fields: &[T; MAX_FIELDS],
        blank: bool,
        line: impl Fn() -> usize,
    ) -> Result<(), CsvError> {
        let shown = &fields[..count.min(MAX_FIELDS)];
        // A line of blanks is skipped like an empty one.
        if blank {
            return Ok(());
        }
        if !self.saw_header {
            self.saw_header = true;
            return Ok(());
        }
        if count != self.n_fields {
            return Err(CsvError::FieldCount {
                line: line(),
                expected: self.n_fields,
                found: count,
            });
        }
        // The fields of one row, on the stack (the files have two or three).
        let mut text: [&str; MAX_FIELDS] = [""; MAX_FIELDS];
        for (i, field) in shown.iter().enumerate() {
            let field = trim(field.text().ok_or_else(|| CsvError::InvalidUtf8 {
                line: line(),
                field: i + 1,
            })?);
            if field.is_empty() {
                return Err(CsvError::EmptyField {
                    line: line(),
                    field: i + 1,
                });
            }
            text[i] = field;
        }
        (self.row)(&text[..count.min(MAX_FIELDS)]);
        Ok(())
    }
}

/// A field as a parser found it: bytes still to be checked for UTF-8, or text already checked (a whole
/// file is checked at once when it has no quotes).
trait Field<'a>: Copy {
    fn text(self) -> Option<&'a str>;
}

impl<'a> Field<'a> for &'a [u8] {
    fn text(self) -> Option<&'a str> {
        std::str::from_utf8(self).ok()
    }
}

impl<'a> Field<'a> for &'a str {
    fn text(self) -> Option<&'a str> {
        Some(self)
    }
}

/// `field` without leading and trailing whitespace (`str::trim`), checking the two ends' bytes first:
/// nearly every field has none to trim.
fn trim(field: &str) -> &str {
    let solid = |b: Option<&u8>| b.is_some_and(|&b| b.is_ascii() && !(b as char).is_whitespace());
    let bytes = field.as_bytes();
    if solid(bytes.first()) && solid(bytes.last()) {
        field
    } else {
        field.trim()
    }
}

/// Reads the data rows of a headed CSV with exactly `n_fields` (at most [`MAX_FIELDS`]) fields per row,
/// calling `row` with the fields (trimmed). The input is read whole: a file without a quote character
/// (nearly every labels file) is split on line ends and commas directly, which is what RFC 4180 reduces
/// to without quotes; one with quotes goes through the `csv` crate. Both give the same rows, the same
/// errors and the same line numbers (a property test holds them to it).
fn read_rows<R: Read>(
    mut reader: R,
    n_fields: usize,
    row: impl FnMut(&[&str]),
) -> Result<(), CsvError> {
    let mut data = Vec::new();
    reader.read_to_end(&mut data)?;
    let data = data.strip_prefix(BYTE_ORDER_MARK).unwrap_or(&data);
    let mut records = Records {
        n_fields,
        saw_header: false,
        row,
    };
    if memchr::memchr(b'"', data).is_none() {
        unquoted_rows(data, &mut records)?;
    } else {
        quoted_rows(data, &mut records)?;
    }
    if records.saw_header {
        Ok(())
    } else {
        Err(CsvError::Empty)
    }
}

/// The records of a file without quotes: `\n`, `\r` and `\r\n` end a record, empty records are skipped
/// (as the `csv` crate does), fields are split on commas. A file that is UTF-8 throughout (checked at
/// once) is split as text; otherwise as bytes, each field checked to name the bad one.
fn unquoted_rows<F: FnMut(&[&str])>(data: &[u8], records: &mut Records<F>) -> Result<(), CsvError> {
    match std::str::from_utf8(data) {
        // Every cut falls beside an ASCII comma or line end, so on a character boundary.
        Ok(text) => split_unquoted(data, records, |from, to| &text[from..to]),
        Err(_) => split_unquoted(data, records, |from, to| &data[from..to]),
    }
}

fn split_unquoted<'a, T: Field<'a>, F: FnMut(&[&str])>(
    data: &'a [u8],
    records: &mut Records<F>,
    field: impl Fn(usize, usize) -> T,
) -> Result<(), CsvError> {
    // Lines are counted by `\n` only, as an editor numbers them.
    let mut line = 1;
    let mut start = 0;
    let ends = memchr::memchr2_iter(b'\n', b'\r', data).chain(std::iter::once(data.len()));
    for end in ends {
        let (from, record_line) = (start, line);
        if data.get(end) == Some(&b'\n') {
            line += 1;
        }
        start = end + 1;
        let Some(record) = data.get(from..end).filter(|r| !r.is_empty()) else {
            continue;
        };
        let mut fields = [field(from, from); MAX_FIELDS];
        let mut count = 0;
        let mut field_start = from;
        let commas = record.iter().enumerate().filter(|&(_, &b)| b == b',');
        for cut in commas.map(|(i, _)| from + i).chain(std::iter::once(end)) {
            if let Some(slot) = fields.get_mut(count) {
                *slot = field(field_start, cut);
            }
            count += 1;
            field_start = cut + 1;
        }
        let blank = record.iter().all(|&b| b == b',' || b.is_ascii_whitespace());
        records.accept(count, &fields, blank, || record_line)?;
    }
    Ok(())
}

/// The records of a file with quotes, through the `csv` crate (RFC 4180: a quoted field may hold a
/// comma, a doubled quote or a line end).
fn quoted_rows<F: FnMut(&[&str])>(data: &[u8], records: &mut Records<F>) -> Result<(), CsvError> {
    let mut csv = ::csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(data);
    let line_at =
        |position: Option<&::csv::Position>| position.map_or(0, |p| line_of(data, p.byte()));
    let mut record = ::csv::ByteRecord::new();
    loop {
        let more = csv.read_byte_record(&mut record).map_err(|e| {
            let line = line_at(e.position());
            match e.into_kind() {
                ::csv::ErrorKind::Io(io) => CsvError::Io(io),
                other => CsvError::Syntax {
                    line,
                    message: format!("{other:?}"),
                },
            }
        })?;
        if !more {
            return Ok(());
        }
        let mut fields: [&[u8]; MAX_FIELDS] = [b""; MAX_FIELDS];
        for (slot, field) in fields.iter_mut().zip(record.iter()) {
            *slot = field;
        }
        let blank = record.iter().all(|f| f.iter().all(u8::is_ascii_whitespace));
        records.accept(record.len(), &fields, blank, || line_at(record.position()))?;
    }
}

/// Reads a `task,worker,label` file (header row required, its names are not checked).
pub fn read_labels_csv<R: Read>(reader: R) -> Result<LabelTable, CsvError> {
    let mut tasks = Interner::default();
    let mut workers = Interner::default();
    let mut labels = Interner::default();
    let mut raw: Vec<(usize, usize, usize)> = Vec::new();
    read_rows(reader, 3, |f| {
        raw.push((
            tasks.intern(f[0]),
            workers.intern(f[1]),
            labels.intern(f[2]),
        ));
    })?;
    Ok(LabelTable::from_interned(
        tasks.into_names(),
        workers.into_names(),
        &labels.into_names(),
        raw,
    ))
}

/// Reads a `task,label` gold file (header row required) as `(task, label)` pairs in file order.
pub fn read_gold_csv<R: Read>(reader: R) -> Result<Vec<(String, String)>, CsvError> {
    let mut gold = Vec::new();
    read_rows(reader, 2, |f| gold.push((f[0].to_owned(), f[1].to_owned())))?;
    Ok(gold)
}

/// The share of items with a gold label whose predicted label matches it (items without gold are
/// skipped; a missing prediction counts as wrong). 0 when nothing can be scored.
pub fn accuracy(predicted: &[Option<usize>], gold: &[Option<usize>]) -> f64 {
    let mut scored = 0usize;
    let mut right = 0usize;
    for (p, g) in predicted.iter().zip(gold) {
        if let Some(g) = g {
            scored += 1;
            right += usize::from(*p == Some(*g));
        }
    }
    if scored == 0 {
        0.0
    } else {
        right as f64 / scored as f64
    }
}

/// Expected calibration error: items are put in `n_bins` equal-width bins by confidence, and the
/// gap between each bin's mean confidence and its accuracy is averaged, weighted by bin size.
/// Items without gold are skipped. 0 when nothing can be scored.
pub fn expected_calibration_error(
    confidence: &[f64],
    predicted: &[Option<usize>],
    gold: &[Option<usize>],
    n_bins: usize,
) -> f64 {
    let n_bins = n_bins.max(1);
    let mut confidence_sum = vec![0.0; n_bins];
    let mut right = vec![0.0; n_bins];
    let mut count = vec![0usize; n_bins];
    for ((c, p), g) in confidence.iter().zip(predicted).zip(gold) {
        let Some(g) = g else { continue };
        let c = if c.is_finite() {
            c.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let bin = ((c * n_bins as f64) as usize).min(n_bins - 1);
        confidence_sum[bin] += c;
        right[bin] += f64::from(u8::from(*p == Some(*g)));
        count[bin] += 1;
    }
    let total: usize = count.iter().sum();
    if total == 0 {
        return 0.0;
    }
    (0..n_bins)
        .filter(|&b| count[b] > 0)
        .map(|b| (confidence_sum[b] - right[b]).abs() / total as f64)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_crlf_blank_lines_and_sorts_numeric_classes() {
        let text = "task,worker,label\r\n1,a,10\r\n\r\n1,b,2\n2,a,9\n";
        let table = read_labels_csv(text.as_bytes()).expect("parses");
        assert_eq!(table.classes, ["2", "9", "10"]);
        assert_eq!(table.tasks, ["1", "2"]);
        assert_eq!(table.workers, ["a", "b"]);
        assert_eq!(
            table.rows[0],
            LabelRow {
                task: 0,
                worker: 0,
                class: 2
            }
        );
        let items = table.single_label_items();
        assert_eq!(items[0].votes, [("a", 2), ("b", 0)]);
    }

    #[test]
    fn quoted_labels_a_bom_and_invalid_utf8() {
        // A label with a comma and one with a quote, RFC 4180 style, after a byte-order mark.
        let text = "\u{feff}task,worker,label\n1,a,\"dog, small\"\n1,b,\"say \"\"hi\"\"\"\n";
        let table = read_labels_csv(text.as_bytes()).expect("parses");
        assert_eq!(table.tasks, ["1"]);
        assert_eq!(table.classes, ["dog, small", "say \"hi\""]);
        // Invalid UTF-8 is named by its line and field.
        let bytes = b"task,worker,label\n1,a,x\n2,\xff,y\n";
        let err = read_labels_csv(&bytes[..]).expect_err("not UTF-8");
        assert!(
            matches!(err, CsvError::InvalidUtf8 { line: 3, field: 2 }),
            "{err:?}"
        );
        assert_eq!(err.to_string(), "line 3: field 2 is not valid UTF-8");
    }

    #[test]
    fn reports_the_line_of_a_bad_row() {
        let text = "task,worker,label\n1,a,x\n\n1,b\n";
        let err = read_labels_csv(text.as_bytes()).expect_err("bad row");
        assert!(matches!(
            err,
            CsvError::FieldCount {
                line: 4,
                expected: 3,
                found: 2
            }
        ));
        let err = read_gold_csv("task,label\n1,\n".as_bytes()).expect_err("empty field");
        assert!(matches!(err, CsvError::EmptyField { line: 2, field: 2 }));
        assert!(matches!(read_gold_csv("".as_bytes()), Err(CsvError::Empty)));
    }

    /// One of the two parsers, with the row callback the tests give it.
    type Parser = fn(&[u8], &mut Records<&mut dyn FnMut(&[&str])>) -> Result<(), CsvError>;

    /// Every row (or the first error) a parser gives for `data`, as text.
    fn parsed(
        data: &[u8],
        n_fields: usize,
        parser: Parser,
    ) -> Result<(bool, Vec<Vec<String>>), String> {
        let mut rows = Vec::new();
        let mut push = |f: &[&str]| rows.push(f.iter().map(|s| (*s).to_owned()).collect());
        let mut records = Records {
            n_fields,
            saw_header: false,
            row: &mut push as &mut dyn FnMut(&[&str]),
        };
        parser(data, &mut records).map_err(|e| e.to_string())?;
        let saw_header = records.saw_header;
        Ok((saw_header, rows))
    }

    proptest::proptest! {
        /// Without quotes, splitting on line ends and commas is exactly what the `csv` crate reads:
        /// the same rows, the same errors, on the same lines.
        // The closures fix the parsers' generic lifetimes to the callback's.
        #[allow(clippy::redundant_closure)]
        #[test]
        fn the_unquoted_fast_path_reads_what_the_csv_crate_reads(
            bytes in proptest::collection::vec(
                proptest::sample::select(b"ab1 ,,\n\n\r\t\xc3\xa9\xff".to_vec()), 0..80),
            n_fields in 2usize..=3,
        ) {
            let fast = parsed(&bytes, n_fields, |d, r| unquoted_rows(d, r));
            let crate_csv = parsed(&bytes, n_fields, |d, r| quoted_rows(d, r));
            proptest::prop_assert_eq!(fast, crate_csv);
        }
    }

    #[test]
    fn both_parsers_name_the_same_line_after_blank_lines() {
        let text = b"task,worker,label\r\n\r\n1,a,x\n\n\r\n \t, ,\n1,b\n";
        for parser in [unquoted_rows, quoted_rows] {
            let mut records = Records {
                n_fields: 3,
                saw_header: false,
                row: |_: &[&str]| {},
            };
            let err = parser(text, &mut records).expect_err("short row");
            assert_eq!(
                err.to_string(),
                "line 7: expected 3 comma-separated fields, found 2"
            );
        }
    }

    #[test]
    fn accuracy_and_ece() {
        let predicted = [Some(0), Some(1), Some(1), None];
        let gold = [Some(0), Some(0), Some(1), None];
        assert!((accuracy(&predicted, &gold) - 2.0 / 3.0).abs() < 1e-12);
        let ece = expected_calibration_error(&[0.95, 0.95, 0.55, 0.1], &predicted, &gold, 10);
        // Bin 9: conf 1.9 over 2 items, 1 right; bin 5: conf 0.55, 1 right.
        assert!((ece - ((1.9f64 - 1.0).abs() + (0.55f64 - 1.0).abs()) / 3.0).abs() < 1e-12);
    }
}
