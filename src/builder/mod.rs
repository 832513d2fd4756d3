//! Builders: what makes a machine and hands back its artifact. `qemu` installs from an ISO;
//! `null` makes nothing and provisions an existing SSH host.

pub mod null;
pub mod qemu;
