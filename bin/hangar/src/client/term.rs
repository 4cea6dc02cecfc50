//! The streams a command talks through, and the simple line prompts of interactive use.

use std::io::{BufRead, IsTerminal, Write};
use std::process::{Command, Stdio};

use anyhow::{Context as _, Result, bail};

/// Whether the real stdin is a terminal, i.e. whether prompting can get an answer.
pub fn stdin_is_terminal() -> bool {
    std::io::stdin().is_terminal()
}

/// Output and input of one command. Results go to `out`, messages and prompts to `err`, so
/// that `hangar tokens create > file` captures only the token.
pub struct Io<'a> {
    out: &'a mut (dyn Write + Send),
    err: &'a mut (dyn Write + Send),
    input: &'a mut (dyn BufRead + Send),
    interactive: bool,
}

impl<'a> Io<'a> {
    /// `interactive` says whether `input` is a person who can answer prompts; without one,
    /// commands that would prompt fail with a message naming the missing flags instead.
    pub fn new(
        out: &'a mut (dyn Write + Send),
        err: &'a mut (dyn Write + Send),
        input: &'a mut (dyn BufRead + Send),
        interactive: bool,
    ) -> Self {
        Self {
            out,
            err,
            input,
            interactive,
        }
    }

    pub fn interactive(&self) -> bool {
        self.interactive
    }

    /// Writes `text` and a newline to stdout.
    pub fn println(&mut self, text: &str) -> Result<()> {
        writeln!(self.out, "{text}").context("cannot write to stdout")
    }

    /// Writes `text` as-is to stdout (tables and JSON bring their own newlines).
    pub fn print(&mut self, text: &str) -> Result<()> {
        self.out
            .write_all(text.as_bytes())
            .context("cannot write to stdout")
    }

    /// Writes `text` and a newline to stderr.
    pub fn eprintln(&mut self, text: &str) -> Result<()> {
        writeln!(self.err, "{text}").context("cannot write to stderr")
    }

    pub fn flush(&mut self) -> Result<()> {
        self.out.flush().context("cannot write to stdout")?;
        self.err.flush().context("cannot write to stderr")
    }

    /// Asks for one line of text; an empty answer is asked again.
    pub fn prompt(&mut self, label: &str) -> Result<String> {
        loop {
            let answer = self.ask(label)?;
            if !answer.is_empty() {
                return Ok(answer);
            }
        }
    }

    /// Asks for one line of text that may be left empty.
    pub fn prompt_optional(&mut self, label: &str) -> Result<String> {
        self.ask(label)
    }

    /// Asks for a secret without echoing it (when stdin is a terminal), twice if `confirm`.
    pub fn prompt_secret(&mut self, label: &str, confirm: bool) -> Result<String> {
        let secret = loop {
            let answer = self.ask_secret(label)?;
            if !answer.is_empty() {
                break answer;
            }
        };
        if confirm && self.ask_secret("Confirm password")? != secret {
            bail!("the passwords do not match");
        }
        Ok(secret)
    }

    /// Asks a yes/no question; anything but `y`/`yes` is a no.
    pub fn confirm(&mut self, question: &str) -> Result<bool> {
        let answer = self.ask(&format!("{question} (yes/no)"))?;
        Ok(matches!(answer.to_ascii_lowercase().as_str(), "y" | "yes"))
    }

    fn ask(&mut self, label: &str) -> Result<String> {
        write!(self.err, "> {label}: ").context("cannot write to stderr")?;
        self.err.flush().context("cannot write to stderr")?;
        Ok(self.read_line()?.trim().to_owned())
    }

    fn ask_secret(&mut self, label: &str) -> Result<String> {
        write!(self.err, "> {label}: ").context("cannot write to stderr")?;
        self.err.flush().context("cannot write to stderr")?;
        let answer = {
            let _echo = EchoOff::new(self.interactive && stdin_is_terminal());
            self.read_line()
        };
        // The newline the user typed was not echoed either.
        writeln!(self.err).context("cannot write to stderr")?;
        answer
    }

    /// One line without its line ending; other whitespace is kept, as it may be part of a
    /// password.
    fn read_line(&mut self) -> Result<String> {
        let mut line = String::new();
        let read = self
            .input
            .read_line(&mut line)
            .context("cannot read from stdin")?;
        if read == 0 {
            bail!("stdin was closed before an answer was given");
        }
        Ok(line.trim_end_matches(['\r', '\n']).to_owned())
    }
}

/// Turns terminal echo off for its lifetime, using `stty` so no terminal crate is needed.
/// Where `stty` is missing the secret is simply echoed.
struct EchoOff {
    active: bool,
}

impl EchoOff {
    fn new(wanted: bool) -> Self {
        Self {
            active: wanted && stty("-echo"),
        }
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        if self.active {
            stty("echo");
        }
    }
}

fn stty(setting: &str) -> bool {
    Command::new("stty")
        .arg(setting)
        .stdin(Stdio::inherit())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_io<T>(input: &str, f: impl FnOnce(&mut Io<'_>) -> T) -> (T, String, String) {
        let mut out = Vec::new();
        let mut err = Vec::new();
        let mut input = input.as_bytes();
        let result = {
            let mut io = Io::new(&mut out, &mut err, &mut input, true);
            f(&mut io)
        };
        (
            result,
            String::from_utf8_lossy(&out).into_owned(),
            String::from_utf8_lossy(&err).into_owned(),
        )
    }

    #[test]
    fn prompts_go_to_stderr_and_skip_empty_answers() {
        let (answer, out, err) = with_io("\n  alice \n", |io| io.prompt("Username"));
        assert_eq!(answer.ok().as_deref(), Some("alice"));
        assert_eq!(out, "");
        assert_eq!(err, "> Username: > Username: ");
    }

    #[test]
    fn secret_confirmation_must_match() {
        let (ok, _, _) = with_io("pw1\npw1\n", |io| io.prompt_secret("Password", true));
        assert_eq!(ok.ok().as_deref(), Some("pw1"));
        let (mismatch, _, _) = with_io("pw1\npw2\n", |io| io.prompt_secret("Password", true));
        assert!(mismatch.is_err());
    }

    #[test]
    fn secrets_keep_their_spaces() {
        let (secret, _, err) = with_io(" pass word \r\n", |io| io.prompt_secret("Password", false));
        assert_eq!(secret.ok().as_deref(), Some(" pass word "));
        assert_eq!(err, "> Password: \n");
    }

    #[test]
    fn closed_stdin_is_an_error() {
        let (answer, _, _) = with_io("", |io| io.prompt("Email"));
        assert!(answer.is_err());
    }

    #[test]
    fn confirm_accepts_only_yes() {
        assert!(
            with_io("yes\n", |io| io.confirm("Sure?"))
                .0
                .unwrap_or(false)
        );
        assert!(with_io("Y\n", |io| io.confirm("Sure?")).0.unwrap_or(false));
        assert!(!with_io("no\n", |io| io.confirm("Sure?")).0.unwrap_or(true));
    }
}
