//! kiln builds machine images the way Packer does and reads the same HCL2 templates: from an
//! installer ISO by driving QEMU (`qemu`), from a container image with docker or podman
//! (`docker`), from an EC2 instance made into an AMI (`amazon-ebs`), or by provisioning an
//! existing host (`null`).
//!
//! One build, as [`build`] runs it for every builder alike:
//!
//! 1. [`template`] loads `*.pkr.hcl` files into the domain modules' config types, reporting all
//!    errors at once: a [`builder::SourceConfig`] per source, the provisioner and post-processor
//!    blocks.
//! 2. [`builder::run`] (the one dispatch point) runs that builder's literal list of steps over
//!    its context, which embeds the shared [`builder::Core`] (ui, cancel, provisioners, run id,
//!    the communicator session); [`step`] is the runner. Every builder's list has the one
//!    [`builder::Provision`] step: [`provisioner`]s talk to the machine only through the
//!    [`communicator::Communicator`] trait ([`communicator::ssh`] is one), reconnecting through
//!    [`communicator::Connect`]. The builder returns one shared [`artifact::Artifact`].
//!    The qemu builder's steps use [`download`], [`cd`], [`floppy`], [`qemu_img`], [`http_server`],
//!    [`bootcmd`] and its own `qmp`/`process`; its `monitor` follows QEMU's events for the
//!    whole build, so a full disk, a guest panic or a boot loop stops it at once. The docker
//!    builder's steps use the container [`engine`] (as do its communicator,
//!    [`communicator::docker`], and the docker post-processors). The amazon-ebs builder's
//!    steps call EC2 through [`aws`] (credentials chain, SigV4 signer, Query-API client).
//! 3. [`postprocessor`] chains turn the artifact into what users ship, such as a Vagrant `.box`
//!    (archives from [`archive`]) and a versioned box catalog listing it.
//!
//! A provisioner or post-processor type kiln does not have is run by an external [`plugin`]
//! (`kiln-plugin-TYPE`, any language, JSON on stdin and stdout) when one is found; otherwise it
//! stays an [`unknown`] block.
//!
//! Dependencies point one way: `main`/[`cli`] → [`build`] → [`template`] → domain modules
//! ([`builder`], [`provisioner`], [`postprocessor`], [`communicator`], …) → leaf modules
//! ([`types`], [`render`], [`suggest`], [`wait`], [`ui`], [`engine`]). No runtime module imports
//! [`template`]; only the qemu builder (and the dispatch) imports `builder::qemu`.
//!
//! A new builder touches four files: its module `src/builder/NAME/` (config, context embedding
//! `Core`, error, `steps()` with `Provision`, its artifact); `src/builder/mod.rs` (a variant of
//! [`builder::SourceConfig`] and of [`builder::Error`], an arm in `type_name`, `name` and
//! [`builder::run`]); its reader `src/template/sources/NAME.rs`; and its row in the kinds table
//! in `src/template/sources/mod.rs`.
//!
//! With the install cache on, the installed system is kept at the moment SSH first answers
//! ([`install_cache`]) and later builds with the same install inputs resume it.
//!
//! Packer's legacy `{{ .Name }}` text, filled in while a build runs, is [`render`]ed in one
//! place. Beside the build, [`fmt`] lays templates out as `packer fmt` does, and [`upgrade`] writes
//! the HCL2 text of a legacy JSON template (which [`template`] loads through the same text).
//!
//! Library code never prints: user-facing messages go through [`ui`], logs through `tracing`;
//! [`hint`] (used by `main` only) adds the fix to an error.

pub mod archive;
pub mod artifact;
pub mod aws;
pub mod bootcmd;
pub mod build;
pub mod builder;
pub mod cd;
pub mod cli;
pub mod communicator;
pub mod datasource;
pub mod download;
pub mod engine;
pub mod floppy;
pub mod fmt;
pub mod hint;
pub mod http_server;
pub mod install_cache;
pub mod plugin;
pub mod postprocessor;
pub mod provisioner;
pub mod qemu_img;
pub mod render;
pub mod step;
pub mod suggest;
pub mod template;
pub mod types;
pub mod ui;
pub mod unknown;
pub mod upgrade;
pub mod wait;
