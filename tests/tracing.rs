//! The `tracing` feature: every op is logged when submitted and when it completes, inside the
//! span of the task that issued it, and the runtime reports what it recovered from. Built with
//! `--features tracing` (`cargo test --all-features`, as `.ci/run` does).
#![cfg(feature = "tracing")]

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::{Arc, Mutex};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

/// One event as the test sees it.
#[derive(Debug, Clone)]
struct Seen {
    level: Level,
    fields: HashMap<String, String>,
    /// The name and fields of the span the event happened in, if any.
    span: Option<(String, HashMap<String, String>)>,
}

impl Seen {
    fn field(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(String::as_str)
    }
}

#[derive(Default)]
struct State {
    spans: HashMap<u64, (String, HashMap<String, String>)>,
    entered: Vec<u64>,
    events: Vec<Seen>,
}

/// A subscriber that keeps everything (one thread: the runtime's).
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<State>>);

struct Fields<'a>(&'a mut HashMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

impl Subscriber for Capture {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, attrs: &Attributes<'_>) -> Id {
        let mut fields = HashMap::new();
        attrs.record(&mut Fields(&mut fields));
        let mut state = self.0.lock().unwrap();
        let id = state.spans.len() as u64 + 1;
        state
            .spans
            .insert(id, (attrs.metadata().name().to_owned(), fields));
        Id::from_u64(id)
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut fields = HashMap::new();
        event.record(&mut Fields(&mut fields));
        let mut state = self.0.lock().unwrap();
        let span = state
            .entered
            .last()
            .and_then(|id| state.spans.get(id).cloned());
        state.events.push(Seen {
            level: *event.metadata().level(),
            fields,
            span,
        });
    }

    fn enter(&self, id: &Id) {
        self.0.lock().unwrap().entered.push(id.into_u64());
    }

    fn exit(&self, _: &Id) {
        self.0.lock().unwrap().entered.pop();
    }
}

fn captured(body: impl FnOnce()) -> Vec<Seen> {
    let capture = Capture::default();
    tracing::subscriber::with_default(capture.clone(), body);
    let events = capture.0.lock().unwrap().events.clone();
    events
}

#[test]
fn each_op_is_logged_at_submit_and_completion_inside_its_task_span() {
    let events = captured(|| {
        ringloop::block_on(async {
            let task = ringloop::spawn(async {
                let (a, b) = ringloop::net::UnixStream::pair().unwrap();
                let (res, _) = a.write_all(b"ping".to_vec()).await;
                res.unwrap();
                let (res, buf) = b.read(Vec::with_capacity(16)).await;
                assert_eq!(res.unwrap(), 4);
                assert_eq!(buf, b"ping");
            });
            task.await.unwrap();
        });
    });
    let submit = |op: &str| {
        events
            .iter()
            .find(|e| e.field("message") == Some("submit") && e.field("op") == Some(op))
            .unwrap_or_else(|| panic!("no submit of {op} in {events:#?}"))
    };
    for op in ["send", "recv"] {
        let submitted = submit(op);
        assert_eq!(submitted.level, Level::TRACE);
        let (span, fields) = submitted.span.as_ref().expect("submitted inside a span");
        assert_eq!(span, "task");
        assert!(fields.contains_key("task"), "{fields:?}");
        let user_data = submitted.field("user_data").unwrap();
        let completed = events
            .iter()
            .find(|e| {
                e.field("message") == Some("complete") && e.field("user_data") == Some(user_data)
            })
            .unwrap_or_else(|| panic!("no completion of {op} ({user_data}) in {events:#?}"));
        assert_eq!(completed.field("result"), Some("4"), "{completed:?}");
    }
}

#[test]
fn a_task_that_panics_is_reported() {
    let events = captured(|| {
        ringloop::block_on(async {
            let task = ringloop::spawn(async { panic!("on purpose") });
            assert!(task.await.unwrap_err().is_panic());
        });
    });
    let reported = events
        .iter()
        .find(|e| {
            e.field("message")
                .is_some_and(|m| m.contains("task panicked"))
        })
        .unwrap_or_else(|| panic!("no panic reported in {events:#?}"));
    assert_eq!(reported.level, Level::DEBUG);
    assert_eq!(reported.span.as_ref().map(|s| s.0.as_str()), Some("task"));
}
