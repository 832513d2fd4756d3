//! Step: build the extra CD of `cd_files` / `cd_content` (volume ID `cd_label`).
//!
//! Uses: `config.cd_files`, `config.cd_content`, `config.cd_label`.
//! Produces: `cd_path` (an ISO in a temporary directory).
//! Cleanup: removes that directory and clears `cd_path`.

use async_trait::async_trait;

use crate::builder::qemu::{BuildContext, Error};
use crate::step::{Outcome, Step};

#[derive(Default)]
pub struct CreateCd {
    dir: Option<tempfile::TempDir>,
}

#[async_trait]
impl Step<BuildContext, Error> for CreateCd {
    fn name(&self) -> &'static str {
        "create_cd"
    }

    async fn run(&mut self, ctx: &mut BuildContext) -> Result<(), Error> {
        let cfg = &ctx.config;
        if cfg.cd_files.is_empty() && cfg.cd_content.is_empty() {
            return Ok(());
        }
        ctx.core.ui.say("Creating CD disk");
        let dir = tempfile::Builder::new()
            .prefix("kiln-cd-")
            .tempdir()
            .map_err(Error::TempDir)?;
        let out = dir.path().join("cd.iso");
        self.dir = Some(dir);
        let tool = crate::cd::build(&cfg.cd_files, &cfg.cd_content, &cfg.cd_label, &out)
            .await
            .map_err(Error::CreateCd)?;
        ctx.core.ui.message(format!(
            "CD `{}` (label `{}`) made with {}",
            out.display(),
            cfg.cd_label,
            tool.program()
        ));
        ctx.cd_path = Some(out);
        Ok(())
    }

    async fn cleanup(&mut self, ctx: &mut BuildContext, _outcome: Outcome) {
        ctx.cd_path = None;
        if let Some(dir) = self.dir.take()
            && let Err(e) = dir.close()
        {
            ctx.core.ui.error(format!(
                "Could not remove the CD's temporary directory: {e}"
            ));
        }
    }
}
