//! The `vagrant` post-processor: packs the disk into a libvirt `.box`.

/// A validated `post-processor "vagrant"` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `output`, a template (default `packer_{{ .BuildName }}_{{ .Provider }}_{{ .Architecture }}.box`),
    /// relative to the working directory.
    pub output: String,
    /// `compression_level` 0–9 (default 6; 0 = plain tar).
    pub compression_level: u32,
    /// `keep_input_artifact` (kiln's default: true — Packer deleting the qcow2 is a known pain).
    pub keep_input_artifact: bool,
    /// `architecture` of the guest (default `amd64`).
    pub architecture: String,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            output: "packer_{{ .BuildName }}_{{ .Provider }}_{{ .Architecture }}.box".into(),
            compression_level: 6,
            keep_input_artifact: true,
            architecture: "amd64".into(),
        }
    }
}
