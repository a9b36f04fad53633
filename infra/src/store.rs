//! Object storage addressed by URL: `file://` (default `file://./trackiq-data`) or
//! `s3://bucket/prefix`. S3 takes the standard AWS variables (`AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, `AWS_ENDPOINT_URL` for S3-compatible servers,
//! `AWS_ALLOW_HTTP=true` for plain-HTTP endpoints). Credentials never appear in logs:
//! only the URL without them is displayed.

use std::sync::Arc;

use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt, PutPayload};

use crate::error::InfraError;

/// Where trackiq keeps its Parquet history, reports and (for `file://`) broker data.
#[derive(Debug, Clone)]
pub struct DataStore {
    /// Object store rooted at the bucket or the filesystem root.
    store: Arc<dyn ObjectStore>,
    /// Path of trackiq's data inside `store`.
    prefix: Path,
    /// URL of `store`'s root as DataFusion addresses it, e.g. `file:///` or `s3://bucket/`.
    root_url: url::Url,
    /// Local directory, for `file://` stores.
    local_dir: Option<std::path::PathBuf>,
    display: String,
}

impl DataStore {
    /// Opens a store from a URL: `file://./dir`, `file:///abs/dir`, a plain path, or
    /// `s3://bucket/prefix`.
    pub fn open(url: &str) -> Result<Self, InfraError> {
        let bad = |reason: &str| InfraError::DataUrl { url: url.to_string(), reason: reason.to_string() };
        if let Some(rest) = url.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(bad("no bucket name after s3://"));
            }
            let s3 = object_store::aws::AmazonS3Builder::from_env()
                .with_bucket_name(bucket)
                .build()
                .map_err(|e| bad(&e.to_string()))?;
            let root_url = url::Url::parse(&format!("s3://{bucket}/")).map_err(|e| bad(&e.to_string()))?;
            return Ok(DataStore {
                store: Arc::new(s3),
                prefix: Path::from(prefix.trim_matches('/')),
                root_url,
                local_dir: None,
                display: format!("s3://{bucket}/{}", prefix.trim_matches('/')),
            });
        }
        let path = match url.strip_prefix("file://") {
            Some(p) => p,
            None if url.contains("://") => return Err(bad("supported schemes are file:// and s3://")),
            None => url,
        };
        if path.is_empty() {
            return Err(bad("empty path"));
        }
        std::fs::create_dir_all(path).map_err(|e| InfraError::Io { path: path.to_string(), source: e })?;
        let dir = std::fs::canonicalize(path).map_err(|e| InfraError::Io { path: path.to_string(), source: e })?;
        let prefix = Path::from_absolute_path(&dir).map_err(|e| bad(&e.to_string()))?;
        Ok(DataStore {
            store: Arc::new(object_store::local::LocalFileSystem::new()),
            prefix,
            root_url: url::Url::parse("file:///").expect("valid"),
            local_dir: Some(dir.clone()),
            display: format!("file://{}", dir.display()),
        })
    }

    /// The store, rooted at the bucket or filesystem root.
    pub fn object_store(&self) -> Arc<dyn ObjectStore> {
        self.store.clone()
    }

    /// URL of the store's root, for registering it with DataFusion.
    pub fn root_url(&self) -> &url::Url {
        &self.root_url
    }

    /// Local directory of a `file://` store.
    pub fn local_dir(&self) -> Option<&std::path::Path> {
        self.local_dir.as_deref()
    }

    /// Object path of `rel` (slash-separated) inside trackiq's data.
    pub fn path(&self, rel: &str) -> Path {
        rel.split('/').filter(|p| !p.is_empty()).fold(self.prefix.clone(), |p, part| p.join(part))
    }

    /// URL of a directory inside trackiq's data, as DataFusion reads it (ends with `/`).
    pub fn dir_url(&self, rel: &str) -> String {
        format!("{}{}/", self.root_url, self.path(rel))
    }

    /// Writes an object in one put (atomic on both local files and S3).
    pub async fn put(&self, rel: &str, bytes: Vec<u8>) -> Result<(), InfraError> {
        let path = self.path(rel);
        self.store
            .put(&path, PutPayload::from(bytes))
            .await
            .map(|_| ())
            .map_err(|source| InfraError::ObjectStore { path: path.to_string(), source })
    }

    /// Writes an object only if none exists at `rel` (a commit point): true when this call
    /// created it, false when it was already there. Stores without conditional puts fall
    /// back to check-then-put (safe while one writer commits, as trackiq's compactor does).
    pub async fn put_new(&self, rel: &str, bytes: Vec<u8>) -> Result<bool, InfraError> {
        let path = self.path(rel);
        let err = |source| InfraError::ObjectStore { path: path.to_string(), source };
        let opts = object_store::PutOptions { mode: object_store::PutMode::Create, ..Default::default() };
        match self.store.put_opts(&path, PutPayload::from(bytes.clone()), opts).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::AlreadyExists { .. }) => Ok(false),
            Err(object_store::Error::NotImplemented { .. }) => match self.store.head(&path).await {
                Ok(_) => Ok(false),
                Err(object_store::Error::NotFound { .. }) => self.store.put(&path, PutPayload::from(bytes)).await.map(|_| true).map_err(err),
                Err(e) => Err(err(e)),
            },
            Err(e) => Err(err(e)),
        }
    }

    /// Deletes an object; deleting one that is already gone is not an error.
    pub async fn delete(&self, rel: &str) -> Result<(), InfraError> {
        let path = self.path(rel);
        match self.store.delete(&path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(source) => Err(InfraError::ObjectStore { path: path.to_string(), source }),
        }
    }

    /// Reads an object.
    pub async fn get(&self, rel: &str) -> Result<Vec<u8>, InfraError> {
        let path = self.path(rel);
        let err = |source| InfraError::ObjectStore { path: path.to_string(), source };
        let got = self.store.get(&path).await.map_err(err)?;
        got.bytes().await.map(|b| b.to_vec()).map_err(|source| InfraError::ObjectStore { path: path.to_string(), source })
    }

    /// Reads bytes `range` of an object.
    pub async fn get_range(&self, rel: &str, range: std::ops::Range<u64>) -> Result<bytes::Bytes, InfraError> {
        let path = self.path(rel);
        self.store.get_range(&path, range).await.map_err(|source| InfraError::ObjectStore { path: path.to_string(), source })
    }

    /// Lists every object under `rel`.
    pub async fn list(&self, rel: &str) -> Result<Vec<ObjectMeta>, InfraError> {
        let path = self.path(rel);
        self.store
            .list(Some(&path))
            .try_collect()
            .await
            .map_err(|source| InfraError::ObjectStore { path: path.to_string(), source })
    }

    /// Name of an object relative to trackiq's data.
    pub fn relative(&self, path: &Path) -> String {
        path.prefix_match(&self.prefix)
            .map(|parts| parts.map(|p| p.as_ref().to_string()).collect::<Vec<_>>().join("/"))
            .unwrap_or_else(|| path.to_string())
    }
}

impl std::fmt::Display for DataStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.display)
    }
}
