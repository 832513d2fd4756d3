//! Step: build the floppy of `floppy_files` / `floppy_dirs` / `floppy_content` (volume label
//! `floppy_label`): a 1.44 MB FAT12 image (see [`crate::floppy`]).
//!
//! Uses: `config.floppy_files`, `config.floppy_dirs`, `config.floppy_content`,
//! `config.floppy_label`.
//! Produces: `floppy_path` (an image in a temporary directory), attached as QEMU's `-fda`.
//! Cleanup: removes that directory and clears `floppy_path`.

use async_trait::async_trait;

use crate::builder::qemu::{BuildContext, Error};
use crate::floppy::Entry;
use crate::step::{Outcome, Step};

#[derive(Default)]
pub struct CreateFloppy {
    dir: Option<tempfile::TempDir>,
}

#[async_trait]
impl Step<BuildContext, Error> for CreateFloppy {
    fn name(&self) -> &'static str {
        "create_floppy"
    }

    async fn run(&mut self, ctx: &mut BuildContext) -> Result<(), Error> {
        let cfg = &ctx.config;
        if cfg.floppy_files.is_empty()
            && cfg.floppy_dirs.is_empty()
            && cfg.floppy_content.is_empty()
        {
            return Ok(());
        }
        ctx.core.ui.say("Creating floppy disk");
        let dir = tempfile::Builder::new()
            .prefix("kiln-floppy-")
            .tempdir()
            .map_err(Error::TempDir)?;
        let out = dir.path().join("floppy.img");
        self.dir = Some(dir);
        let (files, dirs, content, label, path) = (
            cfg.floppy_files.clone(),
            cfg.floppy_dirs.clone(),
            cfg.floppy_content.clone(),
            cfg.floppy_label.clone(),
            out.clone(),
        );
        let entries = tokio::task::spawn_blocking(move || {
            crate::floppy::build(&files, &dirs, &content, &label, &path)
        })
        .await
        .map_err(|e| {
            Error::CreateFloppy(crate::floppy::Error::Create {
                path: out.clone(),
                source: std::io::Error::other(e.to_string()),
            })
        })?
        .map_err(Error::CreateFloppy)?;
        let files = entries
            .iter()
            .filter(|e| !matches!(e, Entry::Dir(_)))
            .count();
        ctx.core.ui.message(format!(
            "Floppy `{}` (label `{}`): {files} file(s)",
            out.display(),
            cfg.floppy_label
        ));
        ctx.floppy_path = Some(out);
        Ok(())
    }

    async fn cleanup(&mut self, ctx: &mut BuildContext, _outcome: Outcome) {
        ctx.floppy_path = None;
        if let Some(dir) = self.dir.take()
            && let Err(e) = dir.close()
        {
            ctx.core.ui.error(format!(
                "Could not remove the floppy's temporary directory: {e}"
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::builder::qemu::qmp::{Qmp, test_qemu};

    /// Issue 14: the floppy kiln makes, given to a real QEMU as `-fda` (Packer's switch), is
    /// its floppy drive `floppy0`.
    #[tokio::test]
    async fn issue_14_floppy_is_qemus_floppy_drive() {
        let dir = tempfile::tempdir().expect("temp dir");
        let img = dir.path().join("floppy.img");
        let content = std::collections::BTreeMap::from([("a.txt".to_owned(), "a".to_owned())]);
        crate::floppy::build(&[], &[], &content, "packer", &img).expect("floppy");
        let img_arg = img.to_string_lossy().into_owned();
        for machine in ["pc", "q35"] {
            let qemu = test_qemu::spawn(&["-S", "-machine", machine, "-fda", &img_arg]);
            let qmp = Qmp::connect(&qemu.socket, std::time::Duration::from_secs(30))
                .await
                .expect("QMP");
            let blocks = qmp.execute("query-block", None).await.expect("query-block");
            let floppy = blocks
                .as_array()
                .expect("a list")
                .iter()
                .find(|b| b["device"] == "floppy0")
                .unwrap_or_else(|| panic!("{machine}: no floppy0 in {blocks}"));
            assert_eq!(floppy["inserted"]["file"], img_arg.as_str(), "{machine}");
            assert_eq!(floppy["inserted"]["drv"], "raw", "{machine}");
        }
    }
}
