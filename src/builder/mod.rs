//! Builders: what makes a machine and hands back a disk. Only `qemu` for now.

pub mod qemu;
