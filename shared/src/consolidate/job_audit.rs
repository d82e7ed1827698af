//! Where the consolidation finds a job's audit, and how long it remembers it.
//!
//! A team that has checked a random sample of an earlier job's labels (see
//! [`classification::audit`](super::classification::audit)) puts the verdicts, as an
//! [`AuditDocument`], at
//!
//! ```text
//! <S3OutputPath>/groundwork/audit/<label attribute name>.json
//! ```
//!
//! and every later job writing under that `S3OutputPath` with that label attribute name has its
//! single-label classification confidences recalibrated from its very first batch. The location is
//! the team's output path, not one job's folder, so the document is in place before a job starts (a
//! job's own folder exists only once it runs), and it serves the recurring jobs of one pipeline, which
//! share a workforce and a task. The request names `outputConfig`, which is
//! `<S3OutputPath>/<job name>/annotations`; the job name comes from its ARN. A top-up round
//! (`<LAN>-top-up-<r>`) reads its root job's document: its confidences decide which objects get more
//! workers, so they should mean the same.
//!
//! The document is read at most once per [`AUDIT_TTL_SECONDS`] per container ([`AuditCache`]), so a
//! document written or replaced during a job takes effect within minutes and a batch costs no read.
//! A missing document is the common case and cached like a present one. A broken one is reported and
//! the batch is answered with the model's own confidence: the audit refines confidences, it never
//! decides a label, and losing a label over it would be the worse failure.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};

use super::classification::audit::{AuditDocument, AuditMap};
use crate::ports::{ObjectReader, StoreError};
use crate::s3_uri::S3Uri;

/// How long a read document (or its absence) is trusted before it is read again.
pub const AUDIT_TTL_SECONDS: i64 = 600;

/// Jobs remembered before the cache starts over (a container serves few jobs at a time).
const CACHED_AUDITS: usize = 64;

/// The folder of audits below `S3OutputPath`.
pub const AUDIT_FOLDER: &str = "groundwork/audit";

/// `<S3OutputPath>/groundwork/audit/<name>.json` for a job whose `outputConfig` is
/// `<S3OutputPath>/<job_name>/annotations`, with `name` the label attribute name without a top-up
/// round's `-top-up-<r>`; `None` when `outputConfig` does not have that shape.
pub fn audit_uri(
    output_config: &S3Uri,
    job_name: &str,
    label_attribute_name: &str,
) -> Option<S3Uri> {
    let key = output_config.key().trim_end_matches('/');
    let tail = format!("{job_name}/annotations");
    let prefix = key.strip_suffix(&tail)?;
    if !(prefix.is_empty() || prefix.ends_with('/')) || job_name.is_empty() {
        return None;
    }
    let name = root_label_attribute_name(label_attribute_name);
    S3Uri::new(
        output_config.bucket(),
        format!("{prefix}{AUDIT_FOLDER}/{name}.json"),
    )
    .ok()
}

/// `name` without a trailing `-top-up-<digits>`.
fn root_label_attribute_name(name: &str) -> &str {
    match name.rsplit_once("-top-up-") {
        Some((root, round))
            if !root.is_empty()
                && !round.is_empty()
                && round.bytes().all(|b| b.is_ascii_digit()) =>
        {
            root
        }
        _ => name,
    }
}

/// What became of a batch's audit.
#[derive(Debug, Clone, PartialEq)]
pub enum AuditReport {
    /// Not looked for (switched off, or no `outputConfig` of the usual shape).
    Off,
    /// No document at `uri`.
    Absent {
        /// Where it was looked for.
        uri: String,
    },
    /// The confidences were recalibrated with the document at `uri`.
    Applied {
        /// Where it was read.
        uri: String,
        /// Verdicts it holds.
        audited: usize,
    },
    /// The document at `uri` could not be used; the model's confidences stand.
    Failed {
        /// Where it was read.
        uri: String,
        /// Why.
        reason: String,
    },
}

/// A looked-up audit: the map, or why there is none.
#[derive(Debug, Clone)]
enum Lookup {
    Absent,
    Map(Arc<AuditMap>),
    Unusable(String),
}

/// The audits read by one container, by location, each with the time it was read.
#[derive(Debug, Default)]
pub struct AuditCache {
    by_uri: Mutex<HashMap<String, (DateTime<Utc>, Lookup)>>,
}

impl AuditCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (DateTime<Utc>, Lookup)>> {
        // A panic while holding the lock leaves a map that is still whole: use it.
        self.by_uri.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn fresh(&self, uri: &S3Uri, now: DateTime<Utc>) -> Option<Lookup> {
        let map = self.lock();
        let (read_at, lookup) = map.get(&uri.to_string())?;
        let age = now.signed_duration_since(*read_at).num_seconds();
        (0..AUDIT_TTL_SECONDS)
            .contains(&age)
            .then(|| lookup.clone())
    }

    fn insert(&self, uri: &S3Uri, now: DateTime<Utc>, lookup: Lookup) {
        let mut map = self.lock();
        if map.len() >= CACHED_AUDITS {
            map.clear();
        }
        map.insert(uri.to_string(), (now, lookup));
    }

    /// The map at `uri` (read through `reader` unless read less than [`AUDIT_TTL_SECONDS`] ago) and the
    /// report to log. A read that fails for a passing reason (throttling, a timeout) is not remembered.
    pub async fn load(
        &self,
        reader: &dyn ObjectReader,
        uri: &S3Uri,
        now: DateTime<Utc>,
    ) -> (Option<Arc<AuditMap>>, AuditReport) {
        let lookup = match self.fresh(uri, now) {
            Some(lookup) => lookup,
            None => match reader.get_object(uri).await {
                Ok(bytes) => {
                    let lookup = match AuditDocument::map_of(&bytes) {
                        Ok(map) => Lookup::Map(Arc::new(map)),
                        Err(e) => Lookup::Unusable(e.to_string()),
                    };
                    self.insert(uri, now, lookup.clone());
                    lookup
                }
                Err(StoreError::NotFound { .. }) => {
                    self.insert(uri, now, Lookup::Absent);
                    Lookup::Absent
                }
                Err(e) => {
                    let lookup = Lookup::Unusable(format!("cannot read it: {e}"));
                    if !e.is_retryable() {
                        self.insert(uri, now, lookup.clone());
                    }
                    lookup
                }
            },
        };
        let uri = uri.to_string();
        match lookup {
            Lookup::Absent => (None, AuditReport::Absent { uri }),
            Lookup::Map(map) => {
                let audited = map.audited;
                (Some(map), AuditReport::Applied { uri, audited })
            }
            Lookup::Unusable(reason) => (None, AuditReport::Failed { uri, reason }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uri(text: &str) -> S3Uri {
        text.parse().expect("an S3 URI")
    }

    #[test]
    fn the_audit_sits_below_the_jobs_output_path_under_the_root_label_name() {
        let out = uri("s3://bucket/out/pets-2/annotations");
        assert_eq!(
            audit_uri(&out, "pets-2", "pet").map(|u| u.to_string()),
            Some("s3://bucket/out/groundwork/audit/pet.json".to_owned())
        );
        assert_eq!(
            audit_uri(&out, "pets-2", "pet-top-up-3").map(|u| u.to_string()),
            Some("s3://bucket/out/groundwork/audit/pet.json".to_owned())
        );
        assert_eq!(
            audit_uri(&uri("s3://bucket/pets-2/annotations/"), "pets-2", "pet")
                .map(|u| u.to_string()),
            Some("s3://bucket/groundwork/audit/pet.json".to_owned())
        );
        // Names that only look like a round keep their whole name.
        for name in ["pet-top-up-", "pet-top-up-x", "-top-up-2"] {
            assert_eq!(root_label_attribute_name(name), name);
        }
        // Not `<S3OutputPath>/<job>/annotations`: no audit is looked for.
        for (out, job) in [
            ("s3://bucket/out/other-job/annotations", "pets-2"),
            ("s3://bucket/out/xpets-2/annotations", "pets-2"),
            ("s3://bucket/out/pets-2/annotations/more", "pets-2"),
            ("s3://bucket/test-image.jpg", "pets-2"),
        ] {
            assert_eq!(audit_uri(&uri(out), job, "pet"), None, "{out}");
        }
    }
}
