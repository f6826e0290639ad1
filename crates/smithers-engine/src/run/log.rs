//! A command's output on its way to the run log: every byte through the
//! streaming redactor (a secret split across chunks is still caught), then
//! cut into lines, each appended to the log as it completes.

use std::sync::Arc;

use smithers_sandbox::{OutputChunk, Stream};
use smithers_secrets::Redactor;
use smithers_store::{LogStream, Runs};
use tokio::sync::mpsc;

use crate::Error;

/// A line longer than this is logged in pieces.
const MAX_LINE: usize = 16 * 1024;

struct Lines {
    stream: LogStream,
    pending: Vec<u8>,
}

impl Lines {
    /// Complete lines of `redacted`, the rest kept for later.
    fn take(&mut self, redacted: &[u8], out: &mut Vec<(LogStream, String)>) {
        self.pending.extend_from_slice(redacted);
        while let Some(end) = self
            .pending
            .iter()
            .position(|b| *b == b'\n')
            .or_else(|| (self.pending.len() >= MAX_LINE).then_some(MAX_LINE - 1))
        {
            let line: Vec<u8> = self.pending.drain(..=end).collect();
            let text = String::from_utf8_lossy(&line);
            out.push((self.stream, text.trim_end_matches('\n').to_string()));
        }
    }

    fn rest(&mut self, out: &mut Vec<(LogStream, String)>) {
        if !self.pending.is_empty() {
            let text = String::from_utf8_lossy(&self.pending).into_owned();
            out.push((self.stream, text));
            self.pending.clear();
        }
    }
}

/// A command's output on its way to the run log while the command runs.
pub(crate) struct Pump(tokio::task::JoinHandle<Result<u64, Error>>);

impl Pump {
    /// Starts logging what is sent on the returned sender, redacted, as
    /// lines of step `position`.
    pub(crate) fn start(
        runs: Runs,
        run_id: String,
        position: u32,
        redactor: Option<Arc<Redactor>>,
    ) -> (mpsc::Sender<OutputChunk>, Pump) {
        let (tx, rx) = mpsc::channel::<OutputChunk>(64);
        (
            tx,
            Pump(tokio::spawn(pump(runs, run_id, position, redactor, rx))),
        )
    }

    /// Waits for the last line (the sender gone); returns how many.
    pub(crate) async fn finish(self) -> Result<u64, Error> {
        self.0
            .await
            .map_err(|e| Error::Internal(format!("the log writer failed: {e}")))?
    }
}

/// Reads `output` to its end, logging each redacted line of step
/// `position`; returns the number of lines.
async fn pump(
    runs: Runs,
    run_id: String,
    position: u32,
    redactor: Option<Arc<Redactor>>,
    mut output: mpsc::Receiver<OutputChunk>,
) -> Result<u64, Error> {
    let empty = Redactor::new(&[]).map_err(|e| Error::Invalid(e.to_string()))?;
    let redactor = redactor.unwrap_or_else(|| Arc::new(empty));
    let mut streams = [
        (
            redactor.stream(),
            Lines {
                stream: LogStream::Stdout,
                pending: Vec::new(),
            },
        ),
        (
            redactor.stream(),
            Lines {
                stream: LogStream::Stderr,
                pending: Vec::new(),
            },
        ),
    ];
    let mut lines = 0_u64;
    let mut ready = Vec::new();
    let mut redacted = Vec::new();
    while let Some(chunk) = output.recv().await {
        let (redact, split) = match chunk.stream {
            Stream::Stdout => &mut streams[0],
            Stream::Stderr => &mut streams[1],
        };
        redacted.clear();
        redact.push(&chunk.bytes, &mut redacted);
        split.take(&redacted, &mut ready);
        for (stream, text) in ready.drain(..) {
            runs.log(&run_id, Some(position), stream, &text).await?;
            lines += 1;
        }
    }
    for (redact, mut split) in streams {
        redacted.clear();
        redact.finish(&mut redacted);
        split.take(&redacted, &mut ready);
        split.rest(&mut ready);
    }
    for (stream, text) in ready {
        runs.log(&run_id, Some(position), stream, &text).await?;
        lines += 1;
    }
    Ok(lines)
}
