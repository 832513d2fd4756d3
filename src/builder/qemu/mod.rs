//! The `qemu` builder.

pub mod config;
pub mod qmp;
