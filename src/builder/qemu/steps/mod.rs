//! One file per step of the qemu builder, in the order [`super::steps`] runs them.

pub mod boot_command;
pub mod check_space;
pub mod compact_disk;
pub mod copy_disk;
pub mod create_cd;
pub mod create_disk;
pub mod create_floppy;
pub mod debug_access;
pub mod download_iso;
pub mod http_server;
pub mod install_cache;
pub mod output_dir;
pub mod resize_disk;
pub mod run_qemu;
pub mod save_install;
pub mod shutdown;
pub mod start_tpm;
pub mod wait_guest_address;
pub mod wait_ssh;
