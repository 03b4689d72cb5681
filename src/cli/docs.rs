//! `linkwatch completions SHELL` and `linkwatch man DIR`: shell completions
//! (clap_complete) and man pages (clap_mangen) made from the command tree
//! itself, so they never drift from `--help`.

use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct CompletionsArgs {
    /// The shell: bash, zsh, fish, elvish or powershell.
    shell: clap_complete::Shell,
}

#[derive(clap::Args)]
pub struct ManArgs {
    /// Directory to write `linkwatch.1` and one `linkwatch-SUBCOMMAND.1` per subcommand into.
    dir: PathBuf,
}

/// Print the completion script for `shell` on standard output.
pub fn completions(a: CompletionsArgs, mut cmd: clap::Command) -> Result<ExitCode> {
    clap_complete::generate(a.shell, &mut cmd, "linkwatch", &mut std::io::stdout());
    Ok(ExitCode::SUCCESS)
}

/// Write the man pages into `dir` (made when missing); list what was written.
pub fn man(a: ManArgs, cmd: clap::Command) -> Result<ExitCode> {
    std::fs::create_dir_all(&a.dir)
        .with_context(|| format!("cannot create {}", a.dir.display()))?;
    let cmd = cmd.name("linkwatch");
    write_page(&a.dir, &cmd, "linkwatch")?;
    for sub in cmd.get_subcommands() {
        let name = format!("linkwatch-{}", sub.get_name());
        write_page(&a.dir, &sub.clone().name(name.clone()), &name)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn write_page(dir: &Path, cmd: &clap::Command, name: &str) -> Result<()> {
    let path = dir.join(format!("{name}.1"));
    let mut out = Vec::new();
    clap_mangen::Man::new(cmd.clone())
        .render(&mut out)
        .with_context(|| format!("cannot render the man page {name}(1)"))?;
    std::fs::write(&path, out).with_context(|| format!("cannot write {}", path.display()))?;
    println!("{}", path.display());
    Ok(())
}
