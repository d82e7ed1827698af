//! Where in S3 a function may read and write: the owner's allow-list, and the store wrapper that
//! enforces it.
//!
//! Every S3 location a function touches comes from its input: a consolidation request names its payload,
//! each answer may name an object, `outputConfig` says where masks and worker quality go, a chain plan
//! names manifests and label files. IAM bounds what the role can reach, but inside what it can reach
//! (the data bucket, or everything a job's role can read when the function assumes it) nothing else
//! does. [`S3Scope`] is the list of `s3://bucket[/prefix]` locations the owner allows
//! (`ALLOWED_S3_LOCATIONS`, comma-separated); [`Confined`] wraps a store so that every read, write and
//! listing outside them is refused with [`StoreError::OutsideScope`] before any request is sent, whatever
//! code path asked for it.
//!
//! A prefix matches whole path segments: `s3://data/jobs` allows `s3://data/jobs/a.json` and
//! `s3://data/jobs` itself, never `s3://data/jobs-other/a.json`. Keys are compared as S3 compares them,
//! literally: S3 has no `..`, so `s3://data/jobs/../secret` is the key `jobs/../secret`, which is under
//! `jobs/` in S3 too.

use async_trait::async_trait;

use crate::ports::{
    ConditionalPut, Encryption, ObjectLister, ObjectReader, ObjectWriter, StoreError,
    VersionedObject, VersionedStore,
};
use crate::s3_uri::{S3Uri, S3UriError};

/// The environment variable the functions read their allow-list from.
pub const ALLOWED_S3_LOCATIONS: &str = "ALLOWED_S3_LOCATIONS";

/// One allowed location: a bucket, or a prefix in it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Location {
    bucket: String,
    /// Without a trailing `/`; empty for the whole bucket.
    prefix: String,
}

impl Location {
    fn contains(&self, uri: &S3Uri) -> bool {
        if uri.bucket() != self.bucket {
            return false;
        }
        if self.prefix.is_empty() {
            return true;
        }
        let key = uri.key();
        key == self.prefix
            || key
                .strip_prefix(self.prefix.as_str())
                .is_some_and(|rest| rest.starts_with('/'))
    }
}

/// Where a function may read and write.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct S3Scope {
    /// `None`: anywhere IAM allows (no list configured).
    locations: Option<Vec<Location>>,
}

/// Why an allow-list cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum S3ScopeError {
    /// An entry is not an S3 URI.
    #[error("{ALLOWED_S3_LOCATIONS}: entry {position}: {source}")]
    Entry {
        /// The entry's position in the list (from 1).
        position: usize,
        /// Why it is not an S3 URI.
        #[source]
        source: S3UriError,
    },
    /// The variable is set but lists nothing: that would refuse every location, which is never meant.
    #[error(
        "{ALLOWED_S3_LOCATIONS} is set but lists no location (leave it unset to allow what IAM allows)"
    )]
    Empty,
}

impl S3Scope {
    /// Anywhere IAM allows.
    pub const fn anywhere() -> Self {
        Self { locations: None }
    }

    /// The comma-separated list `s3://bucket[/prefix],…` (blanks around entries ignored).
    pub fn parse(list: &str) -> Result<Self, S3ScopeError> {
        let mut locations = Vec::new();
        for (i, entry) in list.split(',').map(str::trim).enumerate() {
            if entry.is_empty() {
                continue;
            }
            let uri: S3Uri = entry.parse().map_err(|source| S3ScopeError::Entry {
                position: i + 1,
                source,
            })?;
            locations.push(Location {
                bucket: uri.bucket().to_owned(),
                prefix: uri.key().trim_end_matches('/').to_owned(),
            });
        }
        if locations.is_empty() {
            return Err(S3ScopeError::Empty);
        }
        Ok(Self {
            locations: Some(locations),
        })
    }

    /// The scope configured by `ALLOWED_S3_LOCATIONS` as `lookup` returns it: unset or blank is
    /// [`S3Scope::anywhere`].
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, S3ScopeError> {
        match lookup(ALLOWED_S3_LOCATIONS) {
            Some(list) if !list.trim().is_empty() => Self::parse(&list),
            _ => Ok(Self::anywhere()),
        }
    }

    /// Whether a list is configured.
    pub fn is_restricted(&self) -> bool {
        self.locations.is_some()
    }

    /// Whether `uri` is inside the scope.
    pub fn allows(&self, uri: &S3Uri) -> bool {
        match &self.locations {
            None => true,
            Some(locations) => locations.iter().any(|l| l.contains(uri)),
        }
    }

    /// `Ok` inside the scope, else [`StoreError::OutsideScope`].
    pub fn check(&self, uri: &S3Uri) -> Result<(), StoreError> {
        if self.allows(uri) {
            Ok(())
        } else {
            Err(StoreError::OutsideScope {
                uri: uri.to_string(),
            })
        }
    }

    /// The configured locations, for the cold-start log line (`None` when unrestricted).
    pub fn describe(&self) -> Option<String> {
        self.locations.as_ref().map(|locations| {
            locations
                .iter()
                .map(|l| {
                    if l.prefix.is_empty() {
                        format!("s3://{}", l.bucket)
                    } else {
                        format!("s3://{}/{}", l.bucket, l.prefix)
                    }
                })
                .collect::<Vec<_>>()
                .join(",")
        })
    }
}

/// A store whose every call is checked against a scope first: outside it, the call fails with
/// [`StoreError::OutsideScope`] and the inner store is never asked.
#[derive(Debug, Clone)]
pub struct Confined<S> {
    inner: S,
    scope: S3Scope,
}

impl<S> Confined<S> {
    /// `inner`, confined to `scope`.
    pub fn new(inner: S, scope: S3Scope) -> Self {
        Self { inner, scope }
    }
}

#[async_trait]
impl<S: ObjectReader> ObjectReader for Confined<S> {
    async fn get_object(&self, uri: &S3Uri) -> Result<Vec<u8>, StoreError> {
        self.scope.check(uri)?;
        self.inner.get_object(uri).await
    }
}

#[async_trait]
impl<S: ObjectWriter> ObjectWriter for Confined<S> {
    async fn put_object(
        &self,
        uri: &S3Uri,
        body: Vec<u8>,
        content_type: &str,
        encryption: &Encryption,
    ) -> Result<(), StoreError> {
        self.scope.check(uri)?;
        self.inner
            .put_object(uri, body, content_type, encryption)
            .await
    }
}

#[async_trait]
impl<S: ObjectLister> ObjectLister for Confined<S> {
    async fn list_objects(&self, prefix: &S3Uri) -> Result<Vec<S3Uri>, StoreError> {
        self.scope.check(prefix)?;
        // A prefix inside the scope lists only keys under it, but keep the guarantee local.
        Ok(self
            .inner
            .list_objects(prefix)
            .await?
            .into_iter()
            .filter(|uri| self.scope.allows(uri))
            .collect())
    }
}

#[async_trait]
impl<S: VersionedStore> VersionedStore for Confined<S> {
    async fn get_versioned(&self, uri: &S3Uri) -> Result<Option<VersionedObject>, StoreError> {
        self.scope.check(uri)?;
        self.inner.get_versioned(uri).await
    }

    async fn put_if_match(
        &self,
        uri: &S3Uri,
        body: Vec<u8>,
        expected: Option<&str>,
        encryption: &Encryption,
    ) -> Result<ConditionalPut, StoreError> {
        self.scope.check(uri)?;
        self.inner
            .put_if_match(uri, body, expected, encryption)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::fakes::MemoryObjectStore;
    use crate::testing::block_on;

    fn uri(text: &str) -> S3Uri {
        text.parse().unwrap()
    }

    #[test]
    fn a_prefix_matches_whole_segments_and_a_bucket_everything_in_it() {
        let scope = S3Scope::parse(" s3://data/jobs , s3://other-bucket ,").unwrap();
        assert!(scope.allows(&uri("s3://data/jobs/a/b.json")));
        assert!(scope.allows(&uri("s3://data/jobs")));
        assert!(scope.allows(&uri("s3://data/jobs/")));
        assert!(scope.allows(&uri("s3://other-bucket/anything")));
        assert!(!scope.allows(&uri("s3://data/jobs-other/a.json")));
        assert!(!scope.allows(&uri("s3://data/job")));
        assert!(!scope.allows(&uri("s3://data/secret.json")));
        assert!(!scope.allows(&uri("s3://datas/jobs/a.json")));
        assert!(!scope.allows(&uri("s3://elsewhere/jobs/a.json")));
        assert_eq!(
            scope.describe().as_deref(),
            Some("s3://data/jobs,s3://other-bucket")
        );
    }

    #[test]
    fn a_trailing_slash_in_the_list_changes_nothing() {
        assert_eq!(
            S3Scope::parse("s3://data/jobs/").unwrap(),
            S3Scope::parse("s3://data/jobs").unwrap()
        );
    }

    #[test]
    fn unset_allows_anything_and_a_bad_or_empty_list_is_refused() {
        assert_eq!(S3Scope::from_lookup(|_| None).unwrap(), S3Scope::anywhere());
        assert_eq!(
            S3Scope::from_lookup(|_| Some("  ".into())).unwrap(),
            S3Scope::anywhere()
        );
        assert!(S3Scope::anywhere().allows(&uri("s3://any/where")));
        assert_eq!(S3Scope::parse(" , ").unwrap_err(), S3ScopeError::Empty);
        let error = S3Scope::parse("s3://data/jobs,https://x/y").unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("ALLOWED_S3_LOCATIONS: entry 2:"),
            "{error}"
        );
    }

    #[test]
    fn a_confined_store_never_asks_the_inner_store_outside_its_scope() {
        let inner = std::sync::Arc::new(MemoryObjectStore::new());
        inner.insert("s3://data/jobs/a.json", "in");
        inner.insert("s3://data/secret.json", "out");
        let store = Confined::new(inner.clone(), S3Scope::parse("s3://data/jobs").unwrap());
        assert_eq!(
            block_on(store.get_object(&uri("s3://data/jobs/a.json"))).unwrap(),
            b"in"
        );
        let refused = block_on(store.get_object(&uri("s3://data/secret.json"))).unwrap_err();
        assert_eq!(
            refused,
            StoreError::OutsideScope {
                uri: "s3://data/secret.json".into()
            }
        );
        assert!(
            block_on(store.put_object(
                &uri("s3://data/x.png"),
                b"png".to_vec(),
                "image/png",
                &Encryption::BucketDefault
            ))
            .is_err()
        );
        assert!(block_on(store.get_versioned(&uri("s3://data/q.json"))).is_err());
        assert!(
            block_on(store.put_if_match(
                &uri("s3://data/q.json"),
                vec![],
                None,
                &Encryption::BucketDefault
            ))
            .is_err()
        );
        assert!(block_on(store.list_objects(&uri("s3://data/"))).is_err());
        assert_eq!(
            block_on(store.list_objects(&uri("s3://data/jobs/"))).unwrap(),
            vec![uri("s3://data/jobs/a.json")]
        );
        assert_eq!(inner.writes(), Vec::<String>::new(), "nothing was written");
    }
}
