//! Step: create the output directory.
//!
//! Uses: `config.output_directory`, `force`.
//! Produces: the directory. Cleanup: removes it unless the build succeeded — but only if this
//! step created it, so an existing directory is never lost by a failed build.

use async_trait::async_trait;

use crate::builder::qemu::{BuildContext, Error};
use crate::step::{Outcome, Step};

#[derive(Default)]
pub struct PrepareOutputDir {
    created: bool,
}

#[async_trait]
impl Step<BuildContext, Error> for PrepareOutputDir {
    fn name(&self) -> &'static str {
        "output_dir"
    }

    async fn run(&mut self, ctx: &mut BuildContext) -> Result<(), Error> {
        let path = ctx.config.output_directory.clone();
        let io_err = |source| Error::PrepareOutputDir {
            path: path.clone(),
            source,
        };
        if tokio::fs::try_exists(&path).await.map_err(io_err)? {
            if !ctx.force {
                return Err(Error::OutputDirExists { path });
            }
            ctx.core.ui.say(format!(
                "Deleting previous output directory `{}`",
                path.display()
            ));
            tokio::fs::remove_dir_all(&path).await.map_err(io_err)?;
        }
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            tokio::fs::create_dir_all(parent).await.map_err(io_err)?;
        }
        tokio::fs::create_dir(&path).await.map_err(io_err)?;
        self.created = true;
        Ok(())
    }

    async fn cleanup(&mut self, ctx: &mut BuildContext, outcome: Outcome) {
        if !self.created || outcome == Outcome::Succeeded {
            return;
        }
        let path = &ctx.config.output_directory;
        ctx.core
            .ui
            .say(format!("Deleting output directory `{}`", path.display()));
        if let Err(e) = tokio::fs::remove_dir_all(path).await {
            ctx.core
                .ui
                .error(format!("Could not delete `{}`: {e}", path.display()));
        }
    }
}
