//! Provisioners: what runs against the machine once the communicator is connected. The layer
//! is the same for every builder.

pub mod shell;
