//! Running the real `linkwatch` binary as an operator does, with no
//! collector config or log filter inherited from the test's environment.

use std::path::Path;
use std::process::Stdio;
use tokio::io::AsyncWriteExt;

pub const BIN: &str = env!("CARGO_BIN_EXE_linkwatch");

/// `linkwatch ARGS` in `cwd`: exit code (-1 when killed), stdout, stderr.
pub async fn linkwatch(args: &[&str], cwd: &Path) -> (i32, String, String) {
    linkwatch_input(args, "", cwd).await
}

/// As [`linkwatch`], with `stdin` written to its standard input.
pub async fn linkwatch_input(args: &[&str], stdin: &str, cwd: &Path) -> (i32, String, String) {
    let mut child = tokio::process::Command::new(BIN)
        .args(args)
        .current_dir(cwd)
        .env_remove("LINKWATCH_COLLECTOR_CONFIG")
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.as_bytes()).await.unwrap();
    drop(input);
    let out = child.wait_with_output().await.unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
