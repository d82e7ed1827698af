//! The manifest work of a chain step: how many objects are labeled, which labels are unsure, which
//! staged objects are new, and where a stopped job's newest manifest is.
//!
//! Lines are kept as [`ManifestLine`]s, so every line the chainer does not change is written back
//! byte-for-byte: a chained job's input is the previous job's output, not a re-serialisation of it.

use std::collections::HashSet;

use serde_json::Value;

use crate::labeling_job::LabelingJobDescription;
use crate::lan::{is_labeled_under, metadata_key};
use crate::manifest::{ManifestError, ManifestLine, ManifestReader, ManifestWriter};
use crate::output;
use crate::s3_uri::S3Uri;

/// A manifest with a bad line.
#[derive(Debug, thiserror::Error)]
#[error("manifest {uri}: {source}")]
pub struct BadManifest {
    /// Where the manifest is.
    pub uri: String,
    /// The first bad line.
    #[source]
    pub source: ManifestError,
}

/// Parses a whole manifest; the first bad line fails it (a chained job must not silently lose objects).
pub fn parse_manifest(uri: &S3Uri, bytes: &[u8]) -> Result<Vec<ManifestLine>, BadManifest> {
    ManifestReader::new(bytes)
        .map(|item| {
            item.map(|(_, line)| line).map_err(|source| BadManifest {
                uri: uri.to_string(),
                source,
            })
        })
        .collect()
}

/// Lines labeled under `lan`.
pub fn count_labeled(lines: &[ManifestLine], lan: &str) -> usize {
    lines.iter().filter(|l| is_labeled_under(l, lan)).count()
}

/// The confidence of the label under `lan`: `<LAN>-metadata.confidence`; for boxes, point clouds and
/// entities the lowest `confidence` of `objects[]`/`entities[]`; for multi-label the lowest value of
/// `confidence-map`; for segmentation the lowest of `internal-color-map`. `None` when the line carries
/// none of these (or is not labeled).
pub fn label_confidence(line: &ManifestLine, lan: &str) -> Option<f64> {
    if !is_labeled_under(line, lan) {
        return None;
    }
    let metadata = line.get(&metadata_key(lan))?.as_object()?;
    if let Some(c) = metadata.get(output::CONFIDENCE).and_then(number) {
        return Some(c);
    }
    let lowest = |values: &mut dyn Iterator<Item = f64>| values.reduce(f64::min);
    for list in [output::OBJECTS, output::ENTITIES] {
        if let Some(items) = metadata.get(list).and_then(Value::as_array) {
            // 3D tracking stores a list of confidences per object; take every number found.
            return lowest(
                &mut items
                    .iter()
                    .filter_map(|o| o.get(output::CONFIDENCE))
                    .flat_map(numbers),
            );
        }
    }
    if let Some(map) = metadata
        .get(output::CONFIDENCE_MAP)
        .and_then(Value::as_object)
    {
        return lowest(&mut map.values().filter_map(number));
    }
    if let Some(map) = metadata
        .get(output::INTERNAL_COLOR_MAP)
        .and_then(Value::as_object)
    {
        return lowest(
            &mut map
                .values()
                .filter_map(|c| c.get(output::CONFIDENCE))
                .filter_map(number),
        );
    }
    None
}

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        // Some writers quote numbers; read them rather than treat the label as unscored.
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn numbers(v: &Value) -> Vec<f64> {
    match v {
        Value::Array(items) => items.iter().filter_map(number).collect(),
        other => number(other).into_iter().collect(),
    }
}

/// The labeled lines whose confidence under `lan` is below `threshold`. A labeled line without any
/// confidence is kept: nothing says it is good enough. Unlabeled lines are dropped: there is no label to
/// review.
pub fn below_threshold(lines: Vec<ManifestLine>, lan: &str, threshold: f64) -> Vec<ManifestLine> {
    lines
        .into_iter()
        .filter(|l| is_labeled_under(l, lan))
        .filter(|l| label_confidence(l, lan).is_none_or(|c| c < threshold))
        .collect()
}

/// Identity of a data object: its source key and value.
fn identity(line: &ManifestLine) -> (&'static str, String) {
    let source = line.source();
    (source.key(), source.value().to_owned())
}

/// Appends the lines of `staging` whose data object (`source` / `source-ref`) is not in `lines` yet, in
/// order and once each; returns how many were appended.
pub fn append_new_objects(lines: &mut Vec<ManifestLine>, staging: Vec<ManifestLine>) -> usize {
    let mut seen: HashSet<(&'static str, String)> = lines.iter().map(identity).collect();
    let before = lines.len();
    for line in staging {
        if seen.insert(identity(&line)) {
            lines.push(line);
        }
    }
    lines.len() - before
}

/// The manifest as JSON Lines.
pub fn manifest_bytes(lines: &[ManifestLine]) -> Vec<u8> {
    let mut writer = ManifestWriter::new(Vec::new());
    for line in lines {
        // Writing into a Vec cannot fail.
        let _ = writer.write_line(line);
    }
    writer.into_inner().unwrap_or_default()
}

/// `<S3OutputPath>/<LabelingJobName>/`: the job's output folder (the name as created, not the
/// lower-cased one of its ARN). `None` when the output path is not an `s3://` URI.
pub fn job_output_folder(job: &LabelingJobDescription) -> Option<S3Uri> {
    let base: S3Uri = job.output_config.s3_output_path.parse().ok()?;
    Some(base.join(&format!("{}/", job.labeling_job_name)))
}

/// `<job output folder>/manifests/intermediate/`.
pub fn intermediate_manifests_prefix(job: &LabelingJobDescription) -> Option<S3Uri> {
    job_output_folder(job).map(|f| f.join("manifests/intermediate/"))
}

/// The `<prefix><n>/output.manifest` with the highest numeric `n` among `keys` (numeric, so iteration 10
/// beats iteration 9 although S3 lists it first).
pub fn newest_intermediate_manifest(keys: &[S3Uri], prefix: &S3Uri) -> Option<S3Uri> {
    keys.iter()
        .filter(|k| k.bucket() == prefix.bucket())
        .filter_map(|k| {
            let rest = k.key().strip_prefix(prefix.key())?;
            let (iteration, file) = rest.split_once('/')?;
            let n: u64 = iteration.parse().ok()?;
            (file == "output.manifest").then_some((n, k))
        })
        .max_by_key(|(n, _)| *n)
        .map(|(_, k)| k.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(json: &str) -> ManifestLine {
        ManifestLine::parse(json).unwrap()
    }

    fn uri(s: &str) -> S3Uri {
        s.parse().unwrap()
    }

    #[test]
    fn reads_every_kind_of_confidence() {
        let single = line(
            r#"{"source-ref":"s3://bkt/1","sport":0,"sport-metadata":{"class-name":"football","confidence":0.8}}"#,
        );
        assert_eq!(label_confidence(&single, "sport"), Some(0.8));
        let boxes = line(
            r#"{"source-ref":"s3://bkt/2","box":{"annotations":[]},"box-metadata":{"objects":[{"confidence":0.8},{"confidence":0.09},{"confidence":0.9}]}}"#,
        );
        assert_eq!(label_confidence(&boxes, "box"), Some(0.09));
        let no_boxes = line(
            r#"{"source-ref":"s3://bkt/3","box":{"annotations":[]},"box-metadata":{"objects":[]}}"#,
        );
        assert_eq!(label_confidence(&no_boxes, "box"), None);
        let multi = line(
            r#"{"source-ref":"s3://bkt/4","tags":[1,0,8],"tags-metadata":{"confidence-map":{"1":0.95,"0":0.77,"8":0.2}}}"#,
        );
        assert_eq!(label_confidence(&multi, "tags"), Some(0.2));
        let seg = line(
            r#"{"source-ref":"s3://bkt/5","m-ref":"s3://bkt/m.png","m-ref-metadata":{"internal-color-map":{"0":{"class-name":"BACKGROUND","confidence":0.6},"1":{"class-name":"car","confidence":0.6}}}}"#,
        );
        assert_eq!(label_confidence(&seg, "m-ref"), Some(0.6));
        let tracking = line(
            r#"{"source-ref":"s3://bkt/6","t-ref":"s3://bkt/s.json","t-ref-metadata":{"objects":[{"frame-no":0,"confidence":[0.5,0.3]},{"confidence":0.7}]}}"#,
        );
        assert_eq!(label_confidence(&tracking, "t-ref"), Some(0.3));
        let quoted = line(r#"{"source":"x","s":"1","s-metadata":{"confidence":"0.25"}}"#);
        assert_eq!(label_confidence(&quoted, "s"), Some(0.25));
        let unlabeled = line(r#"{"source":"x","s-metadata":{"confidence":0.1}}"#);
        assert_eq!(label_confidence(&unlabeled, "s"), None);
        let custom = line(r#"{"source":"x","s":{},"s-metadata":{"type":"groundtruth/custom"}}"#);
        assert_eq!(label_confidence(&custom, "s"), None);
    }

    #[test]
    fn filters_below_the_threshold() {
        let lines = vec![
            line(r#"{"source":"sure","s":"1","s-metadata":{"confidence":0.9}}"#),
            line(r#"{"source":"unsure","s":"1","s-metadata":{"confidence":0.5}}"#),
            line(r#"{"source":"at","s":"1","s-metadata":{"confidence":0.8}}"#),
            line(r#"{"source":"unscored","s":"1"}"#),
            line(r#"{"source":"unlabeled"}"#),
        ];
        let kept: Vec<String> = below_threshold(lines, "s", 0.8)
            .iter()
            .map(|l| l.source().value().to_owned())
            .collect();
        assert_eq!(kept, ["unsure", "unscored"]);
    }

    #[test]
    fn appends_only_new_objects() {
        let mut lines = vec![
            line(r#"{"source-ref":"s3://bkt/1","a":1}"#),
            line(r#"{"source":"s3://bkt/2"}"#),
        ];
        let staging = vec![
            line(r#"{"source-ref":"s3://bkt/1"}"#),
            line(r#"{"source-ref":"s3://bkt/2"}"#),
            line(r#"{"source-ref":"s3://bkt/3"}"#),
            line(r#"{"source-ref":"s3://bkt/3","again":true}"#),
        ];
        assert_eq!(append_new_objects(&mut lines, staging), 2);
        let sources: Vec<&str> = lines.iter().map(|l| l.source().value()).collect();
        assert_eq!(
            sources,
            ["s3://bkt/1", "s3://bkt/2", "s3://bkt/2", "s3://bkt/3"]
        );
        // `source` "s3://bkt/2" and `source-ref` "s3://bkt/2" are different objects (text vs. file).
        assert!(lines[3].get("again").is_none());
    }

    #[test]
    fn parses_counts_and_writes_byte_exact() {
        let text = "{\"source\":\"a\",\"s\":1}\n{\"source\":\"b\",  \"x\": 2}\n";
        let lines = parse_manifest(&uri("s3://bkt/m"), text.as_bytes()).unwrap();
        assert_eq!(count_labeled(&lines, "s"), 1);
        assert_eq!(manifest_bytes(&lines), text.as_bytes());
        let err =
            parse_manifest(&uri("s3://bkt/m"), b"{\"source\":\"a\"}\nnot json\n").unwrap_err();
        assert_eq!(err.source.line(), 2);
        assert!(err.to_string().contains("s3://bkt/m"), "{err}");
    }

    #[test]
    fn picks_the_numerically_newest_intermediate_manifest() {
        let prefix = uri("s3://out/jobs/Animals/manifests/intermediate/");
        let keys: Vec<S3Uri> = [
            "s3://out/jobs/Animals/manifests/intermediate/1/output.manifest",
            "s3://out/jobs/Animals/manifests/intermediate/10/output.manifest",
            "s3://out/jobs/Animals/manifests/intermediate/9/output.manifest",
            "s3://out/jobs/Animals/manifests/intermediate/11/other.json",
            "s3://out/jobs/Animals/manifests/intermediate/x/output.manifest",
            "s3://out/jobs/Animals/manifests/intermediate/12/deeper/output.manifest",
        ]
        .iter()
        .map(|k| uri(k))
        .collect();
        assert_eq!(
            newest_intermediate_manifest(&keys, &prefix)
                .unwrap()
                .to_string(),
            "s3://out/jobs/Animals/manifests/intermediate/10/output.manifest"
        );
        assert_eq!(newest_intermediate_manifest(&[], &prefix), None);
    }
}
