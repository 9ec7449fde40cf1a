//! Function-body rewrite.
//!
//! The output of one function body:
//! ```text
//! func (params) (results) (local original…) (local $fuel i64) (local temporaries…)
//!   $fuel = global.fuel - (1 + cost of the first segment)     ;; entry charge
//!   if $fuel < 0 { global.fuel = $fuel; global.status = 1; unreachable }
//!   if global.depth >= limit { global.fuel = $fuel; global.status = 2; unreachable }
//!   global.depth += 1                                          ;; recursive functions only
//!   block (result results)       ;; the function's label: `return` becomes `br` to it
//!     original body, with charges at segment starts, loop charges and checks on loop
//!     entry and back edges (fused and counted loops: see `fuse.rs`), flush/reload around
//!     calls to functions that use the global, NaN canonicalisation at observation points,
//!     short `memory.copy` inline
//!   end
//!   global.fuel = $fuel; global.depth -= 1
//! end
//! ```
//! A function reached only by direct calls (`ModuleInfo::fuel_passing_type`) instead
//! takes `$fuel` as an extra last parameter (its declared locals move up by one) and
//! returns it as an extra last result; its callers pass and take it back in their own
//! `$fuel` local, with no global traffic.

use std::collections::HashMap;

use wasm_encoder::reencode::{Reencode, RoundtripReencoder};
use wasm_encoder::{BlockType, Encode, Function, Ieee32, Ieee64, Instruction as I, MemArg};
use wasmparser::{FunctionBody, Operator as Op, ValType};

use crate::cost::{
    ends_reachability, ends_segment, has_per_unit_cost, operator_cost, FUNCTION_ENTRY_COST,
};
use crate::fuse::{Bound, Bounded, Counted, Plan};
use crate::module::{val_type, ModuleInfo};
use crate::unroll;
use crate::{MeterConfig, MeterError, NanForm, NanMode, Stats, Status};

const CANON_F32: u32 = 0x7fc0_0000;
const CANON_F64: u64 = 0x7ff8_0000_0000_0000;
const CANON_F32X4: u128 = 0x7fc00000_7fc00000_7fc00000_7fc00000;
const CANON_F64X2: u128 = 0x7ff8000000000000_7ff8000000000000;

/// Slot number of the temporaries used by one canonicalisation (spill slots count from 0).
const CANON_SLOT: u32 = u32::MAX;
/// A load or store instruction, given its memory argument.
type MemOp = fn(MemArg) -> I<'static>;

/// First slot of the temporaries of an inline `memory.copy` (six slots).
const COPY_SLOT: u32 = u32::MAX - 16;
/// Loops of at most this many operators check at their header what their edges charged;
/// larger ones check on each back edge, after a branch-free `select` of the charge.
const SMALL_LOOP: usize = 64;
/// Slot of the temporaries of a bounded loop's prepaid copy (`Emitter::bounded_copy`).
const BOUND_SLOT: u32 = u32::MAX - 2;
/// Slot of the temporary holding a `br_if` condition while the counter is adjusted.
const COND_SLOT: u32 = u32::MAX - 1;
/// Slot of the temporary holding what a refill moves from the bank (`MeterConfig::interrupt`).
const REFILL_SLOT: u32 = u32::MAX - 3;

/// Lane shape of a float vector.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Lanes {
    F32x4,
    F64x2,
}

struct Emitter<'m> {
    buf: Vec<u8>,
    info: &'m ModuleInfo,
    cfg: &'m MeterConfig,
    /// Index of the first local added by the rewrite.
    next_local: u32,
    extra_locals: Vec<wasm_encoder::ValType>,
    temps: HashMap<(ValType, u32), u32>,
    fuel: u32,
    stats: &'m mut Stats,
}

impl Emitter<'_> {
    fn ins(&mut self, i: I<'_>) {
        i.encode(&mut self.buf);
    }

    fn new_local(&mut self, ty: ValType) -> u32 {
        let index = self.next_local;
        self.next_local += 1;
        self.extra_locals.push(val_type(ty));
        index
    }

    /// A temporary local of type `ty`; the same `(ty, slot)` gives the same local.
    fn temp(&mut self, ty: ValType, slot: u32) -> u32 {
        if let Some(&index) = self.temps.get(&(ty, slot)) {
            return index;
        }
        let index = self.new_local(ty);
        self.temps.insert((ty, slot), index);
        index
    }

    fn nan(&self) -> bool {
        self.cfg.nan == NanMode::ObservationPoints
    }

    /// Writes the local counter back to the global.
    fn flush(&mut self) {
        self.ins(I::LocalGet(self.fuel));
        self.ins(I::GlobalSet(self.info.fuel_global));
    }

    /// Reloads the local counter from the global (after a call).
    fn reload(&mut self) {
        self.ins(I::GlobalGet(self.info.fuel_global));
        self.ins(I::LocalSet(self.fuel));
    }

    /// `if cond { flush; status = code; unreachable }`, with `cond` (i32) on the stack.
    fn trap_if(&mut self, status: Status) {
        self.ins(I::If(BlockType::Empty));
        self.trap(status);
        self.ins(I::End);
    }

    /// `flush; status = code; unreachable`.
    fn trap(&mut self, status: Status) {
        self.flush();
        self.ins(I::I32Const(status as i32));
        self.ins(I::GlobalSet(self.info.status_global));
        self.ins(I::Unreachable);
    }

    /// `if $fuel < threshold { slow path }`, with the comparison's result (i32) on the
    /// stack. Without [`MeterConfig::interrupt`] the slow path is `fuel -= trap_charge`
    /// and an out-of-fuel trap. With it, the counter holds at most a slice of the budget
    /// and the rest waits in the bank global, so this path runs at least once per slice:
    ///
    /// ```text
    /// loop
    ///   if interrupt memory[0] != 0 { flush; status = interrupted; unreachable }
    ///   if bank == 0 { fuel -= trap_charge; flush; status = out of fuel; unreachable }
    ///   take = min(bank, SLICE); bank -= take; fuel += take
    ///   br_if 0 (fuel < threshold)
    /// end
    /// ```
    ///
    /// A check then traps exactly when `fuel + bank < threshold`, which is what it did
    /// with the whole budget in the counter: verdicts and counts do not change, and the
    /// fast path (the comparison) is the same instructions. The slow path makes no call,
    /// so it clobbers no register.
    fn fuel_below(&mut self, threshold: i64, trap_charge: u64) {
        self.ins(I::If(BlockType::Empty));
        let (Some(flag), Some(bank)) = (self.info.interrupt_memory, self.info.bank_global) else {
            if trap_charge > 0 {
                self.counter_arith(trap_charge as i64, I::I64Sub);
            }
            self.trap(Status::OutOfFuel);
            self.ins(I::End);
            return;
        };
        self.ins(I::Loop(BlockType::Empty));
        self.ins(I::I32Const(0));
        self.ins(I::I32Load8U(MemArg {
            offset: 0,
            align: 0,
            memory_index: flag,
        }));
        self.ins(I::If(BlockType::Empty));
        self.trap(Status::Interrupted);
        self.ins(I::End);
        self.ins(I::GlobalGet(bank));
        self.ins(I::I64Eqz);
        self.ins(I::If(BlockType::Empty));
        if trap_charge > 0 {
            self.counter_arith(trap_charge as i64, I::I64Sub);
        }
        self.trap(Status::OutOfFuel);
        self.ins(I::End);
        let take = self.temp(ValType::I64, REFILL_SLOT);
        self.ins(I::GlobalGet(bank));
        self.ins(I::I64Const(crate::INTERRUPT_SLICE));
        self.ins(I::GlobalGet(bank));
        self.ins(I::I64Const(crate::INTERRUPT_SLICE));
        self.ins(I::I64LtU);
        self.ins(I::Select);
        self.ins(I::LocalTee(take));
        self.ins(I::LocalGet(self.fuel));
        self.ins(I::I64Add);
        self.ins(I::LocalSet(self.fuel));
        self.ins(I::GlobalGet(bank));
        self.ins(I::LocalGet(take));
        self.ins(I::I64Sub);
        self.ins(I::GlobalSet(bank));
        self.ins(I::LocalGet(self.fuel));
        self.ins(I::I64Const(threshold));
        self.ins(I::I64LtS);
        self.ins(I::BrIf(0));
        self.ins(I::End);
        self.ins(I::End);
    }

    /// Out-of-fuel check of the counter value on the stack (which is `$fuel`).
    fn check_fuel_on_stack(&mut self) {
        self.ins(I::I64Const(0));
        self.ins(I::I64LtS);
        self.fuel_below(0, 0);
        self.stats.checks += 1;
    }

    /// `$fuel = $fuel <op> value`: the one shape every charge, refund and adjustment
    /// of the counter local takes.
    fn counter_arith(&mut self, value: i64, op: I<'static>) {
        self.ins(I::LocalGet(self.fuel));
        self.ins(I::I64Const(value));
        self.ins(op);
        self.ins(I::LocalSet(self.fuel));
    }

    /// Subtracts a static cost from the counter (checks come at loop edges, function
    /// entries and bulk operations: [`Emitter::charge_with_threshold`]).
    fn charge(&mut self, cost: u64) {
        if cost == 0 {
            return;
        }
        self.counter_arith(cost as i64, I::I64Sub);
        self.stats.charges += 1;
    }

    /// Subtracts `cost` from the counter, then traps if it is below `threshold`.
    ///
    /// Emitted as a comparison of the counter before the charge against `threshold +
    /// cost`, with the subtraction after it (and again on the trap path, so that the
    /// counter flushed there is the charged one). Comparing the charged value instead made
    /// Cranelift compute `counter - cost` twice in loops, once for the comparison and once
    /// for the value carried round the loop (it rematerialises an add of a constant in
    /// every block that uses it): five instructions per iteration instead of three. The
    /// two comparisons agree because the counter never comes near `i64::MIN`: budgets are
    /// at most `i64::MAX`, and every charge is followed by a check at a threshold above
    /// `-2^53`.
    fn charge_with_threshold(&mut self, cost: u64, threshold: i64) {
        self.ins(I::LocalGet(self.fuel));
        self.ins(I::I64Const(threshold + cost as i64));
        self.ins(I::I64LtS);
        self.fuel_below(threshold + cost as i64, cost);
        self.charge(cost);
        self.stats.checks += 1;
    }

    /// The charge and check of the loop at op `l` (see [`Plan::loop_charge`]).
    fn loop_charge(&mut self, plan: &Plan, l: usize) {
        let (charge, threshold) = plan.loop_charge(l);
        self.charge_with_threshold(charge, threshold);
    }

    /// Charges a counted loop (`fuse::Counted`) for every iteration it will run, from its
    /// counter's value on entry (in local `counter`), and checks; a counter that never
    /// reaches 0 is out of fuel at once (the loop could only end by running out).
    fn charge_counted(&mut self, counted: Counted, counter: u32) {
        if counted.shift > 0 {
            self.ins(I::LocalGet(counter));
            self.ins(I::I32Const((1i32 << counted.shift) - 1));
            self.ins(I::I32And);
            self.trap_if(Status::OutOfFuel);
            self.stats.checks += 1;
        }
        let total = self.temp(ValType::I64, CANON_SLOT);
        self.iterations_cost(counter, counted.shift, counted.cost);
        self.ins(I::LocalSet(total));
        self.ins(I::LocalGet(self.fuel));
        self.ins(I::LocalGet(total));
        self.ins(I::I64Sub);
        self.ins(I::LocalTee(self.fuel));
        self.stats.charges += 1;
        self.check_fuel_on_stack();
        self.stats.counted_loops += 1;
    }

    /// Emits an operator that the rewrite changes only by renumbering locals (`local`) and
    /// canonicalising NaNs around it (`next`: how the following operator reads a vector;
    /// `was_clean`: the float type of a clean value on top of the stack, if any). Returns
    /// the float type of the clean value it leaves on top, if any.
    fn plain_op<'a>(
        &mut self,
        re: &mut RoundtripReencoder,
        op: &Op<'a>,
        next: Option<Lanes>,
        was_clean: Option<ValType>,
        local: &dyn Fn(u32) -> u32,
    ) -> Result<Option<ValType>, MeterError> {
        match op {
            Op::LocalGet { local_index } => self.ins(I::LocalGet(local(*local_index))),
            Op::LocalSet { local_index } => self.ins(I::LocalSet(local(*local_index))),
            Op::LocalTee { local_index } => self.ins(I::LocalTee(local(*local_index))),
            _ => {
                if self.nan() {
                    if let Some(ty) = scalar_observation(op, self.info) {
                        if was_clean != Some(ty) {
                            self.canon_scalar(ty);
                        }
                    }
                }
                self.ins(reencode(re, op.clone())?);
                if self.nan() {
                    if let Some(lanes) = vector_nan_producer(op) {
                        if next != Some(lanes) {
                            self.canon_vector(lanes);
                        }
                    }
                }
                return Ok(clean_producer(op));
            }
        }
        Ok(None)
    }

    /// Unrolls the counted loop just emitted from `buf[at..]` (`loop`, body, the tail from
    /// `tail_at`, `end`; see `fuse::unroll_factor`) into `factor` copies per iteration:
    ///
    /// ```text
    /// block $done
    ///   block $main
    ///     loop $single                   ;; k / step mod factor single iterations
    ///       k & (factor * step - 1) == 0 ;; and no folded pointer can wrap:
    ///       br_if $main                  ;;   p + (k / step) * c < 2^32
    ///       body; tail                   ;; the tail's br_if goes round $single
    ///       br $done                     ;; k reached 0 here
    ///     end
    ///   end
    ///   loop                             ;; factor iterations per round
    ///     (body; k -= step) x (factor - 1)
    ///     body; tail
    ///   end
    /// end
    /// ```
    ///
    /// The copies run the operators of the original iterations in the same order (the
    /// counter included, for bodies that read it), except that the increments of folded
    /// pointers (`unroll.rs`) move into the memory operations' offsets and the last copy
    /// advances them a whole round. `body` and `nexts` are the body's operators and their
    /// successors' vector reads, as the emission of `buf[at..]` saw them.
    #[allow(clippy::too_many_arguments)]
    fn unroll_counted(
        &mut self,
        re: &mut RoundtripReencoder,
        (at, tail_at): (usize, usize),
        counted: Counted,
        body: &[Op<'_>],
        nexts: &[Option<Lanes>],
        local: &dyn Fn(u32) -> u32,
    ) -> Result<(), MeterError> {
        let tail = self.buf[tail_at..self.buf.len() - 1].to_vec();
        let single = self.buf[at + 2..tail_at].to_vec();
        debug_assert_eq!(self.buf[at..at + 2], [0x03, 0x40], "an empty-type loop");
        debug_assert_eq!(self.buf.last(), Some(&0x0b), "the loop's end");
        self.buf.truncate(at);
        let factor = counted.unroll;
        let folding = unroll::fold(body, counted.local, factor);
        let counter = local(counted.local);
        let step = 1i64 << counted.shift;
        let round = step * i64::from(factor);
        self.ins(I::Block(BlockType::Empty));
        self.ins(I::Block(BlockType::Empty));
        self.ins(I::Loop(BlockType::Empty));
        self.ins(I::LocalGet(counter));
        self.ins(I::I32Const((round - 1) as i32));
        self.ins(I::I32And);
        self.ins(I::I32Eqz);
        for p in &folding.pointers {
            // p + iterations left × c < 2^32, iterations left = (k or 2^32 for 0) / step.
            self.ins(I::LocalGet(local(p.local)));
            self.ins(I::I64ExtendI32U);
            self.iterations_cost(counter, counted.shift, u64::from(p.step));
            self.ins(I::I64Add);
            self.ins(I::I64Const(1 << 32));
            self.ins(I::I64LtU);
            self.ins(I::I32And);
        }
        self.ins(I::BrIf(1));
        self.buf.extend_from_slice(&single);
        self.buf.extend_from_slice(&tail);
        self.ins(I::Br(2));
        self.ins(I::End);
        self.ins(I::End);
        self.ins(I::Loop(BlockType::Empty));
        for copy in 0..factor {
            let last = copy + 1 == factor;
            let mut clean = None;
            for (b, op) in body.iter().enumerate() {
                let was_clean = clean.take();
                if let Some(p) = folding.increment_at(b).filter(|_| last) {
                    self.ins(I::LocalGet(local(p.local)));
                    self.ins(I::I32Const((p.step * factor) as i32));
                    self.ins(I::I32Add);
                    self.ins(I::LocalSet(local(p.local)));
                }
                if folding.in_increment(b) {
                    continue; // as emitted in the original: nothing clean after it
                }
                let delta = folding.delta(b, copy, factor);
                let op = if delta > 0 {
                    unroll::with_offset(op, delta)
                } else {
                    op.clone()
                };
                clean = self.plain_op(re, &op, nexts[b], was_clean, local)?;
            }
            if last {
                self.buf.extend_from_slice(&tail);
            } else {
                self.ins(I::LocalGet(counter));
                self.ins(I::I32Const(-step as i32));
                self.ins(I::I32Add);
                self.ins(I::LocalSet(counter));
            }
        }
        self.ins(I::End);
        self.ins(I::End);
        self.stats.unrolled_loops += 1;
        self.stats.folded_pointers += folding.pointers.len() as u32;
        Ok(())
    }

    /// Adds `delta` to the counter.
    fn adjust(&mut self, delta: i64) {
        if delta == 0 {
            return;
        }
        self.counter_arith(delta, I::I64Add);
        self.stats.charges += 1;
    }

    /// Traps if the counter is below `threshold` (a check at a loop header of what the
    /// loop's edges charged).
    fn check_threshold(&mut self, threshold: i64) {
        self.ins(I::LocalGet(self.fuel));
        self.ins(I::I64Const(threshold));
        self.ins(I::I64LtS);
        self.fuel_below(threshold, 0);
        self.stats.checks += 1;
    }

    /// Pushes `(distance / 2^shift) × cost` (i64) for the i32 `distance` in local
    /// `distance`, a distance of 0 counting as 2^32 (a counter that wraps round): the cost
    /// of the iterations a counter has left, or how far a pointer moves in them.
    fn iterations_cost(&mut self, distance: u32, shift: u32, cost: u64) {
        self.ins(I::I64Const(1 << 32));
        self.ins(I::LocalGet(distance));
        self.ins(I::I64ExtendI32U);
        self.ins(I::LocalGet(distance));
        self.ins(I::I32Eqz);
        self.ins(I::Select);
        self.ins(I::I64Const(i64::from(shift)));
        self.ins(I::I64ShrU);
        self.ins(I::I64Const(cost as i64));
        self.ins(I::I64Mul);
    }

    /// Emits the prepaid copy of a bounded loop (`fuse::Bounded`) and opens the two
    /// blocks around it; the plain fused loop follows (its exits one label further out)
    /// and closes the outer block:
    ///
    /// ```text
    /// block $done
    ///   block $plain
    ///     d = n - i; total = (d or 2^32 for 0) / step × cost
    ///     br_if $plain (fuel < total | d % step != 0)
    ///     fuel -= total
    ///     loop                       ;; no charge, no check
    ///       body, each exit: if (fuel += (n - i) / step × cost - cost + skipped; br) end
    ///       tail
    ///     end
    ///     br $done
    ///   end
    ///   <the fused loop>
    /// end
    /// ```
    ///
    /// When the counter covers every iteration the loop can run, the plain scheme cannot
    /// run out inside it, so the copy needs no check; each way out leaves the counter at
    /// exactly what the iterations run cost. `body` is the loop's operators after `loop`
    /// (the tail included), `nexts` their successors' vector reads and `refunds[j]` what
    /// an exit at `body[j]` skips of its own iteration.
    #[allow(clippy::too_many_arguments)]
    fn bounded_copy(
        &mut self,
        re: &mut RoundtripReencoder,
        bounded: Bounded,
        body: &[Op<'_>],
        nexts: &[Option<Lanes>],
        refunds: &[u64],
        local: &dyn Fn(u32) -> u32,
    ) -> Result<(), MeterError> {
        let distance = self.temp(ValType::I32, BOUND_SLOT);
        let total = self.temp(ValType::I64, BOUND_SLOT);
        let counter = local(bounded.counter);
        let set_distance = |e: &mut Self| {
            match bounded.bound {
                Bound::Local(n) => e.ins(I::LocalGet(local(n))),
                Bound::Const(v) => e.ins(I::I32Const(v)),
            }
            e.ins(I::LocalGet(counter));
            e.ins(I::I32Sub);
            e.ins(I::LocalSet(distance));
        };
        self.ins(I::Block(BlockType::Empty));
        self.ins(I::Block(BlockType::Empty));
        set_distance(self);
        self.iterations_cost(distance, bounded.shift, bounded.cost);
        self.ins(I::LocalSet(total));
        self.ins(I::LocalGet(self.fuel));
        self.ins(I::LocalGet(total));
        self.ins(I::I64LtS);
        self.ins(I::LocalGet(distance));
        self.ins(I::I32Const((1 << bounded.shift) - 1));
        self.ins(I::I32And);
        self.ins(I::I32Or);
        self.ins(I::BrIf(0));
        self.ins(I::LocalGet(self.fuel));
        self.ins(I::LocalGet(total));
        self.ins(I::I64Sub);
        self.ins(I::LocalSet(self.fuel));
        self.stats.charges += 1;
        self.ins(I::Loop(BlockType::Empty));
        let mut clean = None;
        for (j, op) in body.iter().enumerate() {
            let was_clean = clean.take();
            match op {
                Op::BrIf { relative_depth } if j + 1 < body.len() => {
                    // An exit: the iterations not run, and the rest of this one, back.
                    self.ins(I::If(BlockType::Empty));
                    set_distance(self);
                    self.ins(I::LocalGet(self.fuel));
                    self.iterations_cost(distance, bounded.shift, bounded.cost);
                    self.ins(I::I64Add);
                    self.ins(I::I64Const(refunds[j] as i64 - bounded.cost as i64));
                    self.ins(I::I64Add);
                    self.ins(I::LocalSet(self.fuel));
                    self.stats.refunds += 1;
                    // Out through the `if`, $plain and $done.
                    self.ins(I::Br(relative_depth + 3));
                    self.ins(I::End);
                }
                Op::BrIf { .. } => self.ins(I::BrIf(0)),
                _ => clean = self.plain_op(re, op, nexts[j], was_clean, local)?,
            }
        }
        self.ins(I::End);
        self.ins(I::Br(1));
        self.ins(I::End);
        self.stats.bounded_loops += 1;
        Ok(())
    }

    /// Gives back `cost` charged ahead by a fused loop (on a branch that skips it).
    fn refund(&mut self, cost: u64) {
        if cost == 0 {
            return;
        }
        self.counter_arith(cost as i64, I::I64Add);
        self.stats.refunds += 1;
    }

    /// Charges 1 per unit of the i32 on top of the stack (left in place), then checks.
    fn charge_per_unit(&mut self) {
        let units = self.temp(ValType::I32, CANON_SLOT);
        self.ins(I::LocalTee(units));
        self.ins(I::LocalGet(self.fuel));
        self.ins(I::LocalGet(units));
        self.ins(I::I64ExtendI32U);
        self.ins(I::I64Sub);
        self.ins(I::LocalTee(self.fuel));
        self.check_fuel_on_stack();
    }

    /// `memory.copy` of `[dst, src, len]` on the stack, inline for 1 to 16 bytes (32 with
    /// SIMD): every byte is loaded before any is stored, so overlapping ranges copy like
    /// `memmove`, and a load of the destination's last byte comes first, so a range out of
    /// bounds traps before anything is written, as `memory.copy` does. Other lengths, and
    /// addresses from 2^31 up (where `address + len` could wrap), go to the instruction
    /// itself. wasmtime calls into the host for every `memory.copy`; word-sized copies
    /// (a Rust `Vec` clone of a short key) were 5% of wordcount's time.
    fn inline_copy(&mut self, dst_mem: u32, src_mem: u32) {
        let (len, src, dst) = (
            self.temp(ValType::I32, COPY_SLOT),
            self.temp(ValType::I32, COPY_SLOT + 1),
            self.temp(ValType::I32, COPY_SLOT + 2),
        );
        self.ins(I::LocalSet(len));
        self.ins(I::LocalSet(src));
        self.ins(I::LocalSet(dst));
        let max: i32 = if self.cfg.nan_form == NanForm::Simd {
            32
        } else {
            16
        };
        self.ins(I::Block(BlockType::Empty)); // done
        self.ins(I::Block(BlockType::Empty)); // slow
        self.ins(I::LocalGet(len));
        self.ins(I::I32Const(1));
        self.ins(I::I32Sub);
        self.ins(I::I32Const(max - 1));
        self.ins(I::I32GtU);
        self.ins(I::BrIf(0));
        self.ins(I::LocalGet(dst));
        self.ins(I::LocalGet(src));
        self.ins(I::I32Or);
        self.ins(I::I32Const(0));
        self.ins(I::I32LtS);
        self.ins(I::BrIf(0));
        // Probe the destination's last byte with a load: out of bounds, this traps before
        // anything is written. (A store that straddles the end of memory may write its
        // in-bounds bytes before it faults on aarch64: the cross-architecture golden
        // caught that when the last piece's store was the probe.)
        self.ins(I::LocalGet(dst));
        self.ins(I::LocalGet(len));
        self.ins(I::I32Add);
        self.ins(I::I32Const(1));
        self.ins(I::I32Sub);
        self.ins(I::I32Load8U(MemArg {
            offset: 0,
            align: 0,
            memory_index: dst_mem,
        }));
        self.ins(I::Drop);
        // Pieces by size: (smallest length, width in bytes, value type).
        let mut sizes = vec![(8, 8, ValType::I64), (4, 4, ValType::I32)];
        if max == 32 {
            sizes.insert(0, (17, 16, ValType::V128));
        }
        for &(from, width, ty) in &sizes {
            self.ins(I::LocalGet(len));
            self.ins(I::I32Const(from));
            self.ins(I::I32GeU);
            self.ins(I::If(BlockType::Empty));
            self.copy_pieces(dst_mem, src_mem, dst, src, len, width, ty);
            self.ins(I::Else);
        }
        // 1 to 3 bytes: at 0, len / 2 and len - 1.
        self.copy_pieces(dst_mem, src_mem, dst, src, len, 1, ValType::I32);
        for _ in &sizes {
            self.ins(I::End);
        }
        self.ins(I::Br(1)); // done
        self.ins(I::End); // slow
        self.ins(I::LocalGet(dst));
        self.ins(I::LocalGet(src));
        self.ins(I::LocalGet(len));
        self.ins(I::MemoryCopy { src_mem, dst_mem });
        self.ins(I::End); // done
        self.stats.inline_copies += 1;
    }

    /// Copies `len` bytes (`width <= len <= 2 width`) as two pieces of `width` bytes at
    /// the start and the end (three single bytes for `width` 1), all loads first.
    #[allow(clippy::too_many_arguments)]
    fn copy_pieces(
        &mut self,
        dst_mem: u32,
        src_mem: u32,
        dst: u32,
        src: u32,
        len: u32,
        width: i32,
        ty: ValType,
    ) {
        let (load, store): (MemOp, MemOp) = match width {
            16 => (I::V128Load, I::V128Store),
            8 => (I::I64Load, I::I64Store),
            4 => (I::I32Load, I::I32Store),
            _ => (I::I32Load8U, I::I32Store8),
        };
        let arg = |memory_index| MemArg {
            offset: 0,
            align: 0,
            memory_index,
        };
        // Offsets of the pieces from the start of the range; the last one ends at `len`.
        let middle = width == 1;
        let pieces: Vec<u32> = (0..if middle { 3 } else { 2 })
            .map(|k| self.temp(ty, COPY_SLOT + 3 + k))
            .collect();
        // Address of piece k in `base`: base, base + len / 2, base + len - width.
        let address = |e: &mut Self, base: u32, k: usize| {
            e.ins(I::LocalGet(base));
            let last = k + 1 == pieces.len();
            if last {
                e.ins(I::LocalGet(len));
                e.ins(I::I32Add);
                e.ins(I::I32Const(width));
                e.ins(I::I32Sub);
            } else if k == 1 {
                e.ins(I::LocalGet(len));
                e.ins(I::I32Const(1));
                e.ins(I::I32ShrU);
                e.ins(I::I32Add);
            }
        };
        for (k, &piece) in pieces.iter().enumerate() {
            address(self, src, k);
            self.ins(load(arg(src_mem)));
            self.ins(I::LocalSet(piece));
        }
        for (k, &piece) in pieces.iter().enumerate().rev() {
            address(self, dst, k);
            self.ins(I::LocalGet(piece));
            self.ins(store(arg(dst_mem)));
        }
    }

    /// Replaces a NaN f32/f64 on top of the stack by the canonical NaN.
    fn canon_scalar(&mut self, ty: ValType) {
        self.stats.nan_canonicalizations += 1;
        match self.cfg.nan_form {
            NanForm::Simd => {
                let v = self.temp(ValType::V128, CANON_SLOT);
                let (splat, canon, eq, extract) = match ty {
                    ValType::F32 => (
                        I::F32x4Splat,
                        CANON_F32X4,
                        I::F32x4Eq,
                        I::F32x4ExtractLane(0),
                    ),
                    _ => (
                        I::F64x2Splat,
                        CANON_F64X2,
                        I::F64x2Eq,
                        I::F64x2ExtractLane(0),
                    ),
                };
                self.ins(splat);
                self.ins(I::LocalTee(v));
                self.ins(I::V128Const(canon as i128));
                self.ins(I::LocalGet(v));
                self.ins(I::LocalGet(v));
                self.ins(eq);
                self.ins(I::V128Bitselect);
                self.ins(extract);
            }
            NanForm::Select => {
                let t = self.temp(ty, CANON_SLOT);
                self.ins(I::LocalTee(t));
                match ty {
                    ValType::F32 => self.ins(I::F32Const(Ieee32::new(CANON_F32))),
                    _ => self.ins(I::F64Const(Ieee64::new(CANON_F64))),
                }
                self.ins(I::LocalGet(t));
                self.ins(I::LocalGet(t));
                match ty {
                    ValType::F32 => self.ins(I::F32Eq),
                    _ => self.ins(I::F64Eq),
                }
                // select(x, canon, x == x): x unless x is NaN.
                self.ins(I::Select);
            }
        }
    }

    /// Replaces NaN lanes of the v128 on top of the stack by the canonical NaN.
    fn canon_vector(&mut self, lanes: Lanes) {
        self.stats.nan_canonicalizations += 1;
        let v = self.temp(ValType::V128, CANON_SLOT);
        let (canon, eq) = match lanes {
            Lanes::F32x4 => (CANON_F32X4, I::F32x4Eq),
            Lanes::F64x2 => (CANON_F64X2, I::F64x2Eq),
        };
        self.ins(I::LocalTee(v));
        self.ins(I::V128Const(canon as i128));
        self.ins(I::LocalGet(v));
        self.ins(I::LocalGet(v));
        self.ins(eq);
        self.ins(I::V128Bitselect);
    }

    /// Canonicalises every float among the top `tys.len()` stack values (`tys` from the
    /// bottom up), spilling them to temporaries when a float is not on top.
    fn canon_stack(&mut self, tys: &[ValType]) {
        let Some(first) = tys.iter().position(|t| is_float(*t)) else {
            return;
        };
        if first == tys.len() - 1 {
            self.canon_scalar(tys[first]);
            return;
        }
        let tail = &tys[first..];
        let mut slots = Vec::with_capacity(tail.len());
        let mut seen: HashMap<ValType, u32> = HashMap::new();
        for &ty in tail {
            let n = seen.entry(ty).or_insert(0);
            slots.push(self.temp(ty, *n));
            *n += 1;
        }
        for &slot in slots.iter().rev() {
            self.ins(I::LocalSet(slot));
        }
        for (&ty, &slot) in tail.iter().zip(&slots) {
            self.ins(I::LocalGet(slot));
            if is_float(ty) {
                self.canon_scalar(ty);
            }
        }
    }
}

fn is_float(t: ValType) -> bool {
    matches!(t, ValType::F32 | ValType::F64)
}

/// Float vector operations whose result lanes may be NaNs with machine-specific bits.
fn vector_nan_producer(op: &Op<'_>) -> Option<Lanes> {
    use Op::*;
    match op {
        F32x4Ceil | F32x4Floor | F32x4Trunc | F32x4Nearest | F32x4Sqrt | F32x4Add | F32x4Sub
        | F32x4Mul | F32x4Div | F32x4Min | F32x4Max | F32x4DemoteF64x2Zero | F32x4RelaxedMadd
        | F32x4RelaxedNmadd | F32x4RelaxedMin | F32x4RelaxedMax => Some(Lanes::F32x4),
        F64x2Ceil | F64x2Floor | F64x2Trunc | F64x2Nearest | F64x2Sqrt | F64x2Add | F64x2Sub
        | F64x2Mul | F64x2Div | F64x2Min | F64x2Max | F64x2PromoteLowF32x4 | F64x2RelaxedMadd
        | F64x2RelaxedNmadd | F64x2RelaxedMin | F64x2RelaxedMax => Some(Lanes::F64x2),
        _ => None,
    }
}

/// The lane shape in which `op` reads a float vector on top of the stack when the result
/// does not depend on the bits of a NaN lane: a float vector operation that turns any NaN
/// lane into a NaN lane (canonicalised after it, see [`vector_nan_producer`]) or a float
/// comparison (a NaN lane gives the same mask bits whatever its bits). A vector produced
/// by a float operation of this shape and consumed at once by `op` need not be
/// canonicalised: its non-NaN lanes are the same on every machine, and its NaN lanes
/// cannot show through. Read in another shape, a NaN's bits would be seen as numbers.
fn nan_blind_vector_input(op: &Op<'_>) -> Option<Lanes> {
    use Op::*;
    match op {
        F32x4Eq | F32x4Ne | F32x4Lt | F32x4Gt | F32x4Le | F32x4Ge | F64x2PromoteLowF32x4 => {
            Some(Lanes::F32x4)
        }
        F64x2Eq | F64x2Ne | F64x2Lt | F64x2Gt | F64x2Le | F64x2Ge | F32x4DemoteF64x2Zero => {
            Some(Lanes::F64x2)
        }
        _ => vector_nan_producer(op),
    }
}

/// The float type a scalar observation point looks at (the value on top of the stack).
fn scalar_observation(op: &Op<'_>, info: &ModuleInfo) -> Option<ValType> {
    use Op::*;
    match op {
        F32Store { .. }
        | I32ReinterpretF32
        | F32Copysign
        | F32x4Splat
        | F32x4ReplaceLane { .. } => Some(ValType::F32),
        F64Store { .. }
        | I64ReinterpretF64
        | F64Copysign
        | F64x2Splat
        | F64x2ReplaceLane { .. } => Some(ValType::F64),
        GlobalSet { global_index } => {
            let ty = info.global_types[*global_index as usize];
            (is_float(ty) && info.observable_globals.contains(global_index)).then_some(ty)
        }
        _ => None,
    }
}

/// The float type of a value whose bits are known not to come from arithmetic.
fn clean_producer(op: &Op<'_>) -> Option<ValType> {
    use Op::*;
    match op {
        F32Load { .. } | F32Const { .. } => Some(ValType::F32),
        F64Load { .. } | F64Const { .. } => Some(ValType::F64),
        _ => None,
    }
}

pub(crate) fn rewrite(
    body: &FunctionBody<'_>,
    func_index: u32,
    info: &ModuleInfo,
    cfg: &MeterConfig,
    stats: &mut Stats,
) -> Result<Function, MeterError> {
    let invalid = |e: wasmparser::BinaryReaderError| MeterError::Invalid(e.to_string());
    let sig = info.func_sig(func_index);
    let exported = info.exported_funcs.contains(&func_index);

    // A function that passes the counter in its last parameter (see
    // `ModuleInfo::fuel_passing_type`): its declared locals move up by one.
    let passes_fuel = info.passes_fuel(func_index).is_some();
    let num_params = sig.params.len() as u32;
    let mut locals = Vec::new();
    let mut next_local = num_params + u32::from(passes_fuel);
    for local in body.get_locals_reader().map_err(invalid)? {
        let (count, ty) = local.map_err(invalid)?;
        next_local = next_local
            .checked_add(count)
            .ok_or_else(|| MeterError::Invalid("too many locals".into()))?;
        locals.push((count, val_type(ty)));
    }

    let mut ops = Vec::new();
    let mut reader = body.get_operators_reader().map_err(invalid)?;
    while !reader.eof() {
        ops.push(reader.read().map_err(invalid)?);
    }

    // Pass 1: the static cost of every segment. Segment 0 starts at entry; segment k
    // starts right after the k-th segment-ending operator.
    let mut seg_costs = Vec::new();
    let mut acc = FUNCTION_ENTRY_COST;
    for op in &ops {
        acc += operator_cost(op);
        if ends_segment(op) {
            seg_costs.push(acc);
            acc = 0;
        }
    }

    let plan = Plan::new(&ops, &seg_costs, info, sig.results.len());

    let mut e = Emitter {
        buf: Vec::new(),
        info,
        cfg,
        next_local,
        extra_locals: Vec::new(),
        temps: HashMap::new(),
        fuel: 0,
        stats,
    };
    e.stats.functions += 1;
    if passes_fuel {
        e.fuel = num_params;
        e.stats.fuel_passing_functions += 1;
    } else {
        e.fuel = e.new_local(ValType::I64);
    }
    let local = |index: u32| {
        if passes_fuel && index >= num_params {
            index + 1
        } else {
            index
        }
    };

    // A leaf (no call instruction) without a loop does bounded work: it needs no entry
    // check (its caller's checks and the host's final look at the counter see any
    // overdraft). Only functions on a cycle of the call graph count depth (`depth.rs`).
    // Both are static properties of the module, so the verdicts stay deterministic.
    let leaf = !ops
        .iter()
        .any(|op| matches!(op, Op::Call { .. } | Op::CallIndirect { .. }));
    let has_loop = ops.iter().any(|op| matches!(op, Op::Loop { .. }));
    let count_depth = info.counts_depth(func_index);

    // Entry: charge and check fuel, then depth.
    if passes_fuel {
        e.ins(I::LocalGet(e.fuel));
    } else {
        e.ins(I::GlobalGet(info.fuel_global));
    }
    e.ins(I::I64Const(seg_costs[0] as i64));
    e.ins(I::I64Sub);
    e.stats.charges += 1;
    if leaf && !has_loop {
        e.ins(I::LocalSet(e.fuel));
    } else {
        e.ins(I::LocalTee(e.fuel));
        e.check_fuel_on_stack();
    }
    if count_depth {
        e.ins(I::GlobalGet(info.depth_global));
        e.ins(I::I32Const(info.depth_limit() as i32));
        e.ins(I::I32GeU);
        e.trap_if(Status::DepthExceeded);
        e.ins(I::GlobalGet(info.depth_global));
        e.ins(I::I32Const(1));
        e.ins(I::I32Add);
        e.ins(I::GlobalSet(info.depth_global));
    }
    let wrapper = match sig.results.as_slice() {
        [] => BlockType::Empty,
        [t] => BlockType::Result(val_type(*t)),
        many => BlockType::FunctionType(info.result_block_types[many]),
    };
    if let Some((entry, start, started)) = info.start_call {
        if entry == func_index {
            e.ins(I::GlobalGet(started));
            e.ins(I::I32Eqz);
            e.ins(I::If(BlockType::Empty));
            e.ins(I::I32Const(1));
            e.ins(I::GlobalSet(started));
            e.flush();
            e.ins(I::Call(start));
            e.reload();
            e.ins(I::End);
        }
    }
    e.ins(I::Block(wrapper));

    let mut seg = 1usize;
    let mut depth = 0u32; // control frames of the original body open inside the wrapper
    let mut clean: Option<ValType> = None;
    let mut re = RoundtripReencoder;
    let nexts: Vec<Option<Lanes>> = ops
        .iter()
        .skip(1)
        .map(nan_blind_vector_input)
        .chain([None])
        .collect();
    // The fused loop being emitted: (op index of its `loop`, of its `end`).
    let mut fused: Option<(usize, usize)> = None;
    // Op indices of the open frames of the original body.
    let mut open: Vec<usize> = Vec::new();
    // The bounded loop whose plain version is being emitted one block further in (after
    // its prepaid copy): (its `loop`, its `end`).
    let mut wrapped: Option<(usize, usize)> = None;
    // Small edge-charged loops check at their header what their entry and back edges
    // charged; the others check on the edges (a back edge of a large loop is a branch-free
    // `select`, see below).
    let header_checked = |l: usize| {
        plan.is_edge_charged(l) && plan.counted(l).is_none() && plan.end_of(l) - l <= SMALL_LOOP
    };
    // The counted loop being emitted for unrolling: (its `loop`, its `end`, where its
    // `loop` starts in the output, where its tail starts, its description).
    let mut unrolling: Option<(usize, usize, usize, usize, Counted)> = None;
    for (i, (op, &next)) in ops.iter().cloned().zip(&nexts).enumerate() {
        let was_clean = clean.take();
        let inside = matches!(fused, Some((head, end)) if head < i && i < end);
        // A branch out of a bounded loop's plain version passes the block around it (the
        // only branches in its body are exits and the back edge).
        let exits_wrapped = matches!(wrapped, Some((head, end)) if head < i && i < end)
            && plan.back_edge_of(i).is_none();
        if let Some((_, end, _, tail_at, _)) = &mut unrolling {
            if i + 5 == *end {
                *tail_at = e.buf.len();
            }
        }
        // What a branch at `i` pays on its taken edge: the refund of what it skips in a
        // fused loop, and the header charge of an edge-charged loop it goes back to.
        let refund = match fused {
            Some((head, end)) if inside => plan.branch_refund(i, head, end),
            _ => 0,
        };
        let back_to = plan.back_edge_of(i).filter(|&l| {
            plan.is_edge_charged(l)
                && plan.counted(l).is_none()
                && matches!(op, Op::Br { .. } | Op::BrIf { .. })
        });
        if let Some(bounded) = plan.bounded(i) {
            let end = plan.end_of(i);
            let refunds: Vec<u64> = (i + 1..end)
                .map(|j| plan.branch_refund(j, i, end))
                .collect();
            e.bounded_copy(
                &mut re,
                bounded,
                &ops[i + 1..end],
                &nexts[i + 1..end],
                &refunds,
                &local,
            )?;
            wrapped = Some((i, end));
        }
        if let Some(counted) = plan.counted(i) {
            // A counted loop pays for all its iterations on entry.
            e.charge_counted(counted, local(counted.local));
            if counted.unroll > 1 {
                unrolling = Some((i, plan.end_of(i), e.buf.len(), usize::MAX, counted));
            }
        } else if matches!(op, Op::Loop { .. }) && plan.is_edge_charged(i) {
            // The entry edge pays the header's charge before the loop starts (a small loop
            // checks it at its header).
            if header_checked(i) {
                e.charge(plan.loop_charge(i).0);
            } else {
                e.loop_charge(&plan, i);
            }
        }
        if let Op::Br { .. } | Op::Return = op {
            e.refund(refund);
            match back_to {
                Some(l) if header_checked(l) => e.charge(plan.loop_charge(l).0),
                Some(l) => e.loop_charge(&plan, l),
                None => {}
            }
        }
        if inside {
            match &op {
                Op::Else => {
                    // The `then` arm falls through to the `end`, skipping the `else` arm.
                    let opener = *open.last().expect("an open if");
                    e.refund(plan.charges(i, plan.end_of(opener)));
                }
                Op::End => {
                    let opener = *open.last().expect("an open frame");
                    let skipped = plan.charges(opener, i);
                    if plan.is_if_without_else(opener) && skipped > 0 {
                        // An `if` without `else`: the false edge skips the `then` arm.
                        e.ins(I::Else);
                        e.refund(skipped);
                    }
                }
                _ => {}
            }
        }
        match &op {
            Op::End if depth == 0 => {
                e.ins(I::End); // the wrapper
                if e.nan() && exported {
                    e.canon_stack(&sig.results);
                }
                if !passes_fuel {
                    e.flush();
                }
                if count_depth {
                    e.ins(I::GlobalGet(info.depth_global));
                    e.ins(I::I32Const(1));
                    e.ins(I::I32Sub);
                    e.ins(I::GlobalSet(info.depth_global));
                }
                if passes_fuel {
                    e.ins(I::LocalGet(e.fuel)); // the extra result
                }
                e.ins(I::End);
                continue;
            }
            Op::Return => e.ins(I::Br(depth)),
            Op::Unreachable => {
                e.flush();
                e.ins(I::Unreachable);
            }
            Op::BrIf { relative_depth } if refund > 0 && back_to.is_none() => {
                // A way out of a fused loop: the refund goes on the taken edge, off the
                // path that stays in the loop.
                e.ins(I::If(BlockType::Empty));
                e.refund(refund);
                e.ins(I::Br(relative_depth + 1 + u32::from(exits_wrapped)));
                e.ins(I::End);
            }
            Op::BrIf { relative_depth } if exits_wrapped && back_to.is_none() => {
                e.ins(I::BrIf(relative_depth + 1));
            }
            Op::BrIf { relative_depth } if back_to.is_some_and(header_checked) => {
                // A back edge of a small loop, which checks at its header: the taken edge's
                // charge (less the refund of what it skips) is made before the branch and
                // undone when it is not taken. The taken path is one add and the branch
                // straight to the header: no block of its own (as `if … br` it had one,
                // which Cranelift laid out of line with a jump back), and Cranelift keeps
                // the counter in one register across the body.
                let (charge, _) = plan.loop_charge(back_to.expect("a back edge"));
                let delta = refund as i64 - charge as i64;
                e.adjust(delta);
                e.ins(I::BrIf(*relative_depth));
                e.adjust(-delta);
            }
            Op::BrIf { relative_depth } if back_to.is_some() => {
                // A back edge, branch-free: `fuel = cond ? fuel + refund - loop charge :
                // fuel`, the loop's check, then the branch. (As `if … br`, Cranelift
                // computed every loop-carried value twice, once per successor: sha256's
                // 4,800-instruction loop ran 25% slower.) Not taken, the counter is what
                // the last check passed, plus refunds; a check that fails there only finds
                // an overdraft earlier, and an overdrawn run is out of fuel anyway.
                let cond = e.temp(ValType::I32, COND_SLOT);
                e.ins(I::LocalSet(cond));
                let (charge, threshold) = plan.loop_charge(back_to.expect("a back edge"));
                e.ins(I::LocalGet(e.fuel));
                e.ins(I::I64Const(refund as i64 - charge as i64));
                e.ins(I::I64Add);
                e.ins(I::LocalGet(e.fuel));
                e.ins(I::LocalGet(cond));
                e.ins(I::Select);
                e.ins(I::LocalTee(e.fuel));
                e.ins(I::I64Const(threshold));
                e.ins(I::I64LtS);
                e.fuel_below(threshold, 0);
                e.stats.checks += 1;
                e.ins(I::LocalGet(cond));
                e.ins(I::BrIf(*relative_depth));
            }
            Op::Call { function_index } if info.passes_fuel(*function_index).is_some() => {
                e.ins(I::LocalGet(e.fuel));
                e.ins(I::Call(*function_index));
                e.ins(I::LocalSet(e.fuel));
            }
            Op::Call { function_index } => {
                let callee = info.func_sig(*function_index);
                if e.nan() && *function_index < info.num_imported_funcs {
                    e.canon_stack(&callee.params);
                }
                e.flush();
                e.ins(I::Call(*function_index));
                e.reload();
            }
            Op::CallIndirect { type_index, .. } => {
                let params = &info.types[*type_index as usize].params;
                if e.nan() && params.iter().any(|t| is_float(*t)) {
                    let index = e.temp(ValType::I32, CANON_SLOT);
                    e.ins(I::LocalSet(index));
                    e.canon_stack(params);
                    e.ins(I::LocalGet(index));
                }
                e.flush();
                e.ins(reencode(&mut re, op.clone())?);
                e.reload();
            }
            _ => {
                if has_per_unit_cost(&op) {
                    e.charge_per_unit();
                }
                if let Op::MemoryCopy { dst_mem, src_mem } = op {
                    e.inline_copy(dst_mem, src_mem);
                } else {
                    clean = e.plain_op(&mut re, &op, next, was_clean, &local)?;
                }
            }
        }
        if inside {
            if let Op::Else = op {
                // The false edge of the `if` skips the `then` arm.
                let opener = *open.last().expect("an open if");
                e.refund(plan.charges(opener, i));
            }
        }
        match &op {
            Op::Block { .. } | Op::Loop { .. } | Op::If { .. } => {
                depth += 1;
                open.push(i);
            }
            Op::End => {
                depth -= 1;
                open.pop();
                if matches!(wrapped, Some((_, end)) if end == i) {
                    e.ins(I::End); // the block around the bounded loop's two versions
                    wrapped = None;
                }
                if let Some((head, end, at, tail_at, counted)) = unrolling {
                    if end == i {
                        let body = head + 1..end - 5;
                        e.unroll_counted(
                            &mut re,
                            (at, tail_at),
                            counted,
                            &ops[body.clone()],
                            &nexts[body],
                            &local,
                        )?;
                        unrolling = None;
                    }
                }
                if matches!(fused, Some((_, end)) if end == i) {
                    fused = None;
                }
            }
            _ => {}
        }
        if ends_segment(&op) {
            let cost = seg_costs[seg];
            seg += 1;
            if let Op::Loop { .. } = op {
                if plan.is_fused(i) {
                    e.stats.fused_loops += 1;
                    fused = Some((i, plan.end_of(i)));
                }
                if !plan.is_edge_charged(i) {
                    e.loop_charge(&plan, i);
                } else if header_checked(i) {
                    e.check_threshold(plan.loop_charge(i).1);
                }
            } else if !inside && !ends_reachability(&op) {
                e.charge(cost);
            }
        }
    }

    let Emitter {
        buf, extra_locals, ..
    } = e;
    locals.extend(extra_locals.into_iter().map(|t| (1, t)));
    let mut function = Function::new(locals);
    function.raw(buf);
    Ok(function)
}

fn reencode<'a>(re: &mut RoundtripReencoder, op: Op<'a>) -> Result<I<'a>, MeterError> {
    re.instruction(op)
        .map_err(|e| MeterError::Unsupported(e.to_string()))
}
