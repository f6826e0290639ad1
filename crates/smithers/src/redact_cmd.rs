//! `smithers redact`: the streaming redactor on any stream, with the
//! secrets taken from environment variables.

use std::io::{Read as _, Write as _};
use std::process::ExitCode;

use anyhow::{Context as _, Result, bail};
use clap::Args;
use smithers_secrets::{MIN_SECRET_LEN, Redactor, SecretValue};

#[derive(Debug, Args)]
pub struct RedactArgs {
    /// Comma-separated names of environment variables holding the values to mask.
    #[arg(long, value_name = "VAR1,VAR2", value_delimiter = ',', required = true)]
    secrets_from_env: Vec<String>,
}

/// How much is read at once; output goes out as soon as it is safe.
const CHUNK: usize = 64 * 1024;

pub fn run(args: RedactArgs) -> Result<ExitCode> {
    let mut values = Vec::with_capacity(args.secrets_from_env.len());
    for name in &args.secrets_from_env {
        let name = name.trim();
        match std::env::var_os(name) {
            Some(value) if !value.is_empty() => {
                values.push(SecretValue::new(value.into_encoded_bytes()));
            }
            Some(_) => bail!("environment variable {name} is empty"),
            None => bail!("environment variable {name} is not set"),
        }
    }
    let redactor = Redactor::new(&values)?;
    for &index in redactor.too_short() {
        eprintln!(
            "warning: {} is shorter than {MIN_SECRET_LEN} bytes and is NOT masked (too short to redact safely)",
            args.secrets_from_env[index].trim()
        );
    }
    let mut stream = redactor.stream();
    let mut input = std::io::stdin().lock();
    let mut output = std::io::stdout().lock();
    let mut chunk = vec![0u8; CHUNK];
    let mut out = Vec::with_capacity(CHUNK * 2);
    loop {
        let n = match input.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e).context("cannot read stdin"),
        };
        stream.push(&chunk[..n], &mut out);
        output
            .write_all(&out)
            .map_err(crate::render::closed_quietly)
            .context("cannot write stdout")?;
        out.clear();
    }
    stream.finish(&mut out);
    output
        .write_all(&out)
        .map_err(crate::render::closed_quietly)
        .context("cannot write stdout")?;
    output
        .flush()
        .map_err(crate::render::closed_quietly)
        .context("cannot write stdout")?;
    Ok(ExitCode::SUCCESS)
}
