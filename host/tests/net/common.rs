//! Helpers shared by the tests.

use smartnodes::net::proto::{JobLimits, JobSpec};
use smartnodes::roles::user::JobReport;
use smartnodes_runtime::{Allocator, Runtime, RuntimeConfig, TaskInput};

/// `n` distinct wordcount inputs.
pub(crate) fn wordcount_inputs(n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            format!(
                "Task {i}: the quick brown fox jumps over the lazy dog {}. {}",
                "again and ".repeat(i % 7),
                (0..i).map(|j| format!("w{} ", j % 5)).collect::<String>()
            )
            .into_bytes()
        })
        .collect()
}

/// Checks a report against local runs of the same module and inputs: same output, same
/// fuel, same verdict (with the job's seeds), and each task exactly once.
pub(crate) fn check_report(
    report: &JobReport,
    module: &[u8],
    inputs: &[Vec<u8>],
    limits: &JobLimits,
) {
    let runtime = Runtime::new(RuntimeConfig {
        allocator: Allocator::OnDemand,
        ..RuntimeConfig::default()
    })
    .unwrap();
    assert_eq!(report.tasks.len(), inputs.len());
    for (i, (task, input)) in report.tasks.iter().zip(inputs).enumerate() {
        assert_eq!(task.index as usize, i);
        let seed = JobSpec::seed(&report.job_id, i as u32);
        let local = runtime
            .run(
                module,
                &TaskInput::new(input.clone()).with_seed(seed),
                &limits.to_runtime(),
            )
            .unwrap();
        assert_eq!(task.verdict(), local.verdict.as_str(), "task {i}");
        assert_eq!(task.output, local.output, "task {i}");
        assert_eq!(task.receipt.body.fuel_used, local.fuel_used, "task {i}");
        assert_eq!(task.receipt.body.output_hash, local.output_hash, "task {i}");
        assert_eq!(task.receipt.verify().unwrap(), task.worker);
    }
}

/// Logs to the test's output when `RUST_LOG` is set.
pub(crate) fn init_logging() {
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    }
}
