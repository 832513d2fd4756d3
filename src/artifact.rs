//! What a build produced: one type for every builder, which the post-processors consume and
//! hand on along their chains.

use std::path::PathBuf;

/// A builder's (or post-processor's) result.
#[derive(Debug, Clone)]
pub struct Artifact {
    /// Packer's type of the builder that made it (`qemu`, `docker`, `null`): manifests and
    /// `PACKER_BUILDER_TYPE` name it. Post-processors pass it on.
    pub builder_type: &'static str,
    /// Packer's id of that builder (`transcend.qemu`, `fnoeding.null`), as `-machine-readable`
    /// reports it. Post-processors pass it on.
    pub builder_id: &'static str,
    /// Packer's artifact id (`VM` for a qemu disk, `Null`, `libvirt` for a box, an image's id
    /// or `repository:tag`).
    pub id: String,
    pub files: Vec<PathBuf>,
    /// The machine's disk, while the artifact is (or passes through) it.
    pub disk: Option<Disk>,
    /// What the docker builder and post-processors hand on: the engine that made the artifact
    /// and, for an image, the names docker-tag gave it.
    pub image: Option<Image>,
}

/// A container image (or an exported container) and the engine that holds or made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// The engine command (`docker_path`): the docker post-processors use it unless they set
    /// their own.
    pub engine: String,
    /// Packer's `docker_tags`: the `repository:tag` names docker-tag gave the image (its id is
    /// the artifact's id); docker-push pushes them too.
    pub tags: Vec<String>,
}

/// A machine disk, with what the post-processors that package disks need to know.
#[derive(Debug, Clone)]
pub struct Disk {
    pub path: PathBuf,
    /// `qcow2` or `raw` (as `qemu-img info` reports it).
    pub format: String,
    /// The guest-visible size in bytes.
    pub virtual_size: u64,
    /// The guest's architecture in Vagrant's (and Go's) names: `amd64`, `arm64`, …
    pub architecture: String,
    /// Whether the machine ran with hardware virtualisation (KVM); a box's default libvirt
    /// driver follows it.
    pub accelerated: bool,
}

/// Packer's builder ids of the docker artifacts: the docker builder makes them and the docker
/// post-processors check them (each takes only some).
pub mod docker_id {
    /// The docker builder's exported container (`export_path`) or nothing (`discard`).
    pub const EXPORT: &str = "packer.docker";
    /// An image: the docker builder's with `commit`, docker-import's and docker-push's.
    pub const IMAGE: &str = "packer.post-processor.docker-import";
    /// An image docker-tag named.
    pub const TAG: &str = "packer.post-processor.docker-tag";
    /// Files the artifice post-processor names (docker-import takes them too).
    pub const ARTIFICE: &str = "packer.post-processor.artifice";
}
