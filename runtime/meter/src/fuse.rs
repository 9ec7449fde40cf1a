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
    /// Whether op `i` is an `if`.
    is_if: Vec<bool>,
    /// For `loop` ops: whether every branch back to the loop is a `br`, or a `br_if` with
    /// no values, so that the header's charge can move onto the entry and back edges.
    edge_charged: Vec<bool>,
    /// Whether op `i` is a `loop`.
    is_loop: Vec<bool>,
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
        let is_if = ops.iter().map(|op| matches!(op, Op::If { .. })).collect();
        let is_loop = ops.iter().map(|op| matches!(op, Op::Loop { .. })).collect();
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
                    let d = *relative_depth as usize;
                    let arity = if d < frames.len() {
                        frames[frames.len() - 1 - d].2
                    } else {
                        results
                    };
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
                    let d = *relative_depth as usize;
                    target[i] = (d < frames.len()).then(|| frames[frames.len() - 1 - d].0);
                    if let (Op::BrIf { .. }, Some(&(t, Kind::Loop, arity))) =
                        (op, frames.len().checked_sub(d + 1).map(|k| &frames[k]))
                    {
                        if arity > 0 {
                            edge_charged[t] = false;
                        }
                    }
                }
                Op::BrTable { targets } => {
                    let depths = targets.targets().chain([Ok(targets.default())]);
                    for d in depths.flatten() {
                        if let Some(&(t, Kind::Loop, _)) =
                            frames.len().checked_sub(d as usize + 1).map(|k| &frames[k])
                        {
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
            is_if,
            edge_charged,
            is_loop,
        }
    }

    /// Whether the loop at op `i` is charged on its entry and back edges instead of at its
    /// header.
    pub(crate) fn is_edge_charged(&self, i: usize) -> bool {
        self.edge_charged[i]
    }

    /// The op index of the `loop` that the branch at op `i` goes back to, if it does.
    pub(crate) fn back_edge_of(&self, i: usize) -> Option<usize> {
        self.target[i].filter(|&t| self.is_loop[t])
    }

    /// Whether op `i` is an `if`.
    pub(crate) fn is_if(&self, i: usize) -> bool {
        self.is_if[i]
    }

    /// Whether the loop at op `i` is fused.
    pub(crate) fn is_fused(&self, i: usize) -> bool {
        self.fused[i]
    }

    /// The matching `end` of the frame opened at op `i`.
    pub(crate) fn end_of(&self, i: usize) -> usize {
        self.end_of[i]
    }

    /// The `else` of the `if` at op `i`.
    pub(crate) fn else_of(&self, i: usize) -> Option<usize> {
        self.else_of[i]
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
