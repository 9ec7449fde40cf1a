//! The cost model: wasmtime's default fuel costs, so that `fuel_used` keeps the meaning it
//! had with engine fuel (and the tests can compare the two counts exactly).

use wasmparser::Operator;

/// The static cost of one operator: 0 for operators that generate no code or only move
/// control (`nop`, `drop`, `block`, `loop`, `unreachable`, `return`, `else`, `end`), 1 for
/// everything else. Function entry costs 1 more, and bulk operations cost 1 per byte or
/// element on top (charged at run time).
pub fn operator_cost(op: &Operator<'_>) -> u64 {
    match op {
        Operator::Nop
        | Operator::Drop
        | Operator::Block { .. }
        | Operator::Loop { .. }
        | Operator::Unreachable
        | Operator::Return
        | Operator::Else
        | Operator::End => 0,
        _ => 1,
    }
}

/// The cost charged on entering a function, before its first operator.
pub(crate) const FUNCTION_ENTRY_COST: u64 = 1;

/// Whether `op` costs 1 per unit of its topmost (i32) operand on top of its static cost:
/// bytes for `memory.copy`/`fill`/`init`, elements for `table.copy`/`fill`/`init`/`grow`.
pub(crate) fn has_per_unit_cost(op: &Operator<'_>) -> bool {
    matches!(
        op,
        Operator::MemoryCopy { .. }
            | Operator::MemoryFill { .. }
            | Operator::MemoryInit { .. }
            | Operator::TableCopy { .. }
            | Operator::TableFill { .. }
            | Operator::TableInit { .. }
            | Operator::TableGrow { .. }
    )
}

/// Whether `op` ends a straight-line segment: the code after it can be reached by a branch,
/// or cannot be reached by falling through, or it is a call (so that a host function, or a
/// trap in the callee, sees exactly the fuel of what ran before it — the count engine fuel
/// has there too).
pub(crate) fn ends_segment(op: &Operator<'_>) -> bool {
    matches!(
        op,
        Operator::Call { .. }
            | Operator::CallIndirect { .. }
            | Operator::Loop { .. }
            | Operator::If { .. }
            | Operator::Else
            | Operator::End
            | Operator::Br { .. }
            | Operator::BrIf { .. }
            | Operator::BrTable { .. }
            | Operator::Return
            | Operator::Unreachable
    )
}

/// Whether the code right after `op` is unreachable (until the next `else` or `end`).
pub(crate) fn ends_reachability(op: &Operator<'_>) -> bool {
    matches!(
        op,
        Operator::Br { .. } | Operator::BrTable { .. } | Operator::Return | Operator::Unreachable
    )
}
