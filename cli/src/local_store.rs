//! The object-store ports over a local folder, so the CLI runs the Lambdas' code path on files:
//! `s3://bucket/key` is `<root>/bucket/key`, and single URIs can be pointed at given files (the payload
//! passed with `--payload`). ETags are content hashes, which is all conditional writes need here.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use groundwork::S3Uri;
use groundwork::ports::{
    ConditionalPut, ObjectReader, ObjectWriter, StoreError, VersionedObject, VersionedStore,
};
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
            None => self.root.join(uri.bucket()).join(uri.key()),
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
    ) -> Result<(), StoreError> {
        self.write(uri, &body)
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
    ) -> Result<ConditionalPut, StoreError> {
        let current = self.read(uri)?.map(|b| etag(&b));
        if current.as_deref() != expected {
            return Ok(ConditionalPut::Conflict);
        }
        self.write(uri, &body)?;
        Ok(ConditionalPut::Written { etag: etag(&body) })
    }
}
