//! The sandbox image, made from this host's own files (nothing can be
//! pulled): a root assembled by [`crate::rootfs::assemble`], written as one
//! layer and imported by the engine.

use std::path::Path;

use bollard::query_parameters::CreateImageOptionsBuilder;
use futures_util::StreamExt as _;

use super::engine;
use crate::Error;
pub use crate::rootfs::DEFAULT_PROGRAMS;
use crate::rootfs::{RootfsReport, assemble, write_tar};

/// What `build` made.
#[derive(Debug, Clone)]
pub struct ImageReport {
    pub tag: String,
    pub id: String,
    pub rootfs: RootfsReport,
    /// Bytes of the layer sent to the engine.
    pub layer_bytes: u64,
}

/// Builds the image `tag` from `programs` (names on this host's PATH or
/// paths) and the libraries of `helper`, in a scratch directory under
/// `work` that is removed afterwards. `adjust` may change the assembled
/// root before it is archived. Assembling and archiving the root (file
/// work) run on a thread for blocking work.
pub async fn build(
    socket: &Path,
    tag: &str,
    programs: &[String],
    helper: &Path,
    work: &Path,
    adjust: impl FnOnce(&Path) -> Result<(), Error> + Send + 'static,
) -> Result<ImageReport, Error> {
    let (repo, version) = match tag.rsplit_once(':') {
        Some((repo, version)) if !repo.is_empty() && !version.contains('/') => (repo, version),
        _ => (tag, "latest"),
    };
    if repo.is_empty() {
        return Err(Error::Invalid("the image needs a name".into()));
    }
    let docker = engine::connect(socket).await?;
    let (programs, helper, work) = (programs.to_vec(), helper.to_path_buf(), work.to_path_buf());
    let (rootfs, layer) = tokio::task::spawn_blocking(move || {
        let scratch = tempfile_dir(&work)?;
        let root = scratch.join("root");
        let built = assemble(&root, &programs, &helper).and_then(|rootfs| {
            adjust(&root)?;
            let mut layer = Vec::new();
            write_tar(&root, &mut layer)?;
            Ok((rootfs, layer))
        });
        let _ = std::fs::remove_dir_all(&scratch);
        built
    })
    .await
    .map_err(|e| Error::Io {
        context: "assembling the image's root stopped".into(),
        source: std::io::Error::other(e),
    })??;
    let layer_bytes = layer.len() as u64;
    let options = CreateImageOptionsBuilder::new()
        .from_src("-")
        .repo(repo)
        .tag(version)
        .changes(vec![
            "USER 1000:1000".to_string(),
            "WORKDIR /workspace".to_string(),
            "ENV PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin".to_string(),
        ])
        .build();
    let mut progress =
        docker.create_image(Some(options), Some(bollard::body_full(layer.into())), None);
    let mut id = String::new();
    while let Some(step) = progress.next().await {
        let step = step.map_err(Error::engine(format!("cannot import image {tag}")))?;
        if let Some(status) = step.status {
            // The import's last message is the new image's id.
            id = status;
        }
    }
    Ok(ImageReport {
        tag: format!("{repo}:{version}"),
        id: id.trim().to_string(),
        rootfs,
        layer_bytes,
    })
}

/// A fresh directory under `work` (made if needed).
fn tempfile_dir(work: &Path) -> Result<std::path::PathBuf, Error> {
    std::fs::create_dir_all(work)
        .map_err(Error::io(format!("cannot create {}", work.display())))?;
    let dir = work.join(format!(".image-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir(&dir).map_err(Error::io(format!("cannot create {}", dir.display())))?;
    Ok(dir)
}
