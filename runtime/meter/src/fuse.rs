//! Fused loop charges: an innermost loop pays for its whole body once per iteration.
//!
//! The plain scheme charges every straight-line segment at its start. In a loop like
//! `loop A; br_if $exit; B; br_if 0 end` that is a charge (and, at the header, a check)
//! for `A` and another charge for `B` on every iteration. A *fused* loop charges, at its
//! header, the sum `P` of the charges of every segment boundary inside its body, and
//! gives back what a branch skips: a branch taken from boundary `i` to the continuation
//! after boundary `k` refunds the charges at boundaries `i..k`, on the taken edge only
//! (`br_if` becomes `if (refund; br) end`). Leaving the loop or going round again skips
//! the rest of the body, so it refunds the charges from `i` to the loop's `end`. On the
//! common path (fall through, go round) there is no refund at all: one subtraction and
//! one check per iteration.
//!
//! What stays exact:
//! - **Fuel at completion**: every path through the body is charged `P` minus the
//!   refunds of the boundaries it skipped, which is the sum of the charges it passed:
//!   what the plain scheme (and wasmtime's engine fuel) charges.
//! - **Where a run is out of fuel**: the header traps iff the counter minus what the plain
//!   scheme charges at the header is negative; with `P` subtracted instead, that is
//!   `counter - P < -(P - header charge)`, and the check compares against that threshold.
//!   Between headers there are no checks in a fused body (calls, bulk operations and
//!   nested loops, which check, make a loop ineligible), and any later check or the
//!   host's final look sees the exact counter, all refunds made.
//!
//! What changes: a guest trap inside a fused body sees the counter with the rest of the
//! iteration already charged (at most `P` more than the plain scheme), so `fuel_used` of a
//! trapped run can be larger. It is still a function of the module and the executed
//! instructions only, so it is the same on every machine.
//!
//! Eligible: a `loop` with no `loop`, call, `br_table` or bulk operation inside, and no
//! `br_if` inside whose target takes values (its rewrite as `if` would need a block type
//! with parameters).

use wasmparser::{BlockType, Operator as Op};

use crate::cost::{ends_reachability, ends_segment, has_per_unit_cost};
use crate::module::ModuleInfo;

/// What the rewrite of one function needs to fuse its loops.
pub(crate) struct Plan {
    /// `pre[i]`: the sum of the plain scheme's charges at boundaries before op `i`.
    pre: Vec<u64>,
    /// For `block`, `loop` and `if`: the index of the matching `end`.
    end_of: Vec<usize>,
    /// For `if`: the index of its `else`, if any.
    else_of: Vec<Option<usize>>,
    /// For branches (`br`, `br_if`, `return`): the op index of the target frame's
    /// `block`/`loop`/`if`, or `None` for the function's own label.
    target: Vec<Option<usize>>,
    /// For `loop` ops: whether the loop is fused.
    fused: Vec<bool>,
    /// The kind of frame op `i` opens, if it opens one.
    opens: Vec<Option<Kind>>,
    /// For `loop` ops: whether every branch back to the loop is a `br`, or a `br_if` with
    /// no values, so that the header's charge can move onto the entry and back edges.
    edge_charged: Vec<bool>,
    /// For `loop` ops: the counted loops whose whole cost is charged on entry.
    counted: Vec<Option<Counted>>,
    /// For `loop` ops: the bounded loops (see [`Bounded`]).
    bounded: Vec<Option<Bounded>>,
}

/// The largest loop (in operators) treated as bounded.
pub(crate) const BOUNDED_MAX_OPS: usize = 64;

/// A bounded loop: a small fused loop whose body is straight-line code with exits
/// (`br_if` out of the loop) and whose last seven operators count up to a bound,
/// `local.get $n; local.get $i; i32.const step; i32.add; local.tee $i; i32.ne; br_if 0`
/// (or with `local.tee $i` compared to `$n` the other way round, or a constant for `$n`),
/// with `$i` and `$n` written nowhere else in it and `step` a power of two. Entered with
/// `$n - $i` a multiple of `step`, it runs at most `T = ($n - $i) / step` iterations
/// (`2^32 / step` when they are equal). When the counter covers `T × cost`, it is emitted
/// as a copy that pays all of that on entry, has no check, and gives back the iterations
/// it did not run on each exit; otherwise (or when the step does not divide the distance)
/// it runs as the plain fused loop, which checks every iteration (`func.rs`,
/// `bounded_copy`). Either way the count is exact, and a run is out of fuel exactly when
/// the plain scheme's is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Bounded {
    /// The counter local, as the original body numbers it.
    pub(crate) counter: u32,
    /// The bound.
    pub(crate) bound: Bound,
    /// `log2(step)`.
    pub(crate) shift: u32,
    /// The cost of one whole iteration.
    pub(crate) cost: u64,
}

/// What a bounded loop's counter counts up to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Bound {
    /// A local (original numbering) the loop does not write.
    Local(u32),
    /// A constant.
    Const(i32),
}

/// The bound, counter and step of a count-up tail (see [`Bounded`]), if `tail` is one.
fn count_up_tail(tail: &[Op<'_>]) -> Option<(Bound, u32, i32)> {
    let bound = |op: &Op<'_>| match *op {
        Op::LocalGet { local_index } => Some(Bound::Local(local_index)),
        Op::I32Const { value } => Some(Bound::Const(value)),
        _ => None,
    };
    match tail {
        [n, Op::LocalGet { local_index: i }, Op::I32Const { value }, Op::I32Add, Op::LocalTee { local_index: t }, Op::I32Ne, Op::BrIf { relative_depth: 0 }]
        | [Op::LocalGet { local_index: i }, Op::I32Const { value }, Op::I32Add, Op::LocalTee { local_index: t }, n, Op::I32Ne, Op::BrIf { relative_depth: 0 }]
            if i == t =>
        {
            Some((bound(n)?, *i, *value))
        }
        _ => None,
    }
}

/// A counted loop (see [`Plan::counted`]): a fused, single-segment body whose only way
/// out (other than a trap) is falling through its last instruction,
/// `local.get $k; i32.const -step; i32.add; local.tee $k; br_if 0`, with `$k` written
/// nowhere else in it and `step` a power of two. Entered with `$k = k0`, it runs
/// `T = k0 / step` iterations (`2^32 / step` for `k0 = 0`); if `step` does not divide
/// `k0`, `$k` never reaches 0 and it runs until the fuel is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Counted {
    /// The counter local, as the original body numbers it.
    pub(crate) local: u32,
    /// `log2(step)`.
    pub(crate) shift: u32,
    /// The cost of one iteration.
    pub(crate) cost: u64,
    /// How many copies of the body one iteration of the emitted loop runs (see
    /// [`unroll_factor`]).
    pub(crate) unroll: u32,
}

/// Bodies of at most this many operators (the tail excluded) are unrolled 4 times.
const UNROLL_MAX_OPS: usize = 24;
/// How many copies of the body an unrolled loop runs per iteration.
const UNROLL: u32 = 4;

/// Whether `op` neither opens a frame nor ends a straight-line segment.
fn straight_line(op: &Op<'_>) -> bool {
    !ends_segment(op) && !matches!(op, Op::Block { .. })
}

/// The unroll factor of a counted loop whose body (between `loop` and the tail) is `body`
/// with step `2^shift`: 4 for short straight-line bodies, 1 (not unrolled) when the body
/// is longer or has anything but plain operators, or when `4 × step` would not fit in
/// 2^31.
///
/// Unrolling a counted loop is pure code generation: its iterations are all paid for on
/// entry, its body has no branch, and the copies run exactly the operators of the
/// original iterations, in the same order. Cranelift does not unroll. Measured on the
/// examples (A/B of the rewrite, best of 12 runs): `matmul`'s 17-operator inner loop went
/// from 3.26 ms to 2.75 ms; `primes`' 40-operator counting loop, which LLVM had already
/// unrolled twice, went from 20.6 ms to 22.5 ms when unrolled twice more, hence the limit.
fn unroll_factor(body: &[Op<'_>], shift: u32) -> u32 {
    let plain = body.iter().all(straight_line);
    let factor = if plain && body.len() <= UNROLL_MAX_OPS {
        UNROLL
    } else {
        1
    };
    if (u64::from(factor) << shift) > 1 << 31 {
        1
    } else {
        factor
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Block,
    Loop,
    If,
}

fn label_arity(kind: Kind, ty: BlockType, info: &ModuleInfo) -> usize {
    match ty {
        BlockType::Empty => 0,
        BlockType::Type(_) => usize::from(kind != Kind::Loop),
        BlockType::FuncType(i) => {
            let sig = &info.types[i as usize];
            if kind == Kind::Loop {
                sig.params.len()
            } else {
                sig.results.len()
            }
        }
    }
}

impl Plan {
    /// Plans the fusion of `ops`, whose segment costs are `seg_costs` (segment 0 starts at
    /// entry, segment k after the k-th segment-ending operator).
    pub(crate) fn new(
        ops: &[Op<'_>],
        seg_costs: &[u64],
        info: &ModuleInfo,
        results: usize,
    ) -> Plan {
        let n = ops.len();
        let mut pre = Vec::with_capacity(n + 1);
        let mut end_of = vec![usize::MAX; n];
        let mut else_of = vec![None; n];
        let mut target = vec![None; n];
        let mut fused = vec![false; n];
        let opens = ops
            .iter()
            .map(|op| match op {
                Op::Block { .. } => Some(Kind::Block),
                Op::Loop { .. } => Some(Kind::Loop),
                Op::If { .. } => Some(Kind::If),
                _ => None,
            })
            .collect();
        let mut edge_charged = vec![false; n];
        // Open frames: (op index, kind, label arity).
        let mut frames: Vec<(usize, Kind, usize)> = Vec::new();
        // Open loops that are still eligible are marked in `fused` until disqualified.
        let mut acc = 0u64;
        let mut seg = 1usize;
        let innermost_loop = |frames: &[(usize, Kind, usize)]| {
            frames
                .iter()
                .rev()
                .find(|(_, k, _)| *k == Kind::Loop)
                .map(|(i, _, _)| *i)
        };
        // The frame a branch of relative depth `d` targets (`None`: the function's label).
        let target_frame = |frames: &[(usize, Kind, usize)], d: u32| {
            frames.len().checked_sub(d as usize + 1).map(|k| frames[k])
        };
        for (i, op) in ops.iter().enumerate() {
            pre.push(acc);
            let disqualifies = match op {
                Op::Loop { .. }
                | Op::Call { .. }
                | Op::CallIndirect { .. }
                | Op::ReturnCall { .. }
                | Op::ReturnCallIndirect { .. }
                | Op::BrTable { .. } => true,
                Op::BrIf { relative_depth } => {
                    let arity = target_frame(&frames, *relative_depth).map_or(results, |f| f.2);
                    arity > 0
                }
                _ => has_per_unit_cost(op),
            };
            if disqualifies {
                if let Some(l) = innermost_loop(&frames) {
                    fused[l] = false;
                }
            }
            match op {
                Op::Br { relative_depth } | Op::BrIf { relative_depth } => {
                    let frame = target_frame(&frames, *relative_depth);
                    target[i] = frame.map(|f| f.0);
                    if let (Op::BrIf { .. }, Some((t, Kind::Loop, arity))) = (op, frame) {
                        if arity > 0 {
                            edge_charged[t] = false;
                        }
                    }
                }
                Op::BrTable { targets } => {
                    let depths = targets.targets().chain([Ok(targets.default())]);
                    for d in depths.flatten() {
                        if let Some((t, Kind::Loop, _)) = target_frame(&frames, d) {
                            edge_charged[t] = false;
                        }
                    }
                }
                _ => {}
            }
            match op {
                Op::Block { blockty } => {
                    frames.push((i, Kind::Block, label_arity(Kind::Block, *blockty, info)))
                }
                Op::If { blockty } => {
                    frames.push((i, Kind::If, label_arity(Kind::If, *blockty, info)))
                }
                Op::Loop { blockty } => {
                    frames.push((i, Kind::Loop, label_arity(Kind::Loop, *blockty, info)));
                    fused[i] = true;
                    edge_charged[i] = true;
                }
                Op::Else => {
                    if let Some(&(start, _, _)) = frames.last() {
                        else_of[start] = Some(i);
                    }
                }
                Op::End => {
                    if let Some((start, _, _)) = frames.pop() {
                        end_of[start] = i;
                    }
                }
                _ => {}
            }
            if ends_segment(op) && seg < seg_costs.len() {
                if !ends_reachability(op) {
                    acc += seg_costs[seg];
                }
                seg += 1;
            }
        }
        pre.push(acc);
        Plan {
            pre,
            end_of,
            else_of,
            target,
            fused,
            opens,
            edge_charged,
            counted: Vec::new(),
            bounded: Vec::new(),
        }
        .with_counted_loops(ops)
        .with_bounded_loops(ops)
    }

    /// Finds the bounded loops among the small fused ones that are not counted.
    fn with_bounded_loops(mut self, ops: &[Op<'_>]) -> Plan {
        self.bounded = vec![None; ops.len()];
        for h in 0..ops.len() {
            let e = self.end_of[h];
            if !(self.fused[h] && self.edge_charged[h])
                || self.counted[h].is_some()
                || !matches!(
                    ops[h],
                    Op::Loop {
                        blockty: BlockType::Empty
                    }
                )
                || e < h + 8
                || e - h > BOUNDED_MAX_OPS
            {
                continue;
            }
            let Some((bound, counter, step)) = count_up_tail(&ops[e - 7..e]) else {
                continue;
            };
            if step <= 0 || !step.unsigned_abs().is_power_of_two() || step > 1 << 30 {
                continue;
            }
            if bound == Bound::Local(counter) {
                continue;
            }
            let cost = self.charges(h, e);
            if cost == 0 || cost > 1 << 20 {
                continue;
            }
            // Straight-line code and exits: no frames, no other branches, and neither
            // local written before the tail.
            let simple = (h + 1..e - 7).all(|j| match &ops[j] {
                Op::BrIf { .. } => !matches!(self.target[j], Some(t) if t >= h),
                Op::LocalSet { local_index } | Op::LocalTee { local_index } => {
                    *local_index != counter && bound != Bound::Local(*local_index)
                }
                op => straight_line(op),
            });
            if simple {
                self.bounded[h] = Some(Bounded {
                    counter,
                    bound,
                    shift: step.trailing_zeros(),
                    cost,
                });
            }
        }
        self
    }

    /// Finds the counted loops among the fused ones.
    fn with_counted_loops(mut self, ops: &[Op<'_>]) -> Plan {
        self.counted = vec![None; ops.len()];
        for h in 0..ops.len() {
            if !(self.fused[h] && self.edge_charged[h]) {
                continue;
            }
            if !matches!(
                ops[h],
                Op::Loop {
                    blockty: BlockType::Empty
                }
            ) {
                continue;
            }
            let e = self.end_of[h];
            let cost = self.charges(h, h + 1);
            // One segment (nothing charged after the header), a cost whose products stay
            // far from overflow, and room for the five-instruction tail.
            if e < h + 6 || self.charges(h + 1, e) != 0 || cost == 0 || cost > 1 << 20 {
                continue;
            }
            let tail = &ops[e - 5..e];
            let (k, step) = match tail {
                [Op::LocalGet { local_index: k }, Op::I32Const { value }, Op::I32Add, Op::LocalTee { local_index: t }, Op::BrIf { relative_depth: 0 }]
                    if k == t && *value < 0 =>
                {
                    (*k, value.unsigned_abs())
                }
                _ => continue,
            };
            if !step.is_power_of_two() || step > 1 << 30 {
                continue;
            }
            let writes_k = ops[h + 1..e - 2].iter().any(|op| {
                matches!(op, Op::LocalSet { local_index } | Op::LocalTee { local_index }
                    if *local_index == k)
            });
            // No other way out: every branch but the last stays inside the body.
            let leaves = (h + 1..e - 1).any(|i| match ops[i] {
                Op::Br { .. } | Op::BrIf { .. } => !matches!(self.target[i], Some(t) if t > h),
                Op::Return => true,
                _ => false,
            });
            if writes_k || leaves {
                continue;
            }
            let shift = step.trailing_zeros();
            self.counted[h] = Some(Counted {
                local: k,
                shift,
                cost,
                unroll: unroll_factor(&ops[h + 1..e - 5], shift),
            });
        }
        self
    }

    /// What each iteration of the loop at op `l` pays, and the counter value below which
    /// its check traps: the header segment against 0; for a fused loop the whole body,
    /// against `-(body - header)`, so that it traps exactly when charging the header alone
    /// would overdraw the counter.
    pub(crate) fn loop_charge(&self, l: usize) -> (u64, i64) {
        let header = self.charges(l, l + 1);
        if self.fused[l] {
            let body = self.charges(l, self.end_of[l]);
            (body, -((body - header) as i64))
        } else {
            (header, 0)
        }
    }

    /// The bounded loop at op `i`, if it is one.
    pub(crate) fn bounded(&self, i: usize) -> Option<Bounded> {
        self.bounded[i]
    }

    /// The counted loop at op `i`, if it is one.
    pub(crate) fn counted(&self, i: usize) -> Option<Counted> {
        self.counted[i]
    }

    /// Whether the loop at op `i` is charged on its entry and back edges instead of at its
    /// header.
    pub(crate) fn is_edge_charged(&self, i: usize) -> bool {
        self.edge_charged[i]
    }

    /// The op index of the `loop` that the branch at op `i` goes back to, if it does.
    pub(crate) fn back_edge_of(&self, i: usize) -> Option<usize> {
        self.target[i].filter(|&t| self.opens[t] == Some(Kind::Loop))
    }

    /// Whether op `i` is an `if` without an `else` (its false edge skips the `then` arm).
    pub(crate) fn is_if_without_else(&self, i: usize) -> bool {
        self.opens[i] == Some(Kind::If) && self.else_of[i].is_none()
    }

    /// Whether the loop at op `i` is fused.
    pub(crate) fn is_fused(&self, i: usize) -> bool {
        self.fused[i]
    }

    /// The matching `end` of the frame opened at op `i`.
    pub(crate) fn end_of(&self, i: usize) -> usize {
        self.end_of[i]
    }

    /// The charges at boundaries `from..to`.
    pub(crate) fn charges(&self, from: usize, to: usize) -> u64 {
        self.pre[to] - self.pre[from]
    }

    /// What a branch at op `i` inside the fused loop `(head, end)` skips: the charges from
    /// `i` to the end of its target when that is a `block`/`if` inside the loop, else
    /// (the loop itself, or out of it) to the loop's end.
    pub(crate) fn branch_refund(&self, i: usize, head: usize, end: usize) -> u64 {
        let to = match self.target[i] {
            Some(t) if t > head => self.end_of[t],
            _ => end,
        };
        self.charges(i, to)
    }
}
