//! `hdrtap top`: the HTTP capture of `hdrtap http` on a thread of its own,
//! its records handed through a one-sink fanout to a live endpoint table
//! (`hdrtap_core::live`), which this thread draws with ratatui about every
//! second and at each key.
//!
//! ```text
//! thread "capture": http::capture ─► Fanout ─► thread "sink-top": LiveSink ─► Mutex<live::Table>
//! main thread:      keys, draw ◄──────────────────────────────────────────────────┘
//!                   counters ◄── StatusBoard (the capture publishes them each second)
//! ```
//!
//! Everything that can fail before the screen is taken fails first, as one
//! line (no terminal, no privileges, no process with that pid, programs
//! that do not load). While the screen is taken, stderr goes into a pipe:
//! what hdrtap would have printed there is counted in the header and
//! printed once the terminal is restored (on quit, on error, on a panic).
use std::io::{self, BufRead, IsTerminal, Write};
use std::os::fd::OwnedFd;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::thread::{JoinHandle, ThreadId};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use hdrtap_core::live::{Row as LiveRow, SortKey, Table};
use hdrtap_core::record::Role;
use hdrtap_core::sink::{Fanout, KindSet, Record, SinkCounters, SinkSpec, StatusBoard};
use hdrtap_core::summary::ms;
use ratatui::backend::CrosstermBackend;
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use ratatui::crossterm::{cursor, execute, terminal};
use ratatui::layout::{Constraint, Layout};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, Table as TableWidget, Wrap};
use ratatui::{Frame, Terminal};

use super::common::{self, Control, Ids, Output};
use crate::cli::{CaptureCommon, HttpArgs, TopArgs, ViewArgs, STATS_INTERVAL};

/// How often the screen is redrawn without a key.
const REFRESH: Duration = Duration::from_secs(1);
/// Records the view's queue holds at most; past that they are dropped and counted.
const QUEUE_RECORDS: u64 = 100_000;
/// Lines of stderr kept while the screen is taken (the rest are counted).
const KEEP_STDERR_LINES: usize = 100;

pub fn run(args: &TopArgs) -> anyhow::Result<ExitCode> {
    if !io::stdout().is_terminal() {
        bail!("hdrtap top needs a terminal; use hdrtap http --json for pipes");
    }
    super::http::check_pids(&args.scope)?;
    super::http::require_privileges("hdrtap top")?;
    let http = http_args(args);

    let started = Instant::now();
    let table = Arc::new(Mutex::new(Table::new(Duration::ZERO)));
    let counters = Arc::new(SinkCounters::default());
    let fanout = Arc::new(
        Fanout::start(vec![SinkSpec {
            name: "top".into(),
            sink_type: "top",
            kinds: KindSet::parse(&["http_response"]).map_err(|e| anyhow!(e))?,
            queue_records: QUEUE_RECORDS,
            sink: Box::new(LiveSink {
                table: Arc::clone(&table),
                started,
            }),
            counters: Arc::clone(&counters),
        }])
        .context("cannot start the view's thread")?,
    );
    let board = Arc::new(StatusBoard::default());
    let stop = common::stop_flag()?;
    let (ready_tx, ready_rx) = mpsc::channel::<String>();
    let ctl = Control {
        stop: Arc::clone(&stop),
        duration: args.duration,
        count: None,
        stats_interval: STATS_INTERVAL.default,
        // The screen is the summary.
        interim_summary: false,
        ids: Arc::new(Ids::default()),
        on_ready: Box::new(move |what: &str| {
            let _ = ready_tx.send(what.to_string());
            Ok(())
        }),
        board: Some(Arc::clone(&board)),
    };
    let output = Output::Fanout(Arc::clone(&fanout));
    let capture = std::thread::Builder::new()
        .name("capture".into())
        .spawn(move || super::http::capture(&http, None, move || Ok(output), ctl))
        .context("cannot start the capture thread")?;

    // Load and attach errors come as one line, before the screen is taken.
    let Ok(what) = ready_rx.recv() else {
        // The capture ended without attaching: its error.
        join(capture)?;
        return Ok(ExitCode::SUCCESS);
    };

    if stop.load(Ordering::Relaxed) {
        // Stopped while attaching: the screen is not worth taking.
        join(capture)?;
        return Ok(ExitCode::SUCCESS);
    }
    let ui = Ui {
        what,
        table: &table,
        counters: &counters,
        board: &board,
        started,
        sort: SortKey::Count,
        filter: String::new(),
        editing: None,
        stderr_lines: None,
    };
    let outcome = show(ui, &stop, &capture);
    // Whatever happened on screen, the capture stops and the terminal is back.
    stop.store(true, Ordering::Relaxed);
    let (shown, stderr) = outcome;
    for line in &stderr {
        eprintln!("{line}");
    }
    let captured = join(capture);
    // The records still queued reach the table before the last line.
    if let Ok(f) = Arc::try_unwrap(fanout) {
        f.close();
    }
    shown?;
    let summary = captured?;
    eprintln!("{}", final_line(&table, &counters, &board, started));
    // The traffic is what was on screen; but events the pipeline dropped on
    // an internal error are said, as `hdrtap http` says them.
    for line in summary.iter().filter(|l| l.contains("internal error")) {
        eprintln!("{line}");
    }
    Ok(ExitCode::SUCCESS)
}

/// `hdrtap http`'s arguments for what `hdrtap top` captures: its filters,
/// default redaction (routes drop the query anyway), no rules, no output.
fn http_args(args: &TopArgs) -> HttpArgs {
    use crate::cli::{CALL_CAPTURE, MAX_HEADER_BYTES, RING_MIB};
    HttpArgs {
        common: CaptureCommon {
            json: false,
            output: None,
            print: false,
            count: None,
            duration: args.duration,
            ready_file: None,
            stats_interval: None,
            ring_mib: RING_MIB.default,
            quiet: true,
        },
        scope: args.scope.clone(),
        filter: args.filter.clone(),
        // Records are drawn here, not written: the readable view is unused.
        view: ViewArgs::default(),
        read: None,
        no_redact: false,
        redact: Vec::new(),
        redact_params: Vec::new(),
        no_redact_params: Vec::new(),
        max_header_bytes: MAX_HEADER_BYTES.default,
        call_capture: CALL_CAPTURE.default,
        no_tls: args.no_tls,
        no_rules: true,
        drop_caps: false,
        with_packets: None,
        packets_wait: 1000,
        wire: Default::default(),
    }
}

/// The capture thread's end: its summary lines, its error, or one line
/// for its panic.
fn join(capture: JoinHandle<anyhow::Result<Vec<String>>>) -> anyhow::Result<Vec<String>> {
    match capture.join() {
        Ok(r) => r,
        Err(_) => bail!("the capture thread stopped on an internal error (please report this)"),
    }
}

/// The line on stderr at the end.
fn final_line(
    table: &Mutex<Table>,
    counters: &SinkCounters,
    board: &StatusBoard,
    started: Instant,
) -> String {
    let t = lock(table);
    let k = Kernel::of(board);
    format!(
        "hdrtap top: {} responses on {} endpoints in {:.0} s; lost {} events to a full ring buffer, {} failed reads; {} parse errors; {} records dropped by the view",
        t.total(),
        t.endpoints(),
        started.elapsed().as_secs_f64(),
        k.lost_events,
        k.read_failures,
        k.parse_errors,
        counters.snapshot().dropped_queue,
    )
}

fn lock(table: &Mutex<Table>) -> MutexGuard<'_, Table> {
    table.lock().unwrap_or_else(|p| p.into_inner())
}

/// The fanout's one sink: final responses into the table.
struct LiveSink {
    table: Arc<Mutex<Table>>,
    started: Instant,
}

impl hdrtap_core::sink::Sink for LiveSink {
    fn write(&mut self, batch: &[Record]) {
        let now = self.started.elapsed();
        let mut t = lock(&self.table);
        for rec in batch {
            if let Record::Http(r) = rec {
                t.observe(r, now);
            }
        }
    }

    fn close(&mut self) {}
}

/// The capture's counters the header shows, from its latest stats.
#[derive(Default)]
struct Kernel {
    lost_events: u64,
    read_failures: u64,
    parse_errors: u64,
}

impl Kernel {
    fn of(board: &StatusBoard) -> Kernel {
        let Some(s) = board
            .snapshot()
            .into_iter()
            .find(|c| c.stats.source == "http")
        else {
            return Kernel::default();
        };
        let get = |k| s.stats.get(k).unwrap_or(0);
        Kernel {
            lost_events: get("lost_events"),
            read_failures: get("read_failures"),
            parse_errors: get("parse_errors") + get("decode_errors"),
        }
    }
}

/// What the screen shows and the keys change.
struct Ui<'a> {
    /// What is traced (the capture's start-up description).
    what: String,
    table: &'a Mutex<Table>,
    counters: &'a SinkCounters,
    board: &'a StatusBoard,
    started: Instant,
    sort: SortKey,
    /// The filter applied.
    filter: String,
    /// The filter being typed (after `/`).
    editing: Option<String>,
    /// stderr while the screen is taken: lines kept, lines in all.
    stderr_lines: Option<Arc<Mutex<StderrLines>>>,
}

enum KeyOutcome {
    Quit,
    Redraw,
    Ignore,
}

impl Ui<'_> {
    fn key(&mut self, k: KeyEvent) -> KeyOutcome {
        if k.kind != KeyEventKind::Press {
            return KeyOutcome::Ignore;
        }
        if k.modifiers.contains(KeyModifiers::CONTROL) && k.code == KeyCode::Char('c') {
            return KeyOutcome::Quit;
        }
        if let Some(text) = &mut self.editing {
            match k.code {
                KeyCode::Enter => {
                    self.filter = text.trim().to_string();
                    self.editing = None;
                }
                KeyCode::Esc => {
                    self.filter.clear();
                    self.editing = None;
                }
                KeyCode::Backspace => {
                    text.pop();
                }
                KeyCode::Char(c) if !c.is_control() && text.chars().count() < 200 => text.push(c),
                _ => return KeyOutcome::Ignore,
            }
            return KeyOutcome::Redraw;
        }
        let sort = match k.code {
            KeyCode::Char('q') | KeyCode::Esc => return KeyOutcome::Quit,
            KeyCode::Char('/') => {
                self.editing = Some(self.filter.clone());
                return KeyOutcome::Redraw;
            }
            KeyCode::Tab => self.sort.next(),
            KeyCode::Char('c') => SortKey::Count,
            KeyCode::Char('r') => SortKey::Rate,
            KeyCode::Char('e') => SortKey::Errors,
            KeyCode::Char('m') => SortKey::P50,
            KeyCode::Char('p') => SortKey::P99,
            KeyCode::Char('n') => SortKey::Route,
            _ => return KeyOutcome::Ignore,
        };
        self.sort = sort;
        KeyOutcome::Redraw
    }

    fn draw(&self, f: &mut Frame) {
        let [title, totals, body, footer] = Layout::vertical([
            Constraint::Length(1),
            // Two lines: on a narrow terminal the loss counters wrap, never cut.
            Constraint::Length(2),
            Constraint::Fill(1),
            Constraint::Length(1),
        ])
        .areas(f.area());
        let now = self.started.elapsed();
        let t = lock(self.table);
        let k = Kernel::of(self.board);
        let dropped = self.counters.snapshot().dropped_queue;
        let (warnings, last_warning) = match &self.stderr_lines {
            Some(l) => {
                let l = l.lock().unwrap_or_else(|p| p.into_inner());
                (l.1, l.0.last().map(|s| plain(s)))
            }
            None => (0, None),
        };

        let bold = Style::new().add_modifier(Modifier::BOLD);
        f.render_widget(
            Paragraph::new(Line::from(vec![
                Span::styled("hdrtap top", bold),
                Span::raw(format!(": {}", self.what)),
            ])),
            title,
        );
        let alarm = |n: u64| {
            if n > 0 {
                Style::new().fg(Color::Red).add_modifier(Modifier::BOLD)
            } else {
                Style::new()
            }
        };
        let mut spans = vec![Span::raw(format!(
            "{} responses, {:.1}/s, {} endpoints; up {:.0} s; ",
            t.total(),
            t.rate(now),
            t.endpoints(),
            now.as_secs_f64(),
        ))];
        for (n, what) in [
            (k.lost_events, "events lost"),
            (k.read_failures, "failed reads"),
            (k.parse_errors, "parse errors"),
            (dropped, "dropped by the view"),
        ] {
            spans.push(Span::styled(format!("{n} {what}"), alarm(n)));
            spans.push(Span::raw(", "));
        }
        spans.pop();
        if t.overflow() > 0 {
            spans.push(Span::styled(
                format!(
                    "; {} responses past {} endpoints in (other)",
                    t.overflow(),
                    t.max_endpoints()
                ),
                alarm(1),
            ));
        }
        if warnings > 0 {
            spans.push(Span::styled(
                format!(
                    "; {warnings} messages (on stderr at exit), last: {}",
                    last_warning.unwrap_or_default()
                ),
                alarm(1),
            ));
        }
        f.render_widget(
            Paragraph::new(Line::from(spans)).wrap(Wrap { trim: true }),
            totals,
        );

        let rows = t.view(self.sort, &self.filter, now);
        let shown = shown_columns(body.width);
        let pick = |i: &usize| shown[*i];
        let header = Row::new((0..COLUMNS.len()).filter(pick).map(|i| {
            let name = COLUMNS[i].0;
            Cell::from(if sorted_column(self.sort) == name {
                format!("{name}▼")
            } else {
                name.to_string()
            })
        }))
        .style(Style::new().add_modifier(Modifier::REVERSED));
        let widths = (0..COLUMNS.len()).filter(pick).map(|i| COLUMNS[i].1);
        let body_rows = rows.iter().map(|r| {
            let mut all = cells(&t, r, now);
            let mut i = 0;
            all.retain(|_| {
                i += 1;
                shown[i - 1]
            });
            Row::new(all)
        });
        f.render_widget(
            TableWidget::new(body_rows, widths)
                .header(header)
                .column_spacing(1),
            body,
        );

        let filter = if self.filter.is_empty() {
            "none"
        } else {
            &self.filter
        };
        let (shown_rows, all_rows) = (rows.len(), t.view(self.sort, "", now).len());
        let help = match &self.editing {
            Some(text) => {
                format!("filter: {text}_   (Enter applies, Esc clears; METHOD ROUTE, any case)")
            }
            None => {
                let long = format!(
                    "sort: {} (c count, r rate, e errors, m p50, p p99, n route, Tab next)   filter: {filter} (/ to edit)   {shown_rows} of {all_rows} rows   q quit",
                    self.sort.name(),
                );
                if long.chars().count() <= usize::from(footer.width) {
                    long
                } else {
                    format!(
                        "sort: {} (c r e m p n Tab)  filter: {filter} (/)  {shown_rows} of {all_rows} rows  q quit",
                        self.sort.name(),
                    )
                }
            }
        };
        f.render_widget(
            Paragraph::new(help).style(Style::new().add_modifier(Modifier::REVERSED)),
            footer,
        );
    }
}

/// `s` without terminal escape sequences (the colours of log lines, which
/// would garble the screen), other control characters as spaces.
fn plain(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            // CSI: ESC [ parameters, then a final byte in @..~.
            if chars.next() == Some('[') {
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
        } else if c.is_control() {
            out.push(' ');
        } else {
            out.push(c);
        }
    }
    out
}

/// The table's columns and widths.
const COLUMNS: [(&str, Constraint); 11] = [
    ("SIDE", Constraint::Length(6)),
    ("METHOD", Constraint::Length(7)),
    ("ROUTE", Constraint::Fill(1)),
    ("COUNT", Constraint::Length(8)),
    ("RATE/S", Constraint::Length(8)),
    ("4XX%", Constraint::Length(6)),
    ("5XX%", Constraint::Length(6)),
    ("P50", Constraint::Length(9)),
    ("P95", Constraint::Length(9)),
    ("P99", Constraint::Length(9)),
    ("MAX", Constraint::Length(9)),
];

/// The route column's width at least, as long as columns can be left out for it.
const MIN_ROUTE_WIDTH: u16 = 20;
/// The columns left out, in this order, when the terminal is narrow: MAX, P95, P50.
const NARROW_DROPS: [usize; 3] = [10, 8, 7];

/// Which of [`COLUMNS`] fit in `width` with a route column of at least
/// [`MIN_ROUTE_WIDTH`] (80 columns: all but P50, P95 and MAX).
fn shown_columns(width: u16) -> [bool; COLUMNS.len()] {
    let mut shown = [true; COLUMNS.len()];
    let fixed = |shown: &[bool; COLUMNS.len()]| -> u16 {
        COLUMNS
            .iter()
            .zip(shown)
            .filter(|(_, s)| **s)
            .map(|((_, c), _)| match c {
                Constraint::Length(n) => n + 1,
                _ => 1,
            })
            .sum()
    };
    for drop in NARROW_DROPS {
        if width.saturating_sub(fixed(&shown)) >= MIN_ROUTE_WIDTH {
            break;
        }
        shown[drop] = false;
    }
    shown
}

/// The column a sort key orders by (errors: 4XX% and 5XX% together, shown on 4XX%).
fn sorted_column(sort: SortKey) -> &'static str {
    match sort {
        SortKey::Count => "COUNT",
        SortKey::Rate => "RATE/S",
        SortKey::Errors => "4XX%",
        SortKey::P50 => "P50",
        SortKey::P99 => "P99",
        SortKey::Route => "ROUTE",
    }
}

fn cells(t: &Table, r: &LiveRow, now: Duration) -> Vec<Cell<'static>> {
    let pct = |x: f64| format!("{:.1}", x * 100.0);
    let lat = |ns: Option<u64>| ns.map_or_else(|| "-".to_string(), ms);
    let err = |x: f64| {
        let s = Style::new();
        if x > 0.0 {
            s.fg(Color::Red)
        } else {
            s
        }
    };
    vec![
        Cell::from(match r.side {
            Role::Server => "server",
            Role::Client => "client",
        }),
        Cell::from(r.method.clone()),
        Cell::from(r.route.clone()),
        Cell::from(r.count.to_string()),
        Cell::from(format!("{:.1}", t.row_rate(r, now))),
        Cell::from(pct(r.share_4xx())).style(err(r.share_4xx())),
        Cell::from(pct(r.share_5xx())).style(err(r.share_5xx())),
        Cell::from(lat(r.latency_ns(0.5))),
        Cell::from(lat(r.latency_ns(0.95))),
        Cell::from(lat(r.latency_ns(0.99))),
        Cell::from(lat(r.max_ns())),
    ]
}

/// Take the screen, run the keys-and-draw loop until a quit key, a signal
/// or the capture's end, and give the screen back. Returns how the loop
/// ended and what went to stderr meanwhile.
fn show(
    mut ui: Ui<'_>,
    stop: &AtomicBool,
    capture: &JoinHandle<anyhow::Result<Vec<String>>>,
) -> (anyhow::Result<()>, Vec<String>) {
    let screen = match Screen::take() {
        Ok(s) => s,
        Err(e) => return (Err(e), Vec::new()),
    };
    ui.stderr_lines = screen.stderr.as_ref().map(|s| Arc::clone(&s.lines));
    let shown = ui_loop(&mut ui, stop, capture);
    (shown, screen.give_back())
}

fn ui_loop(
    ui: &mut Ui<'_>,
    stop: &AtomicBool,
    capture: &JoinHandle<anyhow::Result<Vec<String>>>,
) -> anyhow::Result<()> {
    let mut terminal =
        Terminal::new(CrosstermBackend::new(io::stdout())).context("cannot use the terminal")?;
    let mut next_draw = Instant::now();
    loop {
        if stop.load(Ordering::Relaxed) || capture.is_finished() {
            return Ok(());
        }
        let now = Instant::now();
        if now >= next_draw {
            terminal
                .draw(|f| ui.draw(f))
                .context("cannot draw on the terminal")?;
            next_draw = now + REFRESH;
        }
        // Short waits: a signal or the capture's end is noticed soon.
        let wait = next_draw
            .saturating_duration_since(now)
            .min(Duration::from_millis(200));
        if event::poll(wait).context("cannot read the terminal")? {
            match event::read().context("cannot read the terminal")? {
                Event::Key(k) => match ui.key(k) {
                    KeyOutcome::Quit => return Ok(()),
                    KeyOutcome::Redraw => next_draw = Instant::now(),
                    KeyOutcome::Ignore => {}
                },
                Event::Resize(..) => next_draw = Instant::now(),
                _ => {}
            }
        }
    }
}

/// The terminal in raw mode on the alternate screen, and stderr into a
/// pipe; dropping it (or a panic on this thread) gives both back.
struct Screen {
    stderr: Option<StderrPipe>,
}

/// The thread that took the screen: a panic there restores the terminal
/// before its message is printed.
static UI_THREAD: OnceLock<ThreadId> = OnceLock::new();
/// The real stderr while the screen is taken.
static SAVED_STDERR: Mutex<Option<OwnedFd>> = Mutex::new(None);
/// Raw mode and the alternate screen are on: restored once (leaving the
/// alternate screen twice would move the cursor back over what was
/// printed in between, such as a panic's message).
static SCREEN_TAKEN: AtomicBool = AtomicBool::new(false);

impl Screen {
    fn take() -> anyhow::Result<Screen> {
        install_panic_hook();
        // Redirect stderr first: if that fails, nothing was changed yet.
        let stderr = StderrPipe::start()
            .map_err(|e| tracing::debug!("stderr stays on the terminal: {e}"))
            .ok();
        let screen = Screen { stderr };
        SCREEN_TAKEN.store(true, Ordering::SeqCst);
        terminal::enable_raw_mode().context("cannot put the terminal in raw mode")?;
        execute!(io::stdout(), terminal::EnterAlternateScreen, cursor::Hide)
            .context("cannot take the screen")?;
        Ok(screen)
    }

    /// Restore the terminal and stderr; what went to stderr meanwhile.
    fn give_back(mut self) -> Vec<String> {
        restore_terminal();
        match self.stderr.take() {
            Some(p) => p.finish(),
            None => Vec::new(),
        }
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        restore_terminal();
        if let Some(p) = self.stderr.take() {
            for line in p.finish() {
                eprintln!("{line}");
            }
        }
    }
}

/// Leave raw mode and the alternate screen, show the cursor, and point
/// stderr back at the terminal (each step even if another failed; each
/// once).
fn restore_terminal() {
    if SCREEN_TAKEN.swap(false, Ordering::SeqCst) {
        let _ = terminal::disable_raw_mode();
        let _ = execute!(io::stdout(), terminal::LeaveAlternateScreen, cursor::Show);
    }
    if let Some(fd) = SAVED_STDERR
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take()
    {
        let _ = rustix::stdio::dup2_stderr(&fd);
    }
}

fn install_panic_hook() {
    if UI_THREAD.set(std::thread::current().id()).is_err() {
        return;
    }
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        // Panics elsewhere (caught in the capture, or ending it) print into
        // the stderr pipe and come out after the screen is restored.
        if UI_THREAD.get() == Some(&std::thread::current().id()) {
            restore_terminal();
        }
        previous(info);
    }));
}

/// Lines of stderr kept (at most [`KEEP_STDERR_LINES`]), and how many came.
type StderrLines = (Vec<String>, u64);

/// stderr into a pipe whose lines a thread keeps.
struct StderrPipe {
    lines: Arc<Mutex<StderrLines>>,
    reader: JoinHandle<()>,
}

impl StderrPipe {
    fn start() -> io::Result<StderrPipe> {
        let saved = rustix::io::dup(io::stderr())?;
        // Not inherited by children as such (fd 2, its copy, is).
        let (rx, tx) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
        let lines: Arc<Mutex<StderrLines>> = Arc::default();
        let reader = std::thread::Builder::new().name("stderr".into()).spawn({
            let lines = Arc::clone(&lines);
            move || {
                for line in io::BufReader::new(std::fs::File::from(rx))
                    .lines()
                    .map_while(Result::ok)
                {
                    let mut l = lines.lock().unwrap_or_else(|p| p.into_inner());
                    if l.0.len() < KEEP_STDERR_LINES {
                        l.0.push(line);
                    }
                    l.1 += 1;
                }
            }
        })?;
        let _ = io::stderr().flush();
        *SAVED_STDERR.lock().unwrap_or_else(|p| p.into_inner()) = Some(saved);
        // fd 2 becomes the pipe's only writer: `tx` closes here.
        rustix::stdio::dup2_stderr(&tx)?;
        Ok(StderrPipe { lines, reader })
    }

    /// Once stderr is back on the terminal (the pipe has no writer left):
    /// the lines written, with a note on those not kept.
    fn finish(self) -> Vec<String> {
        // Lines still being written by the capture go to the terminal now;
        // the reader ends at the pipe's end, unless a child process that
        // inherited stderr still holds it: then without the last lines.
        let deadline = Instant::now() + Duration::from_secs(1);
        while !self.reader.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        let (mut kept, all) =
            std::mem::take(&mut *self.lines.lock().unwrap_or_else(|p| p.into_inner()));
        if all > kept.len() as u64 {
            kept.push(format!(
                "hdrtap: ({} more lines on stderr while the screen was taken, not kept)",
                all - kept.len() as u64
            ));
        }
        kept
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn narrow_terminals_leave_out_max_p95_then_p50() {
        let names = |w| -> Vec<&str> {
            COLUMNS
                .iter()
                .zip(shown_columns(w))
                .filter(|(_, s)| *s)
                .map(|((n, _), _)| *n)
                .collect()
        };
        assert_eq!(names(160).len(), COLUMNS.len());
        assert_eq!(names(108).len(), COLUMNS.len());
        assert!(!names(100).contains(&"MAX") && names(100).contains(&"P95"));
        assert_eq!(
            names(80),
            ["SIDE", "METHOD", "ROUTE", "COUNT", "RATE/S", "4XX%", "5XX%", "P99"]
        );
        // Narrower still: nothing more to leave out, the route gets what is left.
        assert_eq!(names(40).len(), 8);
    }

    #[test]
    fn log_lines_lose_their_colours() {
        assert_eq!(
            plain("\x1b[2m2026-12-06T11:06:47Z\x1b[0m \x1b[33m WARN\x1b[0m traced\twarning"),
            "2026-12-06T11:06:47Z  WARN traced warning"
        );
        assert_eq!(plain("hdrtap: warning: x"), "hdrtap: warning: x");
        assert_eq!(plain("cut \x1b"), "cut ");
    }

    #[test]
    fn keys_sort_filter_and_quit() {
        let table = Mutex::new(Table::new(Duration::ZERO));
        let counters = SinkCounters::default();
        let board = StatusBoard::default();
        let mut ui = Ui {
            what: String::new(),
            table: &table,
            counters: &counters,
            board: &board,
            started: Instant::now(),
            sort: SortKey::Count,
            filter: String::new(),
            editing: None,
            stderr_lines: None,
        };
        let key = |c| KeyEvent::new(c, KeyModifiers::NONE);
        let press = |ui: &mut Ui, c| ui.key(key(c));
        assert!(matches!(
            press(&mut ui, KeyCode::Char('e')),
            KeyOutcome::Redraw
        ));
        assert_eq!(ui.sort, SortKey::Errors);
        press(&mut ui, KeyCode::Tab);
        assert_eq!(ui.sort, SortKey::P50);
        press(&mut ui, KeyCode::Char('n'));
        assert_eq!(ui.sort, SortKey::Route);
        // Typing a filter: letters that are keys elsewhere are text here.
        press(&mut ui, KeyCode::Char('/'));
        for c in "get /aq".chars() {
            press(&mut ui, KeyCode::Char(c));
        }
        press(&mut ui, KeyCode::Backspace);
        assert_eq!(ui.filter, "");
        press(&mut ui, KeyCode::Enter);
        assert_eq!((ui.filter.as_str(), ui.editing.is_none()), ("get /a", true));
        assert_eq!(ui.sort, SortKey::Route);
        // Esc while typing clears the filter; then Esc quits.
        press(&mut ui, KeyCode::Char('/'));
        assert_eq!(ui.editing.as_deref(), Some("get /a"));
        assert!(matches!(press(&mut ui, KeyCode::Esc), KeyOutcome::Redraw));
        assert_eq!(ui.filter, "");
        assert!(matches!(press(&mut ui, KeyCode::Esc), KeyOutcome::Quit));
        assert!(matches!(
            press(&mut ui, KeyCode::Char('q')),
            KeyOutcome::Quit
        ));
        assert!(matches!(
            press(&mut ui, KeyCode::Char('x')),
            KeyOutcome::Ignore
        ));
        let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert!(matches!(ui.key(ctrl_c), KeyOutcome::Quit));
        // Releases (kitty keyboard protocol) are not presses.
        let mut release = key(KeyCode::Char('q'));
        release.kind = KeyEventKind::Release;
        assert!(matches!(ui.key(release), KeyOutcome::Ignore));
    }
}
