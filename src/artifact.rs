//! What a build produced: one type for every builder, which the post-processors consume and
//! hand on along their chains.

use std::path::PathBuf;

/// A builder's (or post-processor's) result.
#[derive(Debug, Clone)]
pub struct Artifact {
    /// Packer's type of the builder that made it (`qemu`, `null`): manifests and
    /// `PACKER_BUILDER_TYPE` name it. Post-processors pass it on.
    pub builder_type: &'static str,
    /// Packer's id of that builder (`transcend.qemu`, `fnoeding.null`), as `-machine-readable`
    /// reports it. Post-processors pass it on.
    pub builder_id: &'static str,
    /// Packer's artifact id (`VM` for a qemu disk, `Null`, `libvirt` for a box).
    pub id: String,
    pub files: Vec<PathBuf>,
    /// The machine's disk, while the artifact is (or passes through) it.
    pub disk: Option<Disk>,
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
