//! Optimization passes over pipec IR, and the pass manager that runs them.
//!
//! A pass has a name (the one `--passes` and `--emit-ir=after=NAME` use), runs over the
//! whole program, says whether it changed anything, and may leave remarks. The manager
//! verifies the IR after every pass, so a broken rewrite is caught where it happens.

#![warn(clippy::print_stdout, clippy::print_stderr)]

mod const_fold;
mod cse;
mod dce;
mod fold_casts;
mod fuse_elementwise;
mod pipeline;
mod simplify;
mod util;

pub use const_fold::MAX_FOLD_ELEMENTS;
pub use fold_casts::{cast_chain_is_exact, roundtrip_is_exact, why_kept};

use pipec_diag::Diagnostic;
use pipec_ir::Program;

/// One optimization pass.
pub trait Pass {
    /// The pass's name in `--passes` and `--list-passes`.
    fn name(&self) -> &'static str;
    /// One line saying what it does, for `--list-passes`.
    fn description(&self) -> &'static str;
    /// Rewrites `prog`; returns whether anything changed. Remarks go to `remarks`.
    fn run(&self, prog: &mut Program, remarks: &mut Vec<Diagnostic>) -> bool;
}

/// Every pass, in the order `-O2` runs them.
pub fn all_passes() -> Vec<Box<dyn Pass>> {
    vec![
        Box::new(pipeline::EliminateNoops),
        Box::new(pipeline::FuseMaps),
        Box::new(pipeline::FuseFilters),
        Box::new(pipeline::VectorizeMap),
        // Function passes run after the pipeline passes have inlined and vectorized maps,
        // so they see the final functions; fusion comes last because it hides ops from
        // the others.
        Box::new(fold_casts::FoldCasts),
        Box::new(const_fold::ConstFold),
        Box::new(simplify::Simplify),
        Box::new(cse::Cse),
        Box::new(dce::Dce),
        Box::new(fuse_elementwise::FuseElementwise),
    ]
}

/// The pass names run at an optimization level (0, 1 or 2). `-O1` is the cheap,
/// function-local subset: `eliminate-noops`, `fold-casts`, `const-fold`, `simplify`, `cse`
/// and `dce` (no fusion, no restructuring of the pipeline); `-O2` runs every pass.
pub fn passes_for_level(level: u8) -> Vec<&'static str> {
    const O1: [&str; 6] = [
        "eliminate-noops",
        "fold-casts",
        "const-fold",
        "simplify",
        "cse",
        "dce",
    ];
    match level {
        0 => vec![],
        1 => all_passes()
            .iter()
            .map(|p| p.name())
            .filter(|n| O1.contains(n))
            .collect(),
        _ => all_passes().iter().map(|p| p.name()).collect(),
    }
}

/// What running a pipeline of passes produced.
pub struct Optimized {
    /// The final program.
    pub program: Program,
    /// The program after each pass that changed something, in order (for `--emit-ir=all`).
    pub stages: Vec<(String, Program)>,
    /// Remarks from every pass.
    pub remarks: Vec<Diagnostic>,
}

/// Why optimization stopped.
#[derive(Debug)]
pub enum OptError {
    /// A pass name that does not exist.
    UnknownPass(String, Vec<&'static str>),
    /// The verifier rejected the IR after a pass (a compiler bug).
    Verify(String, Vec<pipec_ir::VerifyError>),
}

/// Runs the named passes, in order, repeating the sequence until nothing changes
/// (at most a few rounds), verifying after each pass.
pub fn optimize(prog: Program, names: &[&str]) -> Result<Optimized, OptError> {
    optimize_with(prog, names, true)
}

/// [`optimize`], keeping a copy of the program after each pass that changed it only when
/// `keep_stages` (for `--emit-ir=all`/`after=PASS`): the copies cost memory per pass.
pub fn optimize_with(
    mut prog: Program,
    names: &[&str],
    keep_stages: bool,
) -> Result<Optimized, OptError> {
    let all = all_passes();
    let mut passes = Vec::new();
    for n in names {
        match all.iter().position(|p| p.name() == *n) {
            Some(i) => passes.push(i),
            None => {
                return Err(OptError::UnknownPass(
                    n.to_string(),
                    all.iter().map(|p| p.name()).collect(),
                ));
            }
        }
    }
    let mut stages = Vec::new();
    let mut remarks = Vec::new();
    for _round in 0..4 {
        let mut changed = false;
        for &i in &passes {
            let pass = &all[i];
            if pass.run(&mut prog, &mut remarks) {
                changed = true;
                for f in &mut prog.functions {
                    f.compact();
                }
                pipec_ir::verify(&prog)
                    .map_err(|e| OptError::Verify(pass.name().to_string(), e))?;
                if keep_stages {
                    stages.push((pass.name().to_string(), prog.clone()));
                }
            }
        }
        if !changed {
            break;
        }
    }
    dedup_remarks(&mut remarks);
    Ok(Optimized {
        program: prog,
        stages,
        remarks,
    })
}

/// Drops repeated remarks (passes repeat across rounds), keeping the first of each, in
/// time linear in their number.
pub fn dedup_remarks(remarks: &mut Vec<Diagnostic>) {
    let mut seen = std::collections::HashSet::new();
    remarks.retain(|d| seen.insert(format!("{d:?}")));
}
