//! SSH benchmark, driven by `scripts/bench/ssh.sh` (which also times `scp`).
//!
//! `cargo bench --bench ssh -- upload PORT KEY FILE REMOTE` uploads FILE with kiln's
//! communicator and prints `kiln_upload_seconds=…`.
//! `cargo bench --bench ssh -- ready PORT KEY SSHD_START_SCRIPT` runs the script (which starts
//! sshd after a delay), then measures when the port first accepts a TCP connection (polled every
//! 5 ms) and when kiln's `wait_for_ssh` has run its first command; prints the gap.

#![allow(clippy::print_stdout)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use kiln::communicator::ssh::{self, SshCommunicator, SshTarget};
use tokio_util::sync::CancellationToken;

fn target(port: u16, key: &str) -> Result<SshTarget, Box<dyn std::error::Error>> {
    Ok(SshTarget {
        host: "127.0.0.1".into(),
        port,
        username: "root".into(),
        private_key: Some(ssh::load_private_key(&PathBuf::from(key))?),
        password: None,
        pty: false,
        read_write_timeout: None,
        options: Default::default(),
    })
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["upload", port, key, file, remote] => {
            let comm =
                SshCommunicator::connect(&target(port.parse()?, key)?, Duration::from_secs(10))
                    .await?;
            let t0 = Instant::now();
            comm.upload_file(remote, &PathBuf::from(file), 0o644)
                .await?;
            println!("kiln_upload_seconds={:.3}", t0.elapsed().as_secs_f64());
            comm.close().await;
        }
        ["ready", port, key, script] => {
            let port: u16 = port.parse()?;
            let target = target(port, key)?;
            // sshd replaces the script's shell (`exec`); it is killed when `child` drops.
            let child = tokio::process::Command::new("sh")
                .arg(script)
                .kill_on_drop(true)
                .spawn()?;
            let accept = async {
                loop {
                    if tokio::net::TcpStream::connect(("127.0.0.1", port))
                        .await
                        .is_ok()
                    {
                        return Instant::now();
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            };
            let ready = async {
                let comm = ssh::wait_for_ssh(
                    &target,
                    Duration::from_secs(60),
                    std::future::pending::<String>(),
                    &CancellationToken::new(),
                )
                .await?;
                comm.exec("true", &mut |_, _| {}).await?;
                let t = Instant::now();
                comm.close().await;
                Ok::<_, ssh::Error>(t)
            };
            let (accepted, ready) = tokio::join!(accept, ready);
            let gap = ready?.saturating_duration_since(accepted);
            println!("kiln_ready_after_accept_seconds={:.3}", gap.as_secs_f64());
            drop(child);
        }
        _ => {
            return Err("usage: ssh (upload PORT KEY FILE REMOTE | ready PORT KEY SCRIPT)".into());
        }
    }
    Ok(())
}
