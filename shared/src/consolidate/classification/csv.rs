//! `task,worker,label` and `task,label` CSV files (the shared crowd sets, the bench generator's output),
//! and the accuracy / calibration measures used by tests, benches and the CLI.
//!
//! The files have a header row and no quoting, so a hand-written reader is enough: it accepts CRLF line
//! ends and blank lines and names the line of any malformed row.

use std::collections::HashMap;
use std::io::BufRead;

use super::SingleLabelItem;

/// Why a CSV file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CsvError {
    /// The underlying reader failed.
    #[error("reading CSV: {0}")]
    Io(#[from] std::io::Error),
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
        let mut raw = Vec::new();
        let mut class_names = Vec::<String>::new();
        let mut class_seen = HashMap::<String, usize>::new();
        for (task, worker, label) in triples {
            let class = *class_seen.entry(label.to_owned()).or_insert_with(|| {
                class_names.push(label.to_owned());
                class_names.len() - 1
            });
            raw.push((tasks.intern(task), workers.intern(worker), class));
        }
        let order = sorted_class_order(&class_names);
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
            tasks: tasks.names,
            workers: workers.names,
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
        let mut items: Vec<SingleLabelItem<'_>> = (0..self.tasks.len())
            .map(|_| SingleLabelItem { votes: Vec::new() })
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

#[derive(Default)]
struct Interner {
    names: Vec<String>,
    index: HashMap<String, usize>,
}

impl Interner {
    fn intern(&mut self, name: &str) -> usize {
        if let Some(&i) = self.index.get(name) {
            return i;
        }
        self.names.push(name.to_owned());
        self.index.insert(name.to_owned(), self.names.len() - 1);
        self.names.len() - 1
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

/// Reads the data rows of a headed CSV with exactly `n_fields` fields per row, calling `row` with the
/// 1-based line number and the fields.
fn read_rows<R: BufRead>(
    reader: R,
    n_fields: usize,
    mut row: impl FnMut(&[&str]),
) -> Result<(), CsvError> {
    let mut saw_header = false;
    for (index, line) in reader.lines().enumerate() {
        let line = line?;
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        if !saw_header {
            saw_header = true;
            continue;
        }
        let line_number = index + 1;
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        if fields.len() != n_fields {
            return Err(CsvError::FieldCount {
                line: line_number,
                expected: n_fields,
                found: fields.len(),
            });
        }
        if let Some(empty) = fields.iter().position(|f| f.is_empty()) {
            return Err(CsvError::EmptyField {
                line: line_number,
                field: empty + 1,
            });
        }
        row(&fields);
    }
    if saw_header {
        Ok(())
    } else {
        Err(CsvError::Empty)
    }
}

/// Reads a `task,worker,label` file (header row required, its names are not checked).
pub fn read_labels_csv<R: BufRead>(reader: R) -> Result<LabelTable, CsvError> {
    let mut triples = Vec::new();
    read_rows(reader, 3, |f| {
        triples.push((f[0].to_owned(), f[1].to_owned(), f[2].to_owned()));
    })?;
    Ok(LabelTable::from_triples(
        triples
            .iter()
            .map(|(t, w, l)| (t.as_str(), w.as_str(), l.as_str())),
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
