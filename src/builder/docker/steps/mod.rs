//! One file per step of the docker builder, in the order [`super::steps`] runs them.

pub mod commit;
pub mod connect;
pub mod engine;
pub mod export;
pub mod pull;
pub mod run_container;
pub mod temp_dir;
