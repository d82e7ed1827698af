//! `s3://bucket/key` URIs, parsed once at the edge so the rest of the code never splits strings.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Why a string is not an S3 URI.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum S3UriError {
    /// The scheme is not `s3://`.
    #[error("`{uri}` is not an S3 URI: it must start with s3://")]
    Scheme {
        /// The offending text.
        uri: String,
    },
    /// `s3://` with nothing after it, or `s3:///key`.
    #[error("`{uri}` has no bucket name")]
    NoBucket {
        /// The offending text.
        uri: String,
    },
    /// A bucket name S3 would refuse (length 3–63, lower-case letters, digits, `.` and `-`).
    #[error("`{uri}` has an invalid bucket name `{bucket}`")]
    Bucket {
        /// The offending text.
        uri: String,
        /// The bucket part.
        bucket: String,
    },
}

/// A parsed `s3://bucket/key` URI. The key may be empty (a bucket root) or end in `/` (a prefix).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct S3Uri {
    bucket: String,
    key: String,
}

impl S3Uri {
    /// Builds a URI from its parts, checking the bucket name.
    pub fn new(bucket: impl Into<String>, key: impl Into<String>) -> Result<Self, S3UriError> {
        let bucket = bucket.into();
        let key = key.into();
        check_bucket(&bucket, &format!("s3://{bucket}/{key}"))?;
        Ok(S3Uri { bucket, key })
    }

    /// The bucket name.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The object key (no leading `/`).
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The URI of `relative` under this one treated as a folder: `s3://b/out` + `x/y.json` is
    /// `s3://b/out/x/y.json` (exactly one `/` between them).
    pub fn join(&self, relative: &str) -> S3Uri {
        let relative = relative.trim_start_matches('/');
        let key = if self.key.is_empty() {
            relative.to_owned()
        } else if self.key.ends_with('/') {
            format!("{}{relative}", self.key)
        } else {
            format!("{}/{relative}", self.key)
        };
        S3Uri {
            bucket: self.bucket.clone(),
            key,
        }
    }

    /// The folder holding this object: `s3://b/a/c.json` gives `s3://b/a/`.
    pub fn parent(&self) -> S3Uri {
        let key = match self.key.trim_end_matches('/').rfind('/') {
            Some(i) => self.key[..=i].to_owned(),
            None => String::new(),
        };
        S3Uri {
            bucket: self.bucket.clone(),
            key,
        }
    }

    /// The last path segment of the key (the file name).
    pub fn file_name(&self) -> &str {
        self.key.rsplit('/').next().unwrap_or(&self.key)
    }
}

/// `text` as one segment of a key path that can neither climb nor split: `%`, `/`, `\\`, NUL and other
/// control characters are percent-encoded, a segment `.` or `..` becomes `%2E` / `%2E%2E`, and an empty
/// one becomes `%` (a lone `%` cannot come from anything else, since `%` itself is encoded). The mapping
/// is one to one, and leaves ordinary segments (`3`, `my photo.jpg`, `cat-0001`) unchanged.
///
/// Keys are literal in S3, but what turns them into paths (a local folder, a proxy or an S3-compatible
/// server that normalises `..`) may not be: any segment built from request data goes through here.
pub fn key_segment(text: &str) -> std::borrow::Cow<'_, str> {
    match text {
        "" => return "%".into(),
        "." => return "%2E".into(),
        ".." => return "%2E%2E".into(),
        _ => {}
    }
    let unsafe_char = |c: char| matches!(c, '%' | '/' | '\\') || c.is_control();
    if !text.contains(unsafe_char) {
        return text.into();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if unsafe_char(c) {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        } else {
            out.push(c);
        }
    }
    out.into()
}

fn check_bucket(bucket: &str, uri: &str) -> Result<(), S3UriError> {
    if bucket.is_empty() {
        return Err(S3UriError::NoBucket {
            uri: uri.to_owned(),
        });
    }
    // Local S3-compatible servers accept upper case and underscores in legacy buckets; the check keeps
    // to what matters for safety (no empty labels, no slashes, sane length and characters).
    let valid = (3..=63).contains(&bucket.len())
        && bucket
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        && !bucket.starts_with(['.', '-'])
        && !bucket.ends_with(['.', '-']);
    if valid {
        Ok(())
    } else {
        Err(S3UriError::Bucket {
            uri: uri.to_owned(),
            bucket: bucket.to_owned(),
        })
    }
}

impl FromStr for S3Uri {
    type Err = S3UriError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let rest = s
            .strip_prefix("s3://")
            .ok_or_else(|| S3UriError::Scheme { uri: s.to_owned() })?;
        let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
        check_bucket(bucket, s)?;
        Ok(S3Uri {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
        })
    }
}

impl fmt::Display for S3Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.key)
    }
}

impl From<S3Uri> for String {
    fn from(u: S3Uri) -> String {
        u.to_string()
    }
}

impl TryFrom<String> for S3Uri {
    type Error = S3UriError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_segments_cannot_climb_or_split() {
        assert_eq!(key_segment("3"), "3");
        assert_eq!(key_segment("my photo.jpg"), "my photo.jpg");
        assert_eq!(key_segment(".."), "%2E%2E");
        assert_eq!(key_segment("."), "%2E");
        assert_eq!(key_segment(""), "%");
        assert_eq!(key_segment("../a"), "..%2Fa");
        assert_eq!(key_segment("%2E%2E"), "%252E%252E");
        assert_eq!(key_segment("a\\b\0"), "a%5Cb%00");
    }

    #[test]
    fn parses_and_prints() {
        let uri: S3Uri = "s3://test-bucket/a/b/c.json".parse().unwrap();
        assert_eq!(uri.bucket(), "test-bucket");
        assert_eq!(uri.key(), "a/b/c.json");
        assert_eq!(uri.to_string(), "s3://test-bucket/a/b/c.json");
        assert_eq!(uri.file_name(), "c.json");
        assert_eq!(uri.parent().to_string(), "s3://test-bucket/a/b/");
        let root: S3Uri = "s3://bucket".parse().unwrap();
        assert_eq!(root.key(), "");
    }

    #[test]
    fn keys_keep_colons_and_spaces() {
        let uri: S3Uri = "s3://b-1/out/annotations/iteration-1/2018-12-20_11:42:13.json"
            .parse()
            .unwrap();
        assert_eq!(uri.file_name(), "2018-12-20_11:42:13.json");
    }

    #[test]
    fn joins_with_exactly_one_slash() {
        let base: S3Uri = "s3://bucket/out".parse().unwrap();
        assert_eq!(base.join("x/y").to_string(), "s3://bucket/out/x/y");
        let base: S3Uri = "s3://bucket/out/".parse().unwrap();
        assert_eq!(base.join("/x").to_string(), "s3://bucket/out/x");
        let base: S3Uri = "s3://bucket".parse().unwrap();
        assert_eq!(base.join("x").to_string(), "s3://bucket/x");
    }

    #[test]
    fn rejects_what_is_not_s3() {
        assert!(matches!(
            "https://b/k".parse::<S3Uri>(),
            Err(S3UriError::Scheme { .. })
        ));
        assert!(matches!(
            "s3:///k".parse::<S3Uri>(),
            Err(S3UriError::NoBucket { .. })
        ));
        assert!(matches!(
            "s3://a/k".parse::<S3Uri>(),
            Err(S3UriError::Bucket { .. })
        ));
        assert!(matches!(
            "s3://bad bucket/k".parse::<S3Uri>(),
            Err(S3UriError::Bucket { .. })
        ));
        let err = "gs://b/k".parse::<S3Uri>().unwrap_err();
        assert!(err.to_string().contains("gs://b/k"));
    }
}
