//! Where tract spends its time in one model: median run time, then time per operator kind
//! and the slowest nodes. A tool for optimising the pipeline, not part of it.
//!
//! Usage: cargo run --release -p likeness-vision --example model_profile -- MODEL.onnx 1,192,192,3 [RUNS]

use std::collections::HashMap;
use std::time::Instant;
use tract_onnx::prelude::*;
use tract_onnx::tract_core::plan::{eval, SimpleState};

fn main() -> TractResult<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: model_profile MODEL.onnx N,H,W,C [RUNS]");
        std::process::exit(2);
    }
    let shape: Vec<usize> = args[2].split(',').map(|s| s.parse()).collect::<Result<_, _>>()?;
    let runs: usize = args.get(3).map(|s| s.parse()).transpose()?.unwrap_or(30);
    let loading = Instant::now();
    let plan = tract_onnx::onnx()
        .model_for_path(&args[1])?
        .with_input_fact(0, f32::fact(&shape).into())?
        .into_optimized()?
        .into_runnable()?;
    let load_ms = loading.elapsed().as_secs_f64() * 1e3;
    // Deterministic input in the detectors' [-1, 1] range; the run time does not depend on it.
    let input = Tensor::from_shape(
        &shape,
        &(0..shape.iter().product()).map(|i: usize| ((i * 7919) % 255) as f32 / 127.5 - 1.0).collect::<Vec<_>>(),
    )?;
    let mut totals = Vec::with_capacity(runs);
    let mut by_op: HashMap<String, f64> = HashMap::new();
    let mut by_node: HashMap<String, f64> = HashMap::new();
    for _ in 0..runs {
        let mut state = SimpleState::new(&plan)?;
        let start = Instant::now();
        state.run_plan_with_eval(tvec!(input.clone().into()), |session, op_state, node, inputs| {
            let t = Instant::now();
            let out = eval(session, op_state, node, inputs);
            let ms = t.elapsed().as_secs_f64() * 1e3;
            *by_op.entry(node.op().name().to_string()).or_default() += ms;
            *by_node.entry(format!("#{} {}", node.id, node.name)).or_default() += ms;
            out
        })?;
        totals.push(start.elapsed().as_secs_f64() * 1e3);
    }
    totals.sort_by(f64::total_cmp);
    println!(
        "{} {:?}: load {load_ms:.0} ms; run median {:.2} ms, min {:.2} ms over {runs} runs",
        args[1],
        shape,
        totals[runs / 2],
        totals[0]
    );
    for (title, map, count) in [("per operator kind", by_op, usize::MAX), ("slowest nodes", by_node, 15)] {
        println!("{title}:");
        let mut rows: Vec<_> = map.into_iter().collect();
        rows.sort_by(|a, b| b.1.total_cmp(&a.1));
        for (name, ms) in rows.into_iter().take(count) {
            println!("  {:>8.3} ms  {name}", ms / runs as f64);
        }
    }
    Ok(())
}
