//! Post-processors: turn the builder's disk into what users ship.

pub mod vagrant;
