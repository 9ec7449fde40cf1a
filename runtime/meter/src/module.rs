//! Section-level rewrite: validates the input, collects what the function rewrite needs,
//! appends the meter's globals, exports and block types, turns the start function into an
//! export, and copies every other section as it is.

use std::collections::{HashMap, HashSet};

use wasm_encoder::reencode::{Reencode, RoundtripReencoder};
use wasm_encoder::{
    CodeSection, ConstExpr, ExportKind, ExportSection, FunctionSection, GlobalSection, GlobalType,
    MemorySection, MemoryType, Module, RawSection, TypeSection,
};
use wasmparser::{
    CompositeInnerType, ElementItems, ExternalKind, Operator, Parser, Payload, TypeRef, ValType,
    Validator, WasmFeatures,
};

use crate::{
    func, Instrumented, MeterConfig, MeterError, Stats, BANK_EXPORT, DEPTH_EXPORT, FUEL_EXPORT,
    INTERRUPT_EXPORT, RESERVED_PREFIX, START_EXPORT, STATUS_EXPORT,
};

/// A function signature.
#[derive(Debug, Clone)]
pub(crate) struct Sig {
    pub(crate) params: Vec<ValType>,
    pub(crate) results: Vec<ValType>,
}

/// What the function rewrite needs to know about the module.
#[derive(Debug, Default)]
pub(crate) struct ModuleInfo {
    /// Signature of each type index.
    pub(crate) types: Vec<Sig>,
    /// Type index of each function index (imports first).
    pub(crate) func_types: Vec<u32>,
    pub(crate) num_imported_funcs: u32,
    /// Functions the host can call directly.
    pub(crate) exported_funcs: HashSet<u32>,
    /// Type of each global index (imports first).
    pub(crate) global_types: Vec<ValType>,
    /// Globals the host can read: imported or exported.
    pub(crate) observable_globals: HashSet<u32>,
    /// The meter's own globals.
    pub(crate) fuel_global: u32,
    pub(crate) status_global: u32,
    pub(crate) depth_global: u32,
    /// With `MeterConfig::interrupt`: the bank global and the interrupt memory.
    pub(crate) bank_global: Option<u32>,
    pub(crate) interrupt_memory: Option<u32>,
    /// Memories, imported and defined.
    pub(crate) memories: u32,
    /// Block type index `[] -> results` for every result list longer than one.
    pub(crate) result_block_types: HashMap<Vec<ValType>, u32>,
    /// Exported functions by name.
    pub(crate) func_exports: HashMap<String, u32>,
    /// `(entry, start, started_global)`: function `entry` calls the former start function
    /// `start` once, guarded by the global.
    pub(crate) start_call: Option<(u32, u32, u32)>,
    /// Per defined function: the defined functions it calls directly.
    pub(crate) calls: Vec<Vec<u32>>,
    /// Per defined function: whether it makes indirect calls.
    pub(crate) calls_indirect: Vec<bool>,
    /// Defined functions a `call_indirect` may reach.
    pub(crate) indirect_targets: HashSet<u32>,
    /// Whether a table is imported or exported (the host can put any export in it).
    pub(crate) table_visible: bool,
    /// Which functions count call depth, and against what limit (see `depth.rs`).
    pub(crate) depth: Option<crate::depth::DepthPlan>,
    /// For functions reached only by direct `call` (not exported, not in a table, not a
    /// start function): the index of their rewritten type, which takes the counter as an
    /// extra last parameter and returns it as an extra last result.
    pub(crate) fuel_passing_type: HashMap<u32, u32>,
}

impl ModuleInfo {
    pub(crate) fn func_sig(&self, func: u32) -> &Sig {
        &self.types[self.func_types[func as usize] as usize]
    }

    /// Whether function `func` (an index into the whole function space) counts its frame.
    pub(crate) fn counts_depth(&self, func: u32) -> bool {
        let plan = self.depth.as_ref().expect("planned before the rewrite");
        plan.counted[(func - self.num_imported_funcs) as usize]
    }

    /// The rewritten type of `func` if it takes and returns the counter (see
    /// [`ModuleInfo::fuel_passing_type`]).
    pub(crate) fn passes_fuel(&self, func: u32) -> Option<u32> {
        self.fuel_passing_type.get(&func).copied()
    }

    /// The depth at which entering a counting function traps.
    pub(crate) fn depth_limit(&self) -> u32 {
        self.depth
            .as_ref()
            .expect("planned before the rewrite")
            .limit
    }

    /// Plans depth counting over the call graph (after `start_call` is known).
    fn plan_depth(&mut self, max_call_depth: u32) {
        let imported = self.num_imported_funcs;
        let mut calls = self.calls.clone();
        if let Some((entry, start, _)) = self.start_call {
            calls[(entry - imported) as usize].push(start);
        }
        let local = |f: &u32| f.checked_sub(imported);
        let mut targets: Vec<u32> = self.indirect_targets.iter().filter_map(local).collect();
        if self.table_visible {
            targets.extend(self.exported_funcs.iter().filter_map(local));
        }
        let calls: Vec<Vec<u32>> = calls
            .iter()
            .map(|c| c.iter().filter_map(local).collect())
            .collect();
        self.depth = Some(crate::depth::plan(
            &calls,
            &self.calls_indirect,
            &targets,
            max_call_depth,
        ));
    }
}

pub(crate) fn instrument(wasm: &[u8], cfg: &MeterConfig) -> Result<Instrumented, MeterError> {
    validate(wasm)?;
    let (mut info, start) = collect(wasm)?;

    let num_types = info.types.len() as u32;
    let mut extra_types: Vec<Vec<ValType>> = Vec::new();
    for sig in &info.types {
        if sig.results.len() > 1 && !info.result_block_types.contains_key(&sig.results) {
            let index = num_types + extra_types.len() as u32;
            info.result_block_types.insert(sig.results.clone(), index);
            extra_types.push(sig.results.clone());
        }
    }
    let num_globals = info.global_types.len() as u32;
    info.fuel_global = num_globals;
    info.status_global = num_globals + 1;
    info.depth_global = num_globals + 2;
    // Where the start function goes: called from an export, or exported itself.
    let mut start = start;
    if let (Some(f), crate::StartMode::CallFrom(name)) = (start, &cfg.start) {
        if let Some(&entry) = info.func_exports.get(name) {
            info.start_call = Some((entry, f, num_globals + 3));
            start = None;
        }
    }
    if cfg.interrupt {
        if info.memories > 1 {
            return Err(MeterError::Unsupported(
                "more than one memory (with the interrupt memory)".into(),
            ));
        }
        info.bank_global = Some(num_globals + 3 + u32::from(info.start_call.is_some()));
        info.interrupt_memory = Some(info.memories);
    }
    info.plan_depth(cfg.max_call_depth);

    // Functions only the module's own `call`s reach pass the counter in a parameter and
    // a result instead of through the global: no store and load around every call.
    let mut fuel_types: Vec<u32> = Vec::new();
    let mut fuel_type_index: HashMap<u32, u32> = HashMap::new();
    let first_fuel_type = num_types + extra_types.len() as u32;
    for f in info.num_imported_funcs..info.func_types.len() as u32 {
        let escapes = info.exported_funcs.contains(&f)
            || info.indirect_targets.contains(&f)
            || start == Some(f)
            || matches!(info.start_call, Some((entry, start, _)) if f == entry || f == start);
        if escapes {
            continue;
        }
        let ty = info.func_types[f as usize];
        let index = *fuel_type_index.entry(ty).or_insert_with(|| {
            fuel_types.push(ty);
            first_fuel_type + fuel_types.len() as u32 - 1
        });
        info.fuel_passing_type.insert(f, index);
    }

    let mut out = Module::new();
    let mut stats = Stats::default();
    let mut globals_done = false;
    let mut exports_done = false;
    let mut memories_done = info.interrupt_memory.is_none();
    let mut code: Option<(CodeSection, u32)> = None;
    let mut func_index = info.num_imported_funcs;
    let mut re = RoundtripReencoder;
    let info = info;

    for payload in Parser::new(0).parse_all(wasm) {
        let payload = payload.map_err(invalid)?;
        // Sections come in a fixed order: the meter's globals and exports go in before the
        // first section that must follow them, when the module has none of its own.
        if let Some((id, _)) = payload.as_section() {
            let rank = section_rank(id);
            if !memories_done && rank > section_rank(MEMORY_ID) {
                out.section(&interrupt_memory(MemorySection::new()));
                memories_done = true;
            }
            if !globals_done && rank > section_rank(GLOBAL_ID) {
                out.section(&meter_globals(GlobalSection::new(), &info));
                globals_done = true;
            }
            if !exports_done && rank > section_rank(EXPORT_ID) {
                out.section(&meter_exports(ExportSection::new(), &info, start));
                exports_done = true;
            }
        }
        match payload {
            Payload::Version { .. } | Payload::End(_) => {}
            Payload::TypeSection(reader) => {
                let mut types = TypeSection::new();
                re.parse_type_section(&mut types, reader)
                    .map_err(|e| MeterError::Internal(e.to_string()))?;
                for results in &extra_types {
                    let results: Vec<wasm_encoder::ValType> =
                        results.iter().map(|t| val_type(*t)).collect();
                    types.ty().function([], results);
                }
                for &ty in &fuel_types {
                    let sig = &info.types[ty as usize];
                    let with_fuel = |list: &[ValType]| -> Vec<wasm_encoder::ValType> {
                        list.iter()
                            .map(|t| val_type(*t))
                            .chain([wasm_encoder::ValType::I64])
                            .collect()
                    };
                    types
                        .ty()
                        .function(with_fuel(&sig.params), with_fuel(&sig.results));
                }
                out.section(&types);
            }
            Payload::FunctionSection(reader) => {
                let mut functions = FunctionSection::new();
                for (k, ty) in reader.into_iter().enumerate() {
                    let f = info.num_imported_funcs + k as u32;
                    let ty = ty.map_err(invalid)?;
                    functions.function(info.passes_fuel(f).unwrap_or(ty));
                }
                out.section(&functions);
            }
            Payload::MemorySection(reader) if !memories_done => {
                let mut memories = MemorySection::new();
                re.parse_memory_section(&mut memories, reader)
                    .map_err(|e| MeterError::Internal(e.to_string()))?;
                out.section(&interrupt_memory(memories));
                memories_done = true;
            }
            Payload::GlobalSection(reader) => {
                let mut globals = GlobalSection::new();
                re.parse_global_section(&mut globals, reader)
                    .map_err(|e| MeterError::Internal(e.to_string()))?;
                out.section(&meter_globals(globals, &info));
                globals_done = true;
            }
            Payload::ExportSection(reader) => {
                let mut exports = ExportSection::new();
                re.parse_export_section(&mut exports, reader)
                    .map_err(|e| MeterError::Internal(e.to_string()))?;
                out.section(&meter_exports(exports, &info, start));
                exports_done = true;
            }
            // Removed: the host calls it through `START_EXPORT` once the budget is set.
            Payload::StartSection { .. } => {}
            Payload::CodeSectionStart { count, .. } => {
                code = Some((CodeSection::new(), count));
                if count == 0 {
                    out.section(&CodeSection::new());
                    code = None;
                }
            }
            Payload::CodeSectionEntry(body) => {
                let Some((section, count)) = code.as_mut() else {
                    return Err(MeterError::Internal(
                        "code entry outside a code section".into(),
                    ));
                };
                let function = func::rewrite(&body, func_index, &info, cfg, &mut stats)?;
                section.function(&function);
                func_index += 1;
                if func_index - info.num_imported_funcs == *count {
                    out.section(&*section);
                    code = None;
                }
            }
            other => match other.as_section() {
                Some((id, range)) => {
                    out.section(&RawSection {
                        id,
                        data: &wasm[range],
                    });
                }
                None => {
                    return Err(MeterError::Unsupported(format!(
                        "unexpected payload {other:?}"
                    )))
                }
            },
        }
    }
    if !memories_done {
        out.section(&interrupt_memory(MemorySection::new()));
    }
    if !globals_done {
        out.section(&meter_globals(GlobalSection::new(), &info));
    }
    if !exports_done {
        out.section(&meter_exports(ExportSection::new(), &info, start));
    }

    let wasm = out.finish();
    let features = supported_features_with_output();
    Validator::new_with_features(features)
        .validate_all(&wasm)
        .map_err(|e| MeterError::Internal(format!("rewritten module is invalid: {e}")))?;
    Ok(Instrumented {
        wasm,
        start: start.map(|_| START_EXPORT),
        stats,
    })
}

/// The output may use SIMD for NaN canonicalisation even if the input did not.
fn supported_features_with_output() -> WasmFeatures {
    crate::supported_features() | WasmFeatures::SIMD
}

fn validate(wasm: &[u8]) -> Result<(), MeterError> {
    if let Err(err) = Validator::new_with_features(crate::supported_features()).validate_all(wasm) {
        // Valid with every feature on: the module is fine, we are not.
        return match Validator::new_with_features(WasmFeatures::all()).validate_all(wasm) {
            Ok(_) => Err(MeterError::Unsupported(err.message().to_string())),
            Err(_) => Err(MeterError::Invalid(err.to_string())),
        };
    }
    Ok(())
}

fn invalid(err: wasmparser::BinaryReaderError) -> MeterError {
    MeterError::Invalid(err.to_string())
}

fn check_name(name: &str) -> Result<(), MeterError> {
    if name.starts_with(RESERVED_PREFIX) {
        Err(MeterError::ReservedName(name.to_string()))
    } else {
        Ok(())
    }
}

/// First pass: types, functions, globals, exports, the start function.
fn collect(wasm: &[u8]) -> Result<(ModuleInfo, Option<u32>), MeterError> {
    let mut info = ModuleInfo::default();
    let mut start = None;
    for payload in Parser::new(0).parse_all(wasm) {
        match payload.map_err(invalid)? {
            Payload::Version { encoding, .. } if encoding != wasmparser::Encoding::Module => {
                return Err(MeterError::Unsupported("components".into()));
            }
            Payload::TypeSection(reader) => {
                for group in reader {
                    for sub in group.map_err(invalid)?.into_types() {
                        match &sub.composite_type.inner {
                            CompositeInnerType::Func(f) => info.types.push(Sig {
                                params: f.params().to_vec(),
                                results: f.results().to_vec(),
                            }),
                            _ => return Err(MeterError::Unsupported("GC types".into())),
                        }
                    }
                }
            }
            Payload::ImportSection(reader) => {
                for import in reader.into_imports() {
                    let import = import.map_err(invalid)?;
                    check_name(import.module)?;
                    check_name(import.name)?;
                    match import.ty {
                        TypeRef::Func(t) => {
                            info.func_types.push(t);
                            info.num_imported_funcs += 1;
                        }
                        TypeRef::Global(g) => {
                            info.observable_globals
                                .insert(info.global_types.len() as u32);
                            info.global_types.push(g.content_type);
                        }
                        TypeRef::Tag(_) | TypeRef::FuncExact(_) => {
                            return Err(MeterError::Unsupported(format!("import {:?}", import.ty)))
                        }
                        TypeRef::Table(_) => info.table_visible = true,
                        TypeRef::Memory(_) => info.memories += 1,
                    }
                }
            }
            Payload::FunctionSection(reader) => {
                for t in reader {
                    info.func_types.push(t.map_err(invalid)?);
                }
            }
            Payload::GlobalSection(reader) => {
                for g in reader {
                    let g = g.map_err(invalid)?;
                    ref_funcs(g.init_expr, &mut info.indirect_targets)?;
                    info.global_types.push(g.ty.content_type);
                }
            }
            Payload::ExportSection(reader) => {
                for export in reader {
                    let export = export.map_err(invalid)?;
                    check_name(export.name)?;
                    match export.kind {
                        ExternalKind::Func | ExternalKind::FuncExact => {
                            info.exported_funcs.insert(export.index);
                            info.func_exports
                                .insert(export.name.to_string(), export.index);
                        }
                        ExternalKind::Global => {
                            info.observable_globals.insert(export.index);
                        }
                        ExternalKind::Table => info.table_visible = true,
                        _ => {}
                    }
                }
            }
            Payload::StartSection { func, .. } => start = Some(func),
            Payload::MemorySection(reader) => info.memories += reader.count(),
            Payload::ElementSection(reader) => {
                for element in reader {
                    match element.map_err(invalid)?.items {
                        ElementItems::Functions(funcs) => {
                            for f in funcs {
                                info.indirect_targets.insert(f.map_err(invalid)?);
                            }
                        }
                        ElementItems::Expressions(_, exprs) => {
                            for expr in exprs {
                                ref_funcs(expr.map_err(invalid)?, &mut info.indirect_targets)?;
                            }
                        }
                    }
                }
            }
            Payload::CodeSectionEntry(body) => {
                let mut calls = Vec::new();
                let mut indirect = false;
                let mut ops = body.get_operators_reader().map_err(invalid)?;
                while !ops.eof() {
                    match ops.read().map_err(invalid)? {
                        Operator::Call { function_index }
                        | Operator::ReturnCall { function_index } => calls.push(function_index),
                        Operator::CallIndirect { .. } | Operator::ReturnCallIndirect { .. } => {
                            indirect = true
                        }
                        Operator::RefFunc { function_index } => {
                            info.indirect_targets.insert(function_index);
                        }
                        _ => {}
                    }
                }
                info.calls.push(calls);
                info.calls_indirect.push(indirect);
            }
            _ => {}
        }
    }
    // The host calls the former start function through an export.
    if let Some(f) = start {
        info.exported_funcs.insert(f);
    }
    Ok((info, start))
}

/// Adds the functions a constant expression names with `ref.func`.
fn ref_funcs(expr: wasmparser::ConstExpr<'_>, out: &mut HashSet<u32>) -> Result<(), MeterError> {
    let mut ops = expr.get_operators_reader();
    while !ops.eof() {
        if let Operator::RefFunc { function_index } = ops.read().map_err(invalid)? {
            out.insert(function_index);
        }
    }
    Ok(())
}

const MEMORY_ID: u8 = 5;
const GLOBAL_ID: u8 = 6;
const EXPORT_ID: u8 = 7;

/// Position of a section id in the required section order (custom sections: 0, anywhere).
fn section_rank(id: u8) -> u8 {
    match id {
        1 => 1,   // type
        2 => 2,   // import
        3 => 3,   // function
        4 => 4,   // table
        5 => 5,   // memory
        13 => 6,  // tag
        6 => 7,   // global
        7 => 8,   // export
        8 => 9,   // start
        9 => 10,  // element
        12 => 11, // data count
        10 => 12, // code
        11 => 13, // data
        _ => 0,
    }
}

fn meter_globals(mut globals: GlobalSection, info: &ModuleInfo) -> GlobalSection {
    let i64_mut = GlobalType {
        val_type: wasm_encoder::ValType::I64,
        mutable: true,
        shared: false,
    };
    let i32_mut = GlobalType {
        val_type: wasm_encoder::ValType::I32,
        mutable: true,
        shared: false,
    };
    globals.global(i64_mut, &ConstExpr::i64_const(0)); // fuel: no budget until the host sets one
    globals.global(i32_mut, &ConstExpr::i32_const(0)); // status
    globals.global(i32_mut, &ConstExpr::i32_const(0)); // depth
    if info.start_call.is_some() {
        globals.global(i32_mut, &ConstExpr::i32_const(0)); // the start function has run
    }
    if info.bank_global.is_some() {
        globals.global(i64_mut, &ConstExpr::i64_const(0)); // bank
    }
    globals
}

/// The one-page memory whose byte 0 interrupts the task (`MeterConfig::interrupt`).
fn interrupt_memory(mut memories: MemorySection) -> MemorySection {
    memories.memory(MemoryType {
        minimum: 1,
        maximum: Some(1),
        memory64: false,
        shared: false,
        page_size_log2: None,
    });
    memories
}

fn meter_exports(
    mut exports: ExportSection,
    info: &ModuleInfo,
    start: Option<u32>,
) -> ExportSection {
    exports.export(FUEL_EXPORT, ExportKind::Global, info.fuel_global);
    exports.export(STATUS_EXPORT, ExportKind::Global, info.status_global);
    exports.export(DEPTH_EXPORT, ExportKind::Global, info.depth_global);
    if let Some(f) = start {
        exports.export(START_EXPORT, ExportKind::Func, f);
    }
    if let (Some(bank), Some(memory)) = (info.bank_global, info.interrupt_memory) {
        exports.export(BANK_EXPORT, ExportKind::Global, bank);
        exports.export(INTERRUPT_EXPORT, ExportKind::Memory, memory);
    }
    exports
}

pub(crate) fn val_type(t: ValType) -> wasm_encoder::ValType {
    RoundtripReencoder
        .val_type(t)
        .expect("roundtrip of a value type cannot fail")
}
