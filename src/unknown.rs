//! Blocks of a type kiln does not have: a `source` of another builder (`virtualbox-iso`), a
//! `provisioner` or `post-processor` that is a Packer plugin (`powershell`, `utm-vagrant`).
//!
//! Templates carry such blocks for the platforms kiln does not build, so loading keeps them
//! instead of failing: the block's type, what its attributes evaluate to (as JSON, the form a
//! plugin takes), and where it is written. Whether one is a problem depends on whether a
//! selected build would run it: `kiln validate` then warns, `kiln build` refuses.

use std::fmt;

/// A block of a type kiln does not have.
#[derive(Debug, Clone, PartialEq)]
pub struct UnknownType {
    /// `source`, `provisioner`, `error-cleanup-provisioner` or `post-processor`.
    pub block: &'static str,
    /// Its type label (`powershell`).
    pub type_name: String,
    /// Its attributes that evaluate, by name; a nested block is a list of objects under its
    /// name, as in Packer's JSON form. Attributes whose value cannot be computed are left out.
    pub attributes: serde_json::Map<String, serde_json::Value>,
    /// Where the block is written: `file:line:col`.
    pub at: String,
}

impl fmt::Display for UnknownType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} type `{}` ({})", self.block, self.type_name, self.at)
    }
}
