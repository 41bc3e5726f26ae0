//! The position path is the hot path (API.md v1.2 asks that tracking add no
//! allocation when no one is tracking a worker): a report that keeps the
//! worker in its cell allocates nothing — whether nobody tracks the worker
//! or it is on the way to a job within its tracking interval. Counted with
//! a global allocator, in a test binary of its own.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use engine::*;

struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations made by `f` (this binary runs one test, so no other thread counts).
fn allocations(f: impl FnOnce()) -> usize {
    ALLOCS.store(0, Ordering::SeqCst);
    COUNTING.store(true, Ordering::SeqCst);
    f();
    COUNTING.store(false, Ordering::SeqCst);
    ALLOCS.load(Ordering::SeqCst)
}

const T0: Millis = Millis(1_700_000_000_000);

fn at_ms(ms: i64) -> Millis {
    Millis(T0.0 + ms)
}

#[test]
fn a_report_in_the_same_cell_allocates_nothing_tracked_or_not() {
    let e = Engine::new(EngineConfig::default()).unwrap();
    let plumbing = [Skill::new("plumbing").unwrap()];
    let (ann, bob) = (WorkerId::from("ann"), WorkerId::from("bob"));
    for w in [&ann, &bob] {
        e.register_worker(w, &plumbing, T0).unwrap();
        e.update_position(w, 52.52, 13.405, T0).unwrap();
        e.set_connected(w, true, T0).unwrap();
        e.set_available(w, true, T0).unwrap();
    }
    let handle = e.worker_handle(&bob).unwrap();
    // A millionth of a degree each time: the same fine cell.
    let step = |i: i64| 52.52 + i as f64 * 1e-6;

    // Nobody tracks anyone: by id and by handle.
    let n = allocations(|| {
        for i in 1..=1000 {
            let ev = e.update_position(&ann, step(i), 13.405, at_ms(i)).unwrap();
            assert!(ev.is_empty());
            let ev = e
                .update_position_of(&handle, step(i), 13.405, at_ms(i))
                .unwrap();
            assert!(ev.is_empty());
        }
    });
    assert_eq!(n, 0, "allocations for 2 000 untracked reports");

    // Bob on the way to a job: the report that is due allocates its event;
    // the ones within the interval allocate nothing.
    e.create_job(
        NewJob {
            id: JobId::from("j1"),
            resident_id: ResidentId::from("r1"),
            lat: 52.5205,
            lng: 13.405,
            skill: plumbing[0].clone(),
            description: "tap".into(),
        },
        at_ms(2000),
    )
    .unwrap();
    let holder = e.job(&JobId::from("j1")).unwrap().worker_id.unwrap();
    let h = e.worker_handle(&holder).unwrap();
    let accepted = e.accept(&JobId::from("j1"), &holder, at_ms(2001)).unwrap();
    assert!(accepted.iter().any(|ev| matches!(
        ev.kind,
        EventKind::JobAccepted {
            tracked: Some(_),
            ..
        }
    )));
    let n = allocations(|| {
        for i in 1..=1000 {
            // Inside the 2 s interval that the acceptance's message opened.
            let ev = e
                .update_position_of(&h, step(i), 13.405, at_ms(2001 + i))
                .unwrap();
            assert!(ev.is_empty());
        }
    });
    assert_eq!(n, 0, "allocations for 1 000 reports within the interval");
    // (The counter counts: the next due report's event is allocated.)
    let mut ev = Vec::new();
    let n = allocations(|| {
        ev = e
            .update_position_of(&h, step(1), 13.405, at_ms(4001))
            .unwrap()
    });
    assert_eq!(ev.len(), 1, "{ev:?}");
    assert!(n > 0);
}
