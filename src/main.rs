//! `kimcnn`: Kim (2014) CNN sentence classification as a reproducible,
//! cached pipeline. This binary holds the CLI and wires the stage kinds to
//! the runner; the work lives in the `crates/` libraries. It does not link
//! libtorch (that would cost ~0.3 s at every start): torch work runs in the
//! `kimcnn-torch` worker beside it.

mod cluster;
mod init;
mod models;
mod report;
mod share;
mod show;
mod study;
mod ui;
mod verify;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, Subcommand, ValueEnum};
use kimcnn_pipeline::{Env, PipelineError, Plan, Registry, RunOptions, StageState};
use kimcnn_store::{LockEntry, Lockfile, Store};

/// The stage kinds `uses:` can name: one line each.
fn registry() -> Registry {
    let mut r = Registry::new();
    r.register(kimcnn_source::SourceKind)
        .register(kimcnn_exec::ExecKind)
        .register(kimcnn_tokenize::TokenizeKind)
        .register(kimcnn_vocab::VocabKind)
        .register(kimcnn_embed::EmbedKind)
        .register(kimcnn_cnn::TrainKind)
        .register(kimcnn_cnn::EvaluateKind)
        .register(kimcnn_report::AggregateKind)
        .register(kimcnn_report::ReportKind)
        .register(kimcnn_words::TsneKind)
        .register(kimcnn_words::NeighboursKind)
        .register(kimcnn_subword::SubwordKind)
        .register(kimcnn_subword::SegmentKind)
        .register(kimcnn_word2vec::Word2VecKind)
        .register(kimcnn_study::StudyKind);
    r
}

#[derive(Parser)]
#[command(
    name = "kimcnn",
    version,
    about = "Kim (2014) CNN sentence classification as a reproducible, cached pipeline",
    long_about = "Kim (2014) CNN sentence classification as a reproducible, cached pipeline.\n\n\
        pipeline.yaml declares stages (source -> tokenize -> vocab -> embed -> train -> evaluate); \
        every stage's outputs are stored under the BLAKE3 hash of their bytes in artifacts/, and a \
        stage reruns only when its kind, params or input bytes change. pipeline.lock (commit it) \
        records what each stage last ran as.",
    after_help = "Examples (every one works on the shipped pipeline.yaml; tests/help.rs runs them):\n  \
        kimcnn run                                  run what is stale\n  \
        kimcnn run train.trec.static                one stage (and what it needs)\n  \
        kimcnn run train.trec --downstream          a group (train.trec.*), and what reads it\n  \
        kimcnn run 'train.*.rand*'                  a glob\n  \
        kimcnn run --set epochs=10                  a param of pipeline.yaml's params:, for this run\n  \
        kimcnn run --set train.epochs=10            a param of every train stage (a group prefix)\n  \
        kimcnn run --set train.mr.rand.fold0.epochs=3   a param of one stage a matrix expanded\n  \
        kimcnn run --device cuda                    train on a GPU: the same stages, not the same bytes\n  \
        kimcnn tune study.mr --set 'mr_study=[0]'   a hyper-parameter study (off by default), then its best trials\n  \
        kimcnn report --open                        the report page (artifacts/reports/report/index.html), opened\n  \
        kimcnn status train                         what is stale, and why\n  \
        kimcnn show tokenize.trec                   a stage's outputs (tables, summaries, tensors)\n  \
        kimcnn dag --format mermaid                 the graph\n  \
        kimcnn push / kimcnn pull                   share artifacts through a remote\n  \
        kimcnn run --pull                           restore stages a teammate pushed instead of computing them\n\n\
        STAGES, wherever a command takes them (run, status, show, push, pull, --set): a stage name, a\n\
        group prefix at a dot (`train`, `train.mr`, `train.mr.static` all select train.mr.static.fold0),\n\
        or a glob with `*`."
)]
struct Cli {
    /// The pipeline file; its directory is the project directory.
    #[arg(short = 'f', long, global = true, default_value = "pipeline.yaml", env = "KIMCNN_PIPELINE")]
    file: PathBuf,
    /// The artifact store [default: artifacts/ beside the pipeline file].
    #[arg(long, global = true, env = "KIMCNN_STORE")]
    store: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write a pipeline.yaml for your own data (TSV/CSV, or a file per class) and vectors.
    #[command(
        long_about = "Write a working pipeline.yaml for your own labelled data: a TSV or CSV file with a \
        header (a text and a label column), or one plain-text file per class. It reads the data once to check the \
        columns and labels and to choose the text cleaner (Kim's clean_str for English; a Unicode cleaner when \
        most letters are not ASCII, as in Korean), and writes source -> tokenize [-> trained tokenizer] -> vocab -> \
        word vectors (yours, or word2vec trained on your text) -> train -> evaluate -> report stages.",
        after_help = "Examples:\n  \
        kimcnn init --data reviews.tsv                          word2vec vectors trained on the text\n  \
        kimcnn init mr --data pos.txt --data neg.txt --vectors glove.6B.300d.txt\n  \
        kimcnn init ko --data train.tsv --test test.tsv --units unigram --corpus unlabeled.txt.gz\n\n\
        Then: kimcnn run; kimcnn predict --model train.<data>.non-static \"a sentence\"."
    )]
    Init(init::InitArgs),
    /// Run the pipeline, or the named stages and what they need.
    Run {
        /// Stage names, groups (`train`, `train.mr`) or globs (`train.*.static`).
        stages: Vec<String>,
        /// Also run every stage downstream of the named ones.
        #[arg(long)]
        downstream: bool,
        /// Recompute the named stages (all, if none named) even when cached, from the start: a killed
        /// run's epoch checkpoint is not used.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        how: RunFlags,
        /// Before computing a stage, restore it from the remote if a teammate pushed it.
        #[arg(long)]
        pull: bool,
        /// The remote for --pull [default: `default_remote`, or the only one declared].
        #[arg(long, requires = "pull")]
        remote: Option<String>,
    },
    /// Run a hyper-parameter study (a `study` stage) and show its best trials.
    #[command(long_about = "Run a hyper-parameter study (a `study` stage of pipeline.yaml) and show its best trials.\n\n\
        A study trains `train` runs over a search space (grid, random or TPE), `parallel` at a time, with optional \
        early stopping (ASHA, median) on the dev accuracy each epoch reports. Every trial is cached like a train stage \
        (the same params and inputs are the same key), so rerunning a study, or a trial that matches a train stage, \
        computes nothing. Kill it at any point: `kimcnn tune` again continues from its journal, and a trial killed \
        mid-way from its last finished epoch (its checkpoint). Searching \
        `epochs: {choice: [10, 15, 20, 30]}` trains each point once, for 30 epochs, and reads the shorter budgets \
        off its first epochs.\n\n\
        Results: `kimcnn show STUDY` (trials.parquet: a row per trial per epoch; best.json: the best trial's full \
        train params).")]
    Tune {
        /// The study stage (a name, group or glob selecting `study` stages).
        study: String,
        /// Rerun the study from its first trial even when it is cached or half done: its journal and
        /// checkpoints are dropped (finished trials stay cached).
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        how: RunFlags,
        /// How many of the best trials to list.
        #[arg(long, default_value_t = 5)]
        top: usize,
    },
    /// Build the report page (every `report` stage, and what it needs) and write it to artifacts/reports/.
    #[command(long_about = "Build the report page: run every `report` stage of pipeline.yaml (and what it needs, as \
        `kimcnn run` would; cached stages are not recomputed) and write each to artifacts/reports/<stage>/: \
        index.html (one file with every figure inline; it opens offline and requests nothing), report.md (its \
        Markdown twin) and figures/<name>.svg, .png and .parquet (the data behind each figure).\n\n\
        The page has Kim's Table 2 for this run beside his figures, test accuracy per variant, learning curves, \
        confusion matrices, the studies' accuracy per epoch budget and best trials, Kim's Table 3 and t-SNE maps of \
        the word vectors before and after fine-tuning, the data sets' summaries and how it was produced. Include a study with its switch: `kimcnn report --set 'mr_study=[0]'`.")]
    Report {
        /// Open the page in a browser afterwards ($BROWSER, else xdg-open).
        #[arg(long)]
        open: bool,
        /// Rebuild the page even when it is cached (not what it reads).
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        how: RunFlags,
    },
    /// Upload the objects and run records pipeline.lock names (or the named stages') to a remote.
    #[command(long_about = "Upload the objects and run records pipeline.lock names (or the named stages') to a remote.\n\n\
        Only what the remote lacks is sent (one existence check per object, no bucket listing), in parallel. \
        A run record is published only after all of its objects are on the remote, so nobody pulls a half-pushed \
        result; an interrupted push is finished by pushing again.\n\n\
        Remotes are declared in pipeline.yaml or .kimcnn/config (git-ignored):\n  \
        remotes:\n    team: {url: s3://bucket/prefix}          # S3 (credentials: AWS_* environment)\n    \
        lab: {url: s3://b/p, endpoint: http://minio:9000}   # S3-compatible server\n    \
        nfs: {url: /mnt/share/kimcnn}              # a directory\n  \
        default_remote: team                          # .kimcnn/config only")]
    Push {
        /// Stage names, groups or globs from pipeline.lock; none: every stage.
        stages: Vec<String>,
        /// The remote [default: `default_remote`, or the only one declared].
        #[arg(long)]
        remote: Option<String>,
    },
    /// Download the objects and run records pipeline.lock names (or the named stages') from a remote.
    #[command(long_about = "Download the objects and run records pipeline.lock names (or the named stages') from a remote.\n\n\
        Every object is re-hashed as it arrives and kept only if its bytes hash to its name; a corrupt or \
        tampered object is refused and named. Run records are checked for plain names (nothing from a remote \
        can write outside the store). Afterwards `kimcnn status` shows the pulled stages up to date and \
        artifacts/out/ links them.")]
    Pull {
        /// Stage names, groups or globs from pipeline.lock; none: every stage.
        stages: Vec<String>,
        #[arg(long)]
        remote: Option<String>,
    },
    /// Show which stages are stale and why (a changed param, input or file).
    Status {
        /// Stage names, groups (`train`, `train.mr`) or globs; none: every stage.
        stages: Vec<String>,
        /// List up-to-date stages too.
        #[arg(long)]
        all: bool,
        #[arg(long = "set", value_name = "KEY=VALUE")]
        sets: Vec<String>,
    },
    /// Show stages' outputs: summaries (JSON), tables (rows, columns, first rows), tensors.
    Show {
        /// A stage name, group (`train.trec`) or glob, or STAGE/OUTPUT for one output.
        stage: String,
        /// Table rows to print.
        #[arg(long, default_value_t = 3)]
        rows: usize,
    },
    /// Print the stage graph.
    Dag {
        #[arg(long, value_enum, default_value = "text")]
        format: DagFormat,
        #[arg(long = "set", value_name = "KEY=VALUE")]
        sets: Vec<String>,
    },
    /// Re-hash every object in the store; or recompute stages and compare with pipeline.lock (--recompute); or check a remote (--remote).
    #[command(long_about = "Re-hash every object in the store and report corrupt ones.\n\n\
        With --recompute, recompute the named stages (every stage if none) in a scratch store and say, \
        stage by stage, whether their outputs have the bytes pipeline.lock names; what they need comes from \
        the store where it is there and is computed in scratch where it is not. Neither the store nor \
        pipeline.lock is written. Outputs that hold wall-clock times (a train stage's `timings`) are not \
        compared. Exit status 1 on any difference.\n\n\
        Torch stages in `numerics: reproducible` (the default) give the same bytes on any x86-64 CPU \
        with AVX2 for the same key, seed and thread count; in `numerics: fast`, or on a GPU, only on the same \
        machine. See README.md, \"What is reproducible\".")]
    Verify {
        /// With --recompute or --remote: stage names, groups or globs; none: every stage.
        stages: Vec<String>,
        /// Move corrupt objects to quarantine/, so the next run recomputes them.
        #[arg(long, conflicts_with = "recompute")]
        repair: bool,
        /// Recompute the stages in scratch and compare their bytes with pipeline.lock.
        #[arg(long)]
        recompute: bool,
        /// With --recompute: thread budget [default: cores].
        #[arg(short, long, requires = "recompute")]
        jobs: Option<usize>,
        /// Check a remote instead: every run record published there names only objects it has
        /// (`kimcnn push` uploads the missing ones again).
        #[arg(long, conflicts_with_all = ["recompute", "repair"])]
        remote: Option<String>,
    },
    /// Remove objects that neither pipeline.lock nor any run record needs.
    Gc {
        /// List what would be removed; remove nothing.
        #[arg(long)]
        dry_run: bool,
        /// Also drop run records of stages not in pipeline.lock (old params, old code), and their objects.
        #[arg(long, conflicts_with = "remote")]
        workspace: bool,
        /// Collect garbage on this remote instead: remove records and objects no kept lock needs.
        #[arg(long)]
        remote: Option<String>,
        /// With --remote: keep what pipeline.lock at this git ref needs (repeatable).
        #[arg(long = "ref", value_name = "REF", requires = "remote")]
        refs: Vec<String>,
        /// With --remote: keep what this lock file needs (repeatable) [default, with no --ref: ./pipeline.lock].
        #[arg(long = "lock", value_name = "FILE", requires = "remote")]
        locks: Vec<PathBuf>,
    },
    /// Print the BLAKE3 hash of files (as b3sum does), the store's object names.
    Hash { files: Vec<PathBuf> },
    /// Classify sentences with a trained model (arguments, or stdin one a line).
    Predict {
        /// A train stage (`train.mr.non-static.fold0`), a model hash (prefix), or a model file.
        #[arg(long)]
        model: String,
        /// One JSON object a line instead of text.
        #[arg(long)]
        json: bool,
        /// auto, cpu, cuda or cuda:N.
        #[arg(long, default_value = "cpu")]
        device: String,
        /// Sentences to classify; none: read stdin.
        sentences: Vec<String>,
    },
    /// List the trained models in the store, or export one.
    Models {
        #[command(subcommand)]
        action: Option<ModelsAction>,
    },
    /// Check the libtorch toolchain: load torch, report CUDA, train a tiny conv net.
    Doctor,
    /// On a Ray node: run one stage for a coordinator (`--executor ray` submits this).
    #[command(hide = true)]
    RayJob { job: String },
}

/// How `run` and `tune` run (the same flags for both).
#[derive(clap::Args)]
struct RunFlags {
    /// Show what would run; run nothing.
    #[arg(long)]
    dry_run: bool,
    /// Override a param for this run: `param=value` (pipeline.yaml's `params:`) or
    /// `STAGES.param=value`, STAGES a stage, group (`train`, `train.mr`) or glob (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    sets: Vec<String>,
    /// Thread budget; independent stages run in parallel while their threads fit [default: cores].
    #[arg(short, long)]
    jobs: Option<usize>,
    /// Also list stages restored from the cache, and (without a terminal) a line per training epoch.
    #[arg(short, long)]
    verbose: bool,
    /// Print only failures and the closing count: no progress bars, no line per stage.
    #[arg(short, long, conflicts_with = "verbose")]
    quiet: bool,
    /// Where stages compute: here, or as jobs on the Ray cluster of pipeline.yaml's (or
    /// .kimcnn/config's) `ray:` section, their inputs and outputs carried by its remote.
    #[arg(long, value_enum, default_value = "local")]
    executor: ExecutorKind,
    /// Device for training and evaluation: auto, cpu, cuda or cuda:N (sets every stage's `device`
    /// param; not part of any key: CPU and GPU runs of a stage are the same stage).
    #[arg(long)]
    device: Option<String>,
}

#[derive(Subcommand)]
enum ModelsAction {
    /// Copy a model out with its vocabulary and tokenizer settings.
    Export {
        /// A train stage, a model hash (prefix), or a model file.
        model: String,
        /// The directory to write (created; must not hold an export already).
        dir: PathBuf,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ExecutorKind {
    Local,
    Ray,
}

#[derive(Clone, Copy, ValueEnum)]
enum DagFormat {
    Text,
    Mermaid,
    Dot,
}

/// A failure and its exit code: 2 for bad input (pipeline.yaml, flags), 1 for
/// everything else.
pub struct Failure(pub String, pub u8);

impl From<PipelineError> for Failure {
    fn from(e: PipelineError) -> Failure {
        let code = match e {
            PipelineError::Store(kimcnn_store::StoreError::BadLock { .. }) => 2,
            PipelineError::StageFailed { .. } | PipelineError::ManyFailed(..) | PipelineError::Store(_) => 1,
            _ => 2,
        };
        Failure(e.to_string(), code)
    }
}

impl From<kimcnn_store::StoreError> for Failure {
    fn from(e: kimcnn_store::StoreError) -> Failure {
        // A malformed pipeline.lock is bad input, as a malformed pipeline.yaml is.
        let code = if matches!(e, kimcnn_store::StoreError::BadLock { .. }) { 2 } else { 1 };
        Failure(e.to_string(), code)
    }
}

fn main() -> ExitCode {
    // Exit quietly when the reader of our stdout goes away (`kimcnn show x | head`).
    // Safety: restoring the default disposition of a signal at start-up.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    match dispatch(cli) {
        Ok(code) => code,
        Err(Failure(msg, code)) => {
            eprintln!("error: {msg}");
            ExitCode::from(code)
        }
    }
}

struct Project {
    file: PathBuf,
    env: Env,
    registry: Registry,
}

impl Project {
    fn open(cli: &Cli) -> Result<Project, Failure> {
        if !cli.file.is_file() {
            return Err(Failure(
                format!("{}: no such pipeline file (run kimcnn in the project directory, or pass -f)", cli.file.display()),
                2,
            ));
        }
        let dir = cli.file.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let project_dir = dir.canonicalize().map_err(|e| Failure(format!("{}: {e}", dir.display()), 2))?;
        let store_dir = cli.store.clone().unwrap_or_else(|| project_dir.join("artifacts"));
        let quiet = match &cli.command {
            Command::Run { how, .. } | Command::Tune { how, .. } | Command::Report { how, .. } => how.quiet,
            _ => false,
        };
        let store = Store::open(store_dir)?.with_hash_progress(ui::hash_progress(quiet));
        Ok(Project { file: cli.file.clone(), env: Env { project_dir, store }, registry: registry() })
    }

    fn plan(&self, sets: &[String], device: Option<&str>) -> Result<Plan, Failure> {
        Ok(Plan::load(&self.file, sets, device, &self.registry)?)
    }

    fn lock_path(&self) -> PathBuf {
        self.env.project_dir.join("pipeline.lock")
    }
}

fn dispatch(cli: Cli) -> Result<ExitCode, Failure> {
    match &cli.command {
        Command::Hash { files } => return hash(files),
        Command::Doctor => return doctor(),
        Command::Init(args) => return init::init(args),
        Command::RayJob { job } => return cluster::node(job),
        _ => {}
    }
    let project = Project::open(&cli)?;
    match cli.command {
        Command::Tune { study, force, how, top } => {
            let plan = project.plan(&how.sets, how.device.as_deref())?;
            let named = plan.named(std::slice::from_ref(&study))?;
            let studies: Vec<String> =
                plan.stages.iter().zip(&named).filter(|(s, n)| **n && s.kind == "study").map(|(s, _)| s.name.clone()).collect();
            if studies.is_empty() {
                let all: Vec<&str> = plan.stages.iter().filter(|s| s.kind == "study").map(|s| s.name.as_str()).collect();
                return Err(Failure(format!("`{study}` selects no `study` stage (pipeline.yaml has: {})", all.join(", ")), 2));
            }
            let dry_run = how.dry_run;
            run(&project, &plan, studies.clone(), false, force, &how, None)?;
            if dry_run {
                return Ok(ExitCode::SUCCESS);
            }
            let lock = Lockfile::read(&project.lock_path())?;
            for s in &studies {
                if let Some(entry) = lock.stages.get(s) {
                    println!("{}", study::summary(&project.env.store, s, entry, top).map_err(|e| Failure(e, 1))?);
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Run { stages, downstream, force, how, pull, remote } => {
            let plan = project.plan(&how.sets, how.device.as_deref())?;
            let pull = match pull {
                true => Some(share::open(&project, remote.as_deref())?),
                false => None,
            };
            run(&project, &plan, stages, downstream, force, &how, pull)
        }
        Command::Report { open, force, how } => {
            let plan = project.plan(&how.sets, how.device.as_deref())?;
            let reports: Vec<String> = plan.stages.iter().filter(|s| s.kind == "report").map(|s| s.name.clone()).collect();
            if reports.is_empty() {
                return Err(Failure("pipeline.yaml has no `report` stage (add one: `uses: report`, see README.md)".into(), 2));
            }
            let dry_run = how.dry_run;
            run(&project, &plan, reports.clone(), false, force, &how, None)?;
            if dry_run {
                return Ok(ExitCode::SUCCESS);
            }
            let lock = Lockfile::read(&project.lock_path())?;
            for s in &reports {
                let page = report::materialise(&project.env.store, s, &lock, &project.lock_path()).map_err(|e| Failure(e, 1))?;
                println!("{s}: {}", page.display());
                if open {
                    report::open(&page).map_err(|e| Failure(e, 1))?;
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Status { stages, all, sets } => {
            let plan = project.plan(&sets, None)?;
            let named = plan.named(&stages)?;
            let st = kimcnn_pipeline::status(&plan, &project.registry, &project.env, &project.lock_path())?;
            let st: Vec<_> = st.into_iter().zip(named).filter(|(_, n)| *n).map(|(s, _)| s).collect();
            let width = st.iter().map(|s| s.name.len()).max().unwrap_or(0);
            let (mut ok, mut restorable, mut stale) = (0, 0, 0);
            for s in &st {
                let label = match s.state {
                    StageState::UpToDate => {
                        ok += 1;
                        if !all {
                            continue;
                        }
                        "ok"
                    }
                    StageState::Restorable => {
                        restorable += 1;
                        "restorable"
                    }
                    StageState::Stale => {
                        stale += 1;
                        "stale"
                    }
                };
                let why: Vec<String> = s.reasons.iter().map(|r| r.to_string()).collect();
                println!("{label:<10}  {:<width$}  {}", s.name, why.join("; "));
            }
            println!("{} stages: {ok} up to date, {restorable} restorable from the store, {stale} stale", st.len());
            Ok(ExitCode::SUCCESS)
        }
        Command::Dag { format, sets } => {
            let plan = project.plan(&sets, None)?;
            print!("{}", dag(&plan, format));
            Ok(ExitCode::SUCCESS)
        }
        Command::Show { stage, rows } => show(&project, &stage, rows),
        Command::Verify { stages, recompute: true, jobs, .. } => verify::recompute(&project, &stages, jobs),
        Command::Verify { stages, remote: Some(r), .. } => share::verify_remote(&project, &r, &stages),
        Command::Verify { stages, repair, .. } if stages.is_empty() => verify::store(&project, repair),
        Command::Verify { .. } => Err(Failure("verify takes stages only with --recompute or --remote".into(), 2)),
        Command::Predict { model, json, device, sentences } => {
            let lock = Lockfile::read(&project.lock_path())?;
            models::predict(&project.env.store, &lock, &model, json, &device, &sentences)
        }
        Command::Models { action: None } => models::list(&project.env.store),
        Command::Models { action: Some(ModelsAction::Export { model, dir }) } => {
            let lock = Lockfile::read(&project.lock_path())?;
            models::export(&project.env.store, &lock, &model, &dir)
        }
        Command::Gc { dry_run, remote: Some(r), refs, locks, .. } => share::gc_remote(&project, &r, dry_run, &refs, &locks),
        Command::Gc { dry_run, workspace, .. } => gc(&project, dry_run, workspace),
        Command::Push { stages, remote } => share::push(&project, remote.as_deref(), &stages),
        Command::Pull { stages, remote } => share::pull(&project, remote.as_deref(), &stages),
        Command::Hash { .. } | Command::Doctor | Command::Init(_) | Command::RayJob { .. } => unreachable!("handled above"),
    }
}

/// `kimcnn run` (and `tune`): runs the plan's targets with a live display and a closing count.
fn run(
    project: &Project,
    plan: &Plan,
    stages: Vec<String>,
    downstream: bool,
    force: bool,
    how: &RunFlags,
    pull: Option<kimcnn_remote::Remote>,
) -> Result<ExitCode, Failure> {
    let RunFlags { dry_run, jobs, verbose, quiet, executor, .. } = *how;
    let executor = match executor {
        ExecutorKind::Ray if !dry_run => Some(cluster::executor(project, verbose)?),
        _ => None,
    };
    let t0 = Instant::now();
    let pulling = pull.is_some();
    let opts = RunOptions {
        targets: stages,
        downstream,
        force,
        dry_run,
        jobs: jobs.unwrap_or_else(cores),
        lock_path: project.lock_path(),
        pull: pull.map(|r| std::sync::Arc::new(share::RemoteFetch(r)) as std::sync::Arc<dyn kimcnn_pipeline::Fetch>),
        executor,
    };
    let display = ui::RunDisplay::new(verbose, quiet);
    let result = kimcnn_pipeline::run(plan, &project.registry, &project.env, &opts, &|e| display.event(e));
    display.finish();
    let summary = result?;
    for (stage, id) in &summary.quarantined {
        ui::line(&format!("warning: a corrupt input object {id} of stage {stage} was quarantined and recomputed"));
    }
    use kimcnn_pipeline::Outcome as O;
    let verb = if dry_run { "would run" } else { "ran" };
    let ran = summary.count(|o| matches!(o, O::Ran { .. } | O::WouldRun));
    let cached = summary.count(|o| matches!(o, O::Cached | O::CachedByOther));
    let pulled = summary.count(|o| matches!(o, O::Pulled));
    let pulled = if pulling { format!(", {pulled} pulled") } else { String::new() };
    ui::line(&format!("{ran} {verb}, {cached} cached{pulled} ({:.2} s)", t0.elapsed().as_secs_f64()));
    Ok(ExitCode::SUCCESS)
}

/// The default thread budget: this machine's cores.
fn cores() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

fn dag(plan: &Plan, format: DagFormat) -> String {
    let mut out = String::new();
    let id = |s: &str| s.replace(['.', '-'], "_");
    match format {
        DagFormat::Text => {
            for s in &plan.stages {
                let ins: Vec<String> = s.inputs.iter().map(|(n, (j, o))| format!("{n}={}.{o}", plan.stages[*j].name)).collect();
                out.push_str(&format!("{} [{}] -> {}", s.name, s.kind, s.outputs.join(", ")));
                if !ins.is_empty() {
                    out.push_str(&format!("  <- {}", ins.join(", ")));
                }
                if let Some(later) = &s.later {
                    let mut from: Vec<&str> = later.refs.iter().map(|r| plan.stages[r.stage].name.as_str()).collect();
                    from.dedup();
                    out.push_str(&format!("  (params from {})", from.join(", ")));
                }
                out.push('\n');
            }
        }
        DagFormat::Mermaid => {
            out.push_str("graph TD\n");
            for s in &plan.stages {
                out.push_str(&format!("  {}[\"{} ({})\"]\n", id(&s.name), s.name, s.kind));
            }
            for s in &plan.stages {
                for &d in &s.deps {
                    out.push_str(&format!("  {} --> {}\n", id(&plan.stages[d].name), id(&s.name)));
                }
            }
        }
        DagFormat::Dot => {
            out.push_str("digraph pipeline {\n  rankdir=LR;\n");
            for s in &plan.stages {
                out.push_str(&format!("  \"{}\" [label=\"{}\\n({})\"];\n", s.name, s.name, s.kind));
            }
            for s in &plan.stages {
                for &d in &s.deps {
                    out.push_str(&format!("  \"{}\" -> \"{}\";\n", plan.stages[d].name, s.name));
                }
            }
            out.push_str("}\n");
        }
    }
    out
}

/// The stages of pipeline.lock that `targets` select (no targets: all), by
/// the rule `run` uses; Err names a target that selects none.
pub fn select_locked<'a>(lock: &'a Lockfile, targets: &[String]) -> Result<Vec<(&'a String, &'a LockEntry)>, String> {
    let names: Vec<&str> = lock.stages.keys().map(String::as_str).collect();
    let named = kimcnn_pipeline::select_names(targets, &names).map_err(|e| match e {
        PipelineError::UnknownTarget(t) => t,
        other => other.to_string(),
    })?;
    Ok(lock.stages.iter().zip(named).filter(|(_, n)| *n).map(|(e, _)| e).collect())
}

fn show(project: &Project, target: &str, rows: usize) -> Result<ExitCode, Failure> {
    let (targets, only) = match target.split_once('/') {
        Some((stage, output)) => (stage, Some(output)),
        None => (target, None),
    };
    let lock = Lockfile::read(&project.lock_path())?;
    let entries = select_locked(&lock, &[targets.to_string()])
        .map_err(|t| Failure(format!("stage `{t}` has no outputs in pipeline.lock yet (run it: `kimcnn run {t}`)"), 2))?;
    if let Some(output) = only {
        if !entries.iter().any(|(_, e)| e.outputs.contains_key(output)) {
            let mut names: Vec<&str> = entries.iter().flat_map(|(_, e)| e.outputs.keys().map(String::as_str)).collect();
            names.sort();
            names.dedup();
            let names = names.join(", ");
            return Err(Failure(
                match entries.as_slice() {
                    [(stage, _)] => format!("stage `{stage}` has no output `{output}` (it has: {names})"),
                    _ => format!("no stage of `{targets}` has an output `{output}` (they have: {names})"),
                },
                2,
            ));
        }
    }
    for (i, (stage, entry)) in entries.iter().enumerate() {
        if only.is_some_and(|o| !entry.outputs.contains_key(o)) {
            continue;
        }
        if i > 0 {
            println!();
        }
        println!("{stage} [{}]  key {}", entry.kind, entry.key.short());
        if entry.kind == "report" && only.is_none() {
            let page = report::dir(&project.env.store, stage).join("index.html");
            match page.is_file() {
                true => println!("the page: {} (written by `kimcnn report`; --open opens it)", page.display()),
                false => println!("the page: not written yet: `kimcnn report` writes it to {}", page.display()),
            }
        }
        if entry.kind == "study" && only.is_none() {
            match study::summary(&project.env.store, stage, entry, 5) {
                Ok(text) => println!("{text}"),
                Err(e) => println!("(cannot summarise: {e})"),
            }
        }
        for (name, id) in entry.outputs.iter().filter(|(name, _)| only.is_none_or(|o| o == name.as_str())) {
            let path = project.env.store.object_path(id);
            if !path.is_file() {
                println!("\n{name}: object {} is not in the store (gc'd or not pulled)", id.short());
                continue;
            }
            let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            println!("\n{name}: artifacts/out/{stage}/{name}  ({size} bytes, blake3 {})", id.short());
            match show::describe(&path, rows) {
                Ok(text) => println!("{text}"),
                Err(e) => println!("(cannot read: {e})"),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn gc(project: &Project, dry_run: bool, workspace: bool) -> Result<ExitCode, Failure> {
    let lock = Lockfile::read(&project.lock_path())?;
    let keep: BTreeSet<_> = lock.objects().cloned().collect();
    let keys: BTreeSet<_> = lock.stages.values().map(|e| e.key.clone()).collect();
    let rep = project.env.store.gc(&keep, workspace.then_some(&keys), dry_run)?;
    let verb = if dry_run { "would remove" } else { "removed" };
    if dry_run {
        for (id, n) in &rep.removed {
            println!("would remove object {id} ({n} bytes)");
        }
        for k in &rep.removed_runs {
            println!("would remove run record {k}");
        }
    }
    println!(
        "{verb} {} objects ({:.1} MB), {} run records, {} scratch dirs, {} journal/checkpoint dirs; kept {} objects",
        rep.removed.len(),
        rep.removed_bytes() as f64 / 1e6,
        rep.removed_runs.len(),
        rep.removed_scratch,
        rep.removed_state,
        rep.kept
    );
    Ok(ExitCode::SUCCESS)
}

fn hash(files: &[PathBuf]) -> Result<ExitCode, Failure> {
    for f in files {
        let id = kimcnn_store::hash_file(f)?;
        println!("{id}  {}", f.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs the torch worker's smoke test and passes its report through.
fn doctor() -> Result<ExitCode, Failure> {
    let worker = kimcnn_cnn::worker_path().map_err(|e| Failure(e, 1))?;
    let status = std::process::Command::new(&worker)
        .arg("smoke")
        .status()
        .map_err(|e| Failure(format!("{}: cannot start the torch worker: {e}", worker.display()), 1))?;
    Ok(if status.success() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    /// Every registered kind: its normalised params are a fixed point (parsed
    /// again, they normalise to themselves), so a lock's params, a job's and
    /// the key's are one form.
    #[test]
    fn every_kind_normalises_to_a_fixed_point() {
        let registry = super::registry();
        let cases = [
            ("source", json!({"path": "x.txt"}), vec![], vec![]),
            ("exec", json!({"cmd": "true", "env": {"N": 3}}), vec!["o".to_string()], vec!["in"]),
            ("tokenize", json!({"format": "trec", "classes": [1, "b"]}), vec![], vec!["train", "test"]),
            ("vocab", json!({"min_count": 0}), vec![], vec!["tokens"]),
            ("embed", json!({"unk_init": "normal", "format": "fasttext"}), vec![], vec!["vocab", "vectors"]),
            (
                "train",
                json!({"dataset": "mr", "variant": "rand", "rand_a": "matched", "device": "cpu"}),
                vec![],
                vec!["tokens", "vocab", "embeddings"],
            ),
            ("evaluate", json!({"device": "cuda:1"}), vec![], vec!["model", "tokens", "vocab"]),
            ("aggregate", json!({}), vec![], vec!["metrics.a"]),
            ("report", json!({"title": "x"}), vec![], vec!["metrics.evaluate.a", "trials.study"]),
            ("tsne", json!({"words": 500}), vec![], vec!["model", "embeddings", "vocab", "tokens"]),
            ("neighbours", json!({"words": ["good"]}), vec![], vec!["model", "embeddings", "vocab"]),
            ("subword", json!({"model": "bpe", "vocab_size": 8000}), vec![], vec!["tokens", "summary", "corpus"]),
            ("segment", json!({}), vec![], vec!["tokens", "summary", "tokenizer"]),
            ("word2vec", json!({"arch": "cbow", "min_count": 0, "alpha": 0.05}), vec![], vec!["tokens", "summary"]),
            (
                "study",
                json!({"base": {"dataset": "mr", "fold": 0}, "space": {"pad": {"choice": ["kim", "bucket"]}}, "stopper": {"asha": {}}}),
                vec![],
                vec!["tokens", "vocab", "embeddings"],
            ),
        ];
        for (name, raw, outputs, inputs) in &cases {
            let kind = registry.get(name).unwrap();
            let planned = kind.plan(raw, outputs, inputs, None).unwrap_or_else(|e| panic!("{name}: {e}"));
            let again = kind.plan(&planned.params, outputs, inputs, None).unwrap();
            assert_eq!(again.params, planned.params, "{name}");
        }
        let names: Vec<&str> = registry.names().collect();
        assert_eq!(names.len(), cases.len(), "a case for every kind: {names:?}");
        // Aliases and format-dependent defaults are written out.
        let p = registry.get("embed").unwrap().plan(&json!({"format": "fasttext"}), &[], &["vocab", "vectors"], None).unwrap();
        assert_eq!(p.params["format"], "word2vec-text");
        let p = registry.get("tokenize").unwrap().plan(&json!({"format": "trec"}), &[], &["train"], None).unwrap();
        assert_eq!(
            (p.params["lower"].clone(), p.params["cleaner"].clone(), p.params["encoding"].clone()),
            (json!(false), json!("kim"), json!("utf8-latin1"))
        );
    }
}
