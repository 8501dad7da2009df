//! The `feedwatch` command line.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use feedwatch::auth::Role;
use feedwatch::catalog::CatalogIndex;
use feedwatch::config::{DatabaseArgs, LogFormat, SandboxBankArgs, ServeArgs};
use uuid::Uuid;

/// Bank-feed connection health and error lookup.
///
/// With no subcommand, runs `serve`. Every flag can also be set by the environment variable
/// named in its help.
#[derive(Debug, Parser)]
#[command(version, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the HTTP API (the default).
    Serve(Box<ServeArgs>),
    /// Run only the refresh workers, maintenance and scheduler (a worker-only replica).
    Worker(WorkerCommand),
    /// Apply database migrations and exit.
    Migrate(DatabaseArgs),
    /// Print the OpenAPI document.
    Openapi,
    /// Manage API keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Look up an error code or alias, or search the catalogue; needs no server or database.
    ///
    /// Examples: `errors 102`, `errors plaid:ITEM_LOGIN_REQUIRED`, `errors search password changed`,
    /// `errors search - < tickets.txt` (each line a question).
    Errors {
        /// A code or alias, or `search` followed by words, or `search -` to search each line of
        /// standard input.
        // Words may start with a hyphen: people paste codes such as AqBanking's "error -57".
        #[arg(required_unless_present = "check_sources", num_args = 1.., allow_hyphen_values = true)]
        words: Vec<String>,
        /// Print every alias whose sources are weaker than its `match` claims (an `exact` alias
        /// with no vendor source, an alias with no source) and exit 1 if there is any.
        #[arg(long, conflicts_with = "words")]
        check_sources: bool,
    },
    /// Read OFX files; needs no server or database.
    #[command(subcommand)]
    Ofx(OfxCommand),
    /// Read statement files people download from their bank (OFX, QFX, QBO, CSV); needs no
    /// server or database.
    #[command(subcommand)]
    Statement(StatementCommand),
    /// Run the sandbox bank: an OFX Direct Connect server with magic credentials and faults.
    SandboxBank(SandboxBankArgs),
}

#[derive(Debug, Subcommand)]
enum OfxCommand {
    /// Print a summary of an OFX, QFX or QBO file as JSON: accounts, balances, transaction
    /// count, date range and status codes. Exits 1 with the line of the problem when the file
    /// cannot be read.
    Inspect {
        /// The file to read (at most 16 MiB).
        file: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum StatementCommand {
    /// Print what a statement file holds as JSON: its format, each account with its period,
    /// transaction count and total, rows left out with their lines, and every warning. The
    /// format is recognised from the content. Exits 1 with the line and reason when the file
    /// cannot be read without guessing.
    Inspect {
        /// The file to read.
        file: PathBuf,
        /// Also print every transaction.
        #[arg(long)]
        rows: bool,
    },
}

#[derive(Debug, clap::Args)]
struct WorkerCommand {
    #[command(flatten)]
    database: DatabaseArgs,
    #[command(flatten)]
    workers: feedwatch::config::WorkerArgs,
    /// How long in-flight refreshes may finish after SIGTERM/SIGINT before they are handed back.
    #[arg(long, env = "FEEDWATCH_SHUTDOWN_GRACE", default_value = "25s", value_parser = feedwatch::duration::parse_duration)]
    shutdown_grace: std::time::Duration,
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Create an API key and print it once.
    Create {
        /// What the key may do.
        #[arg(long, value_parser = ["admin", "helpdesk", "tenant"])]
        role: String,
        /// The tenant a tenant key is bound to (required with --role tenant).
        #[arg(long)]
        tenant: Option<Uuid>,
        /// A note saying who uses the key.
        #[arg(long, default_value = "")]
        label: String,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Print a new random credentials key, for FEEDWATCH_CREDENTIALS_KEYS.
    NewCredentialsKey {
        /// The key's id, stored beside every credential it seals.
        #[arg(long, default_value = "k1")]
        id: String,
    },
    /// Re-seal every stored credential with the first (newest) key of FEEDWATCH_CREDENTIALS_KEYS.
    RotateCredentials {
        #[command(flatten)]
        database: DatabaseArgs,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let log_format = match &cli.command {
        Some(Command::Serve(args)) => args.log_format,
        None => cli.serve.log_format,
        _ => LogFormat::Pretty,
    };
    feedwatch::telemetry::init_tracing(log_format);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Some(Command::Errors { check_sources: true, .. }) => check_sources(),
        Some(Command::Errors { words, .. }) => errors(&words),
        Some(Command::Ofx(OfxCommand::Inspect { file })) => ofx_inspect(&file),
        Some(Command::Statement(StatementCommand::Inspect { file, rows })) => statement_inspect(&file, rows),
        Some(Command::SandboxBank(args)) => feedwatch::app::run_sandbox_bank(args).await,
        None => feedwatch::app::run_serve(cli.serve).await,
        Some(Command::Serve(args)) => feedwatch::app::run_serve(*args).await,
        Some(Command::Migrate(args)) => feedwatch::app::run_migrate(&args).await,
        Some(Command::Worker(command)) => {
            feedwatch::app::run_worker(&command.database, &command.workers, command.shutdown_grace).await
        }
        Some(Command::Openapi) => {
            println!("{}", feedwatch::http::openapi().to_pretty_json()?);
            Ok(())
        }
        Some(Command::Keys(KeysCommand::Create { role, tenant, label, database })) => {
            let role = Role::parse(&role).ok_or_else(|| anyhow::anyhow!("unknown role {role}"))?;
            if (role == Role::Tenant) != tenant.is_some() {
                anyhow::bail!("--tenant is required with --role tenant and refused with the other roles");
            }
            let key = feedwatch::app::create_key(&database, role, tenant, &label).await?;
            println!("{key}");
            Ok(())
        }
        Some(Command::Keys(KeysCommand::NewCredentialsKey { id })) => {
            let key = feedwatch::connection::Sealer::generate_config(&id);
            feedwatch::connection::Sealer::from_config(&key)?;
            println!("{}", secrecy::ExposeSecret::expose_secret(&key));
            Ok(())
        }
        Some(Command::Keys(KeysCommand::RotateCredentials { database })) => {
            let resealed = feedwatch::app::rotate_credentials(&database).await?;
            println!("re-sealed {resealed} connections' credentials");
            Ok(())
        }
    }
}

fn errors(words: &[String]) -> anyhow::Result<()> {
    use feedwatch::catalog::{shipped_index, text};
    let index = shipped_index()?;
    match words {
        [first, dash] if first == "search" && dash == "-" => search_each_line(&index),
        [first, rest @ ..] if first == "search" && !rest.is_empty() => {
            print!("{}", search_answer(&index, &rest.join(" ")));
            Ok(())
        }
        _ => {
            let (output, found) = text::lookup(&index, &words.join(" "));
            print!("{output}");
            if found { Ok(()) } else { anyhow::bail!("unknown code") }
        }
    }
}

/// A list of questions (a day's tickets, a team's own evaluation set) searched with one index:
/// each question's line after `? `, its hits, then a blank line. Blank lines are skipped; bytes
/// that are not UTF-8 (a ticket export in another encoding) read as U+FFFD rather than ending the
/// list.
fn search_each_line(index: &CatalogIndex) -> anyhow::Result<()> {
    use std::io::BufRead;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for line in std::io::stdin().lock().split(b'\n') {
        let line = line?;
        let line = String::from_utf8_lossy(&line);
        let question = line.trim();
        if question.is_empty() {
            continue;
        }
        write!(out, "? {question}\n{}\n", search_answer(index, question))?;
    }
    Ok(out.flush()?)
}

/// The hits for `question`, a line each, as the API ranks them with its default limit.
fn search_answer(index: &CatalogIndex, question: &str) -> String {
    use feedwatch::catalog::search::{DEFAULT_LIMIT, search};
    use feedwatch::catalog::{index::Filters, text};
    text::search_results(index, &search(index, question, &Filters::default(), DEFAULT_LIMIT))
}

fn check_sources() -> anyhow::Result<()> {
    let catalog = feedwatch::catalog::Catalog::shipped()?;
    let weak = feedwatch::catalog::evidence::weak_aliases(&catalog.aliases);
    for alias in &weak {
        println!("{}: {}", alias.alias, alias.problem);
    }
    match weak.len() {
        0 => {
            println!("every one of {} aliases has sources that back its match", catalog.aliases.len());
            Ok(())
        }
        count => anyhow::bail!("{count} of {} aliases claim more than their sources show", catalog.aliases.len()),
    }
}

/// Larger inputs are refused before parsing; no real statement file comes near it.
const MAX_OFX_FILE: u64 = 16 * 1024 * 1024;

fn ofx_inspect(path: &Path) -> anyhow::Result<()> {
    use anyhow::Context;
    use feedwatch::ofx::{ParseOptions, parse};
    let shown = path.display();
    let file = std::fs::File::open(path).with_context(|| format!("cannot open {shown}"))?;
    let mut bytes = Vec::new();
    file.take(MAX_OFX_FILE + 1).read_to_end(&mut bytes).with_context(|| format!("cannot read {shown}"))?;
    if bytes.len() as u64 > MAX_OFX_FILE {
        anyhow::bail!("{shown} is over the limit of 16 MiB");
    }
    let document = parse(&bytes, &ParseOptions::default()).with_context(|| format!("{shown} is not readable OFX"))?;
    // A closed pipe (`| head`) ends the output quietly instead of panicking as println! would.
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", serde_json::to_string_pretty(&document.summary())?);
    Ok(())
}

fn statement_inspect(path: &Path, rows: bool) -> anyhow::Result<()> {
    use anyhow::Context;
    use feedwatch::statement::{ReadOptions, inspect};
    let shown = path.display();
    let file = std::fs::File::open(path).with_context(|| format!("cannot open {shown}"))?;
    // Read a piece at a time, as an import reads: a file of tens of megabytes is not held.
    let inspection = inspect(file, &ReadOptions::default(), rows).with_context(|| format!("{shown} cannot be read"))?;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", serde_json::to_string_pretty(&inspection)?);
    Ok(())
}

#[cfg(test)]
mod cli_tests {
    use clap::Parser;

    use super::{Cli, Command};

    fn words(args: &[&str]) -> Vec<String> {
        match Cli::try_parse_from(args).map(|cli| cli.command) {
            Ok(Some(Command::Errors { words, .. })) => words,
            other => panic!("{args:?}: {other:?}"),
        }
    }

    #[test]
    fn a_search_may_hold_words_that_start_with_a_hyphen() {
        let args = ["feedwatch", "errors", "search", "log", "says", "\"error", "-57\"", "--", "-x"];
        assert_eq!(words(&args)[4..], ["-57\"", "--", "-x"]);
        assert_eq!(words(&["feedwatch", "errors", "-57"]), ["-57"]);
    }

    #[test]
    fn check_sources_is_still_a_flag() {
        let parsed = Cli::try_parse_from(["feedwatch", "errors", "--check-sources"]).map(|cli| cli.command);
        assert!(matches!(parsed, Ok(Some(Command::Errors { check_sources: true, .. }))), "{parsed:?}");
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    /// The binary allocates with jemalloc built with its options: the background thread that
    /// returns freed pages to the system (`background_thread:true`) runs once anything has been
    /// allocated. Without the compiled-in options (or with another allocator) it is missing.
    /// The thread names itself once it runs, a moment after it is created, so the test looks
    /// again until a deadline: with other tests beside it, one look sometimes came too early.
    #[test]
    fn jemalloc_purges_from_its_background_thread() -> std::io::Result<()> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let names = thread_names()?;
            if names.iter().any(|name| name == "jemalloc_bg_thd") {
                return Ok(());
            }
            assert!(std::time::Instant::now() < deadline, "threads: {names:?}");
            std::thread::yield_now();
        }
    }

    fn thread_names() -> std::io::Result<Vec<String>> {
        let mut names = Vec::new();
        for task in std::fs::read_dir("/proc/self/task")? {
            // A thread that ended between the listing and the read has no name to give.
            if let Ok(name) = std::fs::read_to_string(task?.path().join("comm")) {
                names.push(name.trim_end().to_owned());
            }
        }
        Ok(names)
    }
}
