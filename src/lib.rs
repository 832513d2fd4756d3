//! kiln builds virtual machine images from installer ISOs by driving QEMU, the way Packer's
//! `qemu` builder does, and reads the same HCL2 templates.
//!
//! The path of one build, each stage a module:
//!
//! 1. [`template`] loads `*.pkr.hcl` files into typed configurations (all errors at once).
//! 2. [`builder::qemu`] runs the build as a literal list of steps ([`step`] is the runner):
//!    fetch and verify the ISO or disk image into a content-addressed cache ([`download`]),
//!    build the `cd_files` CD ([`cd`]), create the disks ([`qemu_img`]), serve `http_directory`
//!    ([`http_server`]), start QEMU with a QMP socket ([`builder::qemu::qmp`]) whose events a
//!    watcher follows for the whole build ([`builder::qemu::monitor`]: a full disk, a panic, a
//!    boot loop stop it at once), type the `boot_command` ([`bootcmd`]), wait for SSH
//!    ([`communicator`]), run the provisioners ([`provisioner`]), shut down, compact the disk.
//! 3. [`postprocessor`] turns the disk into artifacts such as a Vagrant `.box` (archives come
//!    from [`archive`]: deterministic tar, gzip on every core, zstd, zip).
//!
//! Packer's legacy `{{ .Name }}` text, filled in while a build runs, is [`render`]ed in one
//! place.
//! Beside the build, [`fmt`] lays templates out as `packer fmt` does.
//!
//! Library code never prints: user-facing messages go through [`ui`], logs through `tracing`.

pub mod archive;
pub mod bootcmd;
pub mod build;
pub mod builder;
pub mod cd;
pub mod cli;
pub mod communicator;
pub mod download;
pub mod fmt;
pub mod hint;
pub mod http_server;
pub mod postprocessor;
pub mod provisioner;
pub mod qemu_img;
pub mod render;
pub mod step;
pub mod template;
pub mod types;
pub mod ui;
pub mod wait;
