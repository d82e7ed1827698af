//! `task,worker,label` and `task,label` CSV files (the real crowd sets, the bench generator's output,
//! a user's own labels), and the accuracy / calibration measures used by tests, benches and the CLI.
//!
//! Files are read with the `csv` crate (RFC 4180 quoting, so a label may hold a comma or a quote; CRLF
//! line ends; blank lines skipped; a UTF-8 byte-order mark ignored), one reused record buffer and no
//! allocation per row beyond the first sighting of a task, worker or label. Every malformed row is named
//! by its line.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::io::BufRead;

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

/// Names in first-seen order, each hashed once per sighting with FNV-1a (task and worker ids are short;
/// SipHash was most of the read time of a 500,000-row file) and stored once: the set's order is the
/// index.
#[derive(Default)]
struct Interner {
    names: indexmap::IndexSet<String, BuildHasherDefault<super::FnvHasher>>,
    last: Option<usize>,
}

impl Interner {
    fn intern(&mut self, name: &str) -> usize {
        // Rows usually come grouped (a task's answers together, few labels): the last name seen is
        // checked before hashing.
        if let Some(last) = self.last
            && self.names.get_index(last).is_some_and(|n| n == name)
        {
            return last;
        }
        let index = match self.names.get_index_of(name) {
            Some(i) => i,
            None => self.names.insert_full(name.to_owned()).0,
        };
        self.last = Some(index);
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

/// A reader that remembers where every line starts and which lines are empty, so that a record's byte
/// offset (which the `csv` crate reports exactly) gives its physical line number (which the crate does
/// not count across the empty lines it skips; a record after one is reported at the empty line).
struct LineStarts<R> {
    inner: R,
    offset: u64,
    /// Whether the current line has had a byte other than `\r`.
    content: bool,
    lines: std::rc::Rc<std::cell::RefCell<Lines>>,
}

/// Byte offsets of the first byte after each `\n`, and per line whether it was empty.
#[derive(Default)]
struct Lines {
    starts: Vec<u64>,
    empty: Vec<bool>,
}

impl Lines {
    /// The 1-based line of the record at byte `offset`: the line holding it, moved past empty lines.
    fn line_of(&self, offset: u64) -> usize {
        let mut line = self.starts.partition_point(|&s| s <= offset);
        while self.empty.get(line).copied().unwrap_or(false) {
            line += 1;
        }
        line + 1
    }
}

impl<R: std::io::Read> std::io::Read for LineStarts<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut lines = self.lines.borrow_mut();
        for (i, &b) in buf[..n].iter().enumerate() {
            match b {
                b'\n' => {
                    lines.starts.push(self.offset + i as u64 + 1);
                    lines.empty.push(!self.content);
                    self.content = false;
                }
                b'\r' => {}
                _ => self.content = true,
            }
        }
        self.offset += n as u64;
        Ok(n)
    }
}

/// The most fields a row of these files has.
const MAX_FIELDS: usize = 3;

/// Reads the data rows of a headed CSV with exactly `n_fields` (at most [`MAX_FIELDS`]) fields per row,
/// calling `row` with the fields (trimmed).
fn read_rows<R: BufRead>(
    reader: R,
    n_fields: usize,
    mut row: impl FnMut(&[&str]),
) -> Result<(), CsvError> {
    let lines = std::rc::Rc::new(std::cell::RefCell::new(Lines::default()));
    let mut csv = ::csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(LineStarts {
            inner: reader,
            offset: 0,
            content: false,
            lines: std::rc::Rc::clone(&lines),
        });
    let line_at = |position: Option<&::csv::Position>| {
        position.map_or(0, |p| lines.borrow().line_of(p.byte()))
    };
    let mut record = ::csv::ByteRecord::new();
    let mut saw_header = false;
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
            break;
        }
        // The line number is only needed to name a bad row: found (a binary search over the line
        // starts) when there is one, not for every row.
        let line = || line_at(record.position());
        // A line of blanks is skipped like an empty one.
        if record.iter().all(|f| f.iter().all(u8::is_ascii_whitespace)) {
            continue;
        }
        if !saw_header {
            saw_header = true;
            continue;
        }
        if record.len() != n_fields {
            return Err(CsvError::FieldCount {
                line: line(),
                expected: n_fields,
                found: record.len(),
            });
        }
        // The fields of one row, on the stack (the files have two or three).
        let mut fields: [&str; MAX_FIELDS] = [""; MAX_FIELDS];
        for (i, field) in record.iter().enumerate().take(MAX_FIELDS) {
            let text = std::str::from_utf8(field)
                .map_err(|_| CsvError::InvalidUtf8 {
                    line: line(),
                    field: i + 1,
                })?
                .trim();
            if text.is_empty() {
                return Err(CsvError::EmptyField {
                    line: line(),
                    field: i + 1,
                });
            }
            fields[i] = text;
        }
        row(&fields[..n_fields.min(MAX_FIELDS)]);
    }
    if saw_header {
        Ok(())
    } else {
        Err(CsvError::Empty)
    }
}

/// Reads a `task,worker,label` file (header row required, its names are not checked).
pub fn read_labels_csv<R: BufRead>(reader: R) -> Result<LabelTable, CsvError> {
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
pub fn read_gold_csv<R: BufRead>(reader: R) -> Result<Vec<(String, String)>, CsvError> {
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
