//! Which functions count call depth: only those that can recurse.
//!
//! The depth counter exists so that runaway recursion stops at the same frame on every
//! machine, before the engine's native stack limit (which depends on frame sizes) does.
//! A function that is on no cycle of the call graph appears at most once on any stack
//! (twice would mean a path from it back to itself), so the frames of such functions are
//! bounded by a static number `L`: the most of them on any one path of the graph. Only
//! functions on a cycle count their frames, against a limit of `max_call_depth - L`, so
//! that counted and uncounted frames together stay within `max_call_depth`, as when every
//! frame counted. A hot non-recursive function (a hash, `memcmp`, an allocator) then pays
//! nothing for the depth limit.
//!
//! The graph: an edge for every `call`; a `call_indirect` may reach every function a table
//! can hold (those in element segments, those named by `ref.func`, and the exported ones
//! when a table is imported or exported). Imports are host functions: the meter assumes
//! they do not call back into the module (the runtime's WASI does not). When `L` leaves no
//! room (`L >= max_call_depth`), every function that calls counts, as before this pass.

/// What the call graph says about the defined functions (index 0 = first defined).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DepthPlan {
    /// Whether each defined function counts its frame.
    pub(crate) counted: Vec<bool>,
    /// Entering a counted function with this many counted frames active traps.
    pub(crate) limit: u32,
    /// The most frames of uncounted functions on any stack (`L`).
    pub(crate) uncounted_frames: u32,
}

/// Per defined function: the defined functions it calls directly, and whether it makes
/// indirect calls. `indirect_targets`: defined functions a `call_indirect` may reach.
pub(crate) fn plan(
    calls: &[Vec<u32>],
    calls_indirect: &[bool],
    indirect_targets: &[u32],
    max_call_depth: u32,
) -> DepthPlan {
    let n = calls.len();
    let succ: Vec<Vec<u32>> = (0..n)
        .map(|f| {
            let mut s = calls[f].clone();
            if calls_indirect[f] {
                s.extend_from_slice(indirect_targets);
            }
            s.sort_unstable();
            s.dedup();
            s
        })
        .collect();
    let (comp, count) = components(&succ);
    let mut size = vec![0u32; count];
    for &c in &comp {
        size[c] += 1;
    }
    let recursive: Vec<bool> = (0..n)
        .map(|f| size[comp[f]] > 1 || succ[f].contains(&(f as u32)))
        .collect();
    // Longest path, counting uncounted functions, over the DAG of components. Tarjan
    // numbers components in reverse topological order: successors first.
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); count];
    for f in 0..n {
        members[comp[f]].push(f);
    }
    let mut longest = vec![0u64; count];
    for c in 0..count {
        let weight = members[c].iter().filter(|&&f| !recursive[f]).count() as u64;
        let mut best = 0u64;
        for &f in &members[c] {
            for &g in &succ[f] {
                let d = comp[g as usize];
                if d != c {
                    best = best.max(longest[d]);
                }
            }
        }
        longest[c] = weight + best;
    }
    let uncounted = longest.iter().copied().max().unwrap_or(0);
    if uncounted < u64::from(max_call_depth) {
        DepthPlan {
            counted: recursive,
            limit: max_call_depth - uncounted as u32,
            uncounted_frames: uncounted as u32,
        }
    } else {
        // No room: every function that calls counts (a leaf adds at most one frame).
        DepthPlan {
            counted: succ.iter().map(|s| !s.is_empty()).collect(),
            limit: max_call_depth,
            uncounted_frames: 1,
        }
    }
}

/// Strongly connected components (iterative Tarjan): the component of each node, numbered
/// so that every edge goes to a component with a number no larger than its source's.
fn components(succ: &[Vec<u32>]) -> (Vec<usize>, usize) {
    const NONE: usize = usize::MAX;
    let n = succ.len();
    let mut index = vec![NONE; n];
    let mut low = vec![0usize; n];
    let mut on_stack = vec![false; n];
    let mut comp = vec![NONE; n];
    let mut stack = Vec::new();
    let mut next_index = 0;
    let mut count = 0;
    for root in 0..n {
        if index[root] != NONE {
            continue;
        }
        // (node, next successor position)
        let mut work = vec![(root, 0usize)];
        index[root] = next_index;
        low[root] = next_index;
        next_index += 1;
        stack.push(root);
        on_stack[root] = true;
        while let Some(&mut (v, ref mut pos)) = work.last_mut() {
            if let Some(&w) = succ[v].get(*pos) {
                *pos += 1;
                let w = w as usize;
                if index[w] == NONE {
                    index[w] = next_index;
                    low[w] = next_index;
                    next_index += 1;
                    stack.push(w);
                    on_stack[w] = true;
                    work.push((w, 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(index[w]);
                }
                continue;
            }
            work.pop();
            if let Some(&(parent, _)) = work.last() {
                low[parent] = low[parent].min(low[v]);
            }
            if low[v] == index[v] {
                loop {
                    let w = stack.pop().expect("v is on the stack");
                    on_stack[w] = false;
                    comp[w] = count;
                    if w == v {
                        break;
                    }
                }
                count += 1;
            }
        }
    }
    (comp, count)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(calls: &[&[u32]], max: u32) -> DepthPlan {
        let calls: Vec<Vec<u32>> = calls.iter().map(|c| c.to_vec()).collect();
        let none = vec![false; calls.len()];
        plan(&calls, &none, &[], max)
    }

    #[test]
    fn only_cycles_count() {
        // 0 -> 1 -> 2 -> 1 (cycle 1-2), 2 -> 3, 4 -> 4 (self), 5 alone.
        let d = p(&[&[1], &[2], &[1, 3], &[], &[4], &[]], 100);
        assert_eq!(d.counted, [false, true, true, false, true, false]);
        // Longest path of uncounted functions: 0 -> {1,2} -> 3.
        assert_eq!(d.uncounted_frames, 2);
        assert_eq!(d.limit, 98);
    }

    #[test]
    fn a_chain_is_counted_in_full() {
        let d = p(&[&[1], &[2], &[3], &[]], 100);
        assert_eq!(d.counted, [false; 4]);
        assert_eq!(d.uncounted_frames, 4);
        assert_eq!(d.limit, 96);
    }

    #[test]
    fn indirect_calls_reach_every_table_function() {
        let calls = vec![vec![], vec![], vec![]];
        // 0 calls indirectly; 0 and 1 are in a table: 0 -> 0 is a cycle.
        let d = plan(&calls, &[true, false, false], &[0, 1], 10);
        assert_eq!(d.counted, [true, false, false]);
        assert_eq!(d.uncounted_frames, 1);
    }

    #[test]
    fn no_room_counts_every_caller() {
        let d = p(&[&[1], &[2], &[3], &[]], 4);
        assert_eq!(d.counted, [true, true, true, false]);
        assert_eq!(d.limit, 4);
    }

    #[test]
    fn deep_graphs_do_not_overflow_the_stack() {
        let n = 200_000u32;
        let calls: Vec<Vec<u32>> = (0..n).map(|i| vec![(i + 1) % n]).collect();
        let d = plan(&calls, &vec![false; n as usize], &[], 5000);
        assert!(d.counted.iter().all(|c| *c), "one big cycle");
        assert_eq!(d.uncounted_frames, 0);
    }
}
