//! The object-store ports over a local folder, so the CLI runs the Lambdas' code path on files:
//! `s3://bucket/key` is `<root>/bucket/key`, and single URIs can be pointed at given files (the payload
//! passed with `--payload`). ETags are content hashes, which is all conditional writes need here.
//!
//! Every key stays inside `<root>/<bucket>/` whatever it holds: it is mapped segment by segment with
//! [`key_segment`], so an empty segment (`s3://b//etc/passwd`), `.` and `..` are encoded (`%`, `%2E`,
//! `%2E%2E`) instead of meaning the root, this folder or the parent; ordinary keys map unchanged.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use groundwork::S3Uri;
use groundwork::ports::{
    ConditionalPut, Encryption, ObjectLister, ObjectReader, ObjectWriter, StoreError,
    VersionedObject, VersionedStore,
};
use groundwork::s3_uri::key_segment;
use sha2::{Digest, Sha256};

/// A folder standing in for S3.
#[derive(Debug, Clone)]
pub(crate) struct LocalStore {
    root: PathBuf,
    overrides: HashMap<String, PathBuf>,
}

impl LocalStore {
    pub(crate) fn new(root: impl Into<PathBuf>) -> Self {
        LocalStore {
            root: root.into(),
            overrides: HashMap::new(),
        }
    }

    /// Reads `uri` from `file` instead of the folder.
    pub(crate) fn with_file(mut self, uri: &str, file: &Path) -> Self {
        self.overrides.insert(uri.to_owned(), file.to_owned());
        self
    }

    /// The file that stands for `uri`.
    pub(crate) fn path_of(&self, uri: &S3Uri) -> PathBuf {
        match self.overrides.get(&uri.to_string()) {
            Some(p) => p.clone(),
            None => {
                // The bucket name is checked when the URI is parsed (no `/`, no leading `.`).
                let mut path = self.root.join(key_segment(uri.bucket()).as_ref());
                for segment in uri.key().split('/') {
                    path.push(key_segment(segment).as_ref());
                }
                path
            }
        }
    }

    fn read(&self, uri: &S3Uri) -> Result<Option<Vec<u8>>, StoreError> {
        match std::fs::read(self.path_of(uri)) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StoreError::Other {
                uri: uri.to_string(),
                message: e.to_string(),
            }),
        }
    }

    fn write(&self, uri: &S3Uri, body: &[u8]) -> Result<(), StoreError> {
        let path = self.path_of(uri);
        let io = |e: std::io::Error| StoreError::Other {
            uri: uri.to_string(),
            message: format!("{}: {e}", path.display()),
        };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        std::fs::write(&path, body).map_err(io)
    }
}

/// The key segment a file name stands for: [`key_segment`] undone (`%` alone is the empty segment).
fn segment_of(name: &str) -> String {
    if name == "%" {
        return String::new();
    }
    let bytes = name.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Every file below `dir`, as its key segments relative to it, sorted.
fn files_below(dir: &Path, segments: &mut Vec<String>, found: &mut Vec<Vec<String>>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.filter_map(Result::ok).collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = segment_of(&entry.file_name().to_string_lossy());
        segments.push(name);
        match entry.file_type() {
            Ok(t) if t.is_dir() => files_below(&entry.path(), segments, found),
            Ok(t) if t.is_file() => found.push(segments.clone()),
            _ => {}
        }
        segments.pop();
    }
}

fn etag(body: &[u8]) -> String {
    format!("\"{}\"", hex::encode(Sha256::digest(body)))
}

#[async_trait]
impl ObjectReader for LocalStore {
    async fn get_object(&self, uri: &S3Uri) -> Result<Vec<u8>, StoreError> {
        self.read(uri)?.ok_or_else(|| StoreError::NotFound {
            uri: format!("{uri} ({})", self.path_of(uri).display()),
        })
    }
}

#[async_trait]
impl ObjectWriter for LocalStore {
    async fn put_object(
        &self,
        uri: &S3Uri,
        body: Vec<u8>,
        _content_type: &str,
        // A local folder has no encryption at rest of its own: the machine's disk encryption applies.
        _encryption: &Encryption,
    ) -> Result<(), StoreError> {
        self.write(uri, &body)
    }
}

/// Lists the folder a prefix ending in `/` names (the chainer's prefixes all do), plus the given files
/// under it.
#[async_trait]
impl ObjectLister for LocalStore {
    async fn list_objects(&self, prefix: &S3Uri) -> Result<Vec<S3Uri>, StoreError> {
        let folder_key = prefix.key().trim_end_matches('/');
        let folder = S3Uri::new(prefix.bucket(), folder_key).map_err(|e| StoreError::Other {
            uri: prefix.to_string(),
            message: e.to_string(),
        })?;
        let dir = if folder_key.is_empty() {
            self.root.join(key_segment(prefix.bucket()).as_ref())
        } else {
            self.path_of(&folder)
        };
        let mut found = Vec::new();
        files_below(&dir, &mut Vec::new(), &mut found);
        let mut uris: Vec<S3Uri> = found
            .into_iter()
            .map(|segments| folder.join(&segments.join("/")))
            .collect();
        for uri in self
            .overrides
            .keys()
            .filter_map(|u| u.parse::<S3Uri>().ok())
        {
            if uri.bucket() == prefix.bucket() && uri.key().starts_with(prefix.key()) {
                uris.push(uri);
            }
        }
        uris.sort_by(|a, b| a.key().cmp(b.key()));
        uris.dedup();
        Ok(uris)
    }
}

#[async_trait]
impl VersionedStore for LocalStore {
    async fn get_versioned(&self, uri: &S3Uri) -> Result<Option<VersionedObject>, StoreError> {
        Ok(self.read(uri)?.map(|body| VersionedObject {
            etag: etag(&body),
            body,
        }))
    }

    async fn put_if_match(
        &self,
        uri: &S3Uri,
        body: Vec<u8>,
        expected: Option<&str>,
        _encryption: &Encryption,
    ) -> Result<ConditionalPut, StoreError> {
        let current = self.read(uri)?.map(|b| etag(&b));
        if current.as_deref() != expected {
            return Ok(ConditionalPut::Conflict);
        }
        self.write(uri, &body)?;
        Ok(ConditionalPut::Written { etag: etag(&body) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use groundwork::testing::block_on;
    use std::path::Component;

    fn uri(s: &str) -> S3Uri {
        s.parse().expect("test URI")
    }

    #[test]
    fn a_listing_gives_back_the_keys_written_even_odd_ones() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path());
        let keys = [
            "s3://b1b/job/req/iteration-1/a.json",
            "s3://b1b/job/req/iteration-2/b%c.json",
            "s3://b1b/job/req/../x.json",
            "s3://b1b/job/other.json",
        ];
        for key in keys {
            block_on(store.put_object(&uri(key), b"x".to_vec(), "", &Encryption::BucketDefault))
                .unwrap();
        }
        let listed = block_on(store.list_objects(&uri("s3://b1b/job/req/"))).unwrap();
        let listed: Vec<String> = listed.iter().map(ToString::to_string).collect();
        assert_eq!(
            listed,
            [
                "s3://b1b/job/req/../x.json",
                "s3://b1b/job/req/iteration-1/a.json",
                "s3://b1b/job/req/iteration-2/b%c.json",
            ]
        );
        assert!(
            block_on(store.list_objects(&uri("s3://b1b/none/")))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn every_key_stays_inside_the_bucket_folder() {
        let root = Path::new("/tmp/store");
        let store = LocalStore::new(root);
        let keys = [
            "s3://b1b//etc/passwd",
            "s3://b1b/../../../etc/passwd",
            "s3://b1b/out/../../x.png",
            "s3://b1b/a/./b",
            "s3://b1b/a//b",
            "s3://b1b/a/",
            "s3://b1b/",
            "s3://b1b/%2E%2E/x",
            "s3://b1b/a\\..\\..\\x",
        ];
        let mut seen = std::collections::HashSet::new();
        for key in keys {
            let path = store.path_of(&uri(key));
            let inside = path
                .strip_prefix(root.join("b1b"))
                .unwrap_or_else(|_| panic!("{key} -> {}", path.display()));
            assert!(
                inside
                    .components()
                    .all(|c| matches!(c, Component::Normal(_))),
                "{key} -> {}",
                path.display()
            );
            assert!(!inside.as_os_str().is_empty(), "{key} names a file");
            assert!(seen.insert(path.clone()), "{key} shares {}", path.display());
        }
        // Ordinary keys are the files one expects.
        assert_eq!(
            store.path_of(&uri("s3://b1b/in/my photo.jpg")),
            root.join("b1b/in/my photo.jpg")
        );
    }

    #[test]
    fn an_absolute_key_does_not_read_the_machine() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = LocalStore::new(dir.path());
        let read = block_on(store.get_object(&uri("s3://b1b//etc/passwd")));
        assert!(matches!(read, Err(StoreError::NotFound { .. })), "{read:?}");
        block_on(store.put_object(
            &uri("s3://b1b/../../escaped.txt"),
            b"x".to_vec(),
            "text/plain",
            &Encryption::BucketDefault,
        ))
        .expect("written inside");
        assert!(!dir.path().join("../escaped.txt").exists());
        assert!(
            !dir.path()
                .parent()
                .map(|p| p.join("escaped.txt").exists())
                .unwrap_or(false)
        );
    }
}
