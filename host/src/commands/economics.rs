//! `smartnodes economics`: for each way to cheat, what it can gain and what it can expect to
//! lose, from the contract's parameters (the defaults, or a deployment's).
//!
//! The table is [`strategy_table`], a pure function of a [`Model`]; the command only reads
//! the parameters (and, with a deployment, the active validator stake) and prints it.
//!
//! The model, per strategy, for one epoch of cheating by an established worker:
//! - Every accepted result is re-executed with probability `p`, independently (the
//!   validator's rule, `roles::validator::verify` `sample`: `max(sample rate, 0.5^(streak /
//!   10))`, capped at 1). An established worker has a long streak, so `p` is the sample rate
//!   (5 % by default), the lowest rate any worker sees; a new worker is checked on every
//!   result while the job's check budget lasts (20 % of its fuel; issue 22), at the sample
//!   rate after it. The table prices cheating at the sample rate alone: the budget only
//!   catches newcomers sooner.
//!   Re-execution compares verdict, output hash and fuel, so a wrong, made-up, copied or
//!   fuel-inflated result is caught whenever it is sampled: `p_caught = 1 - (1 - p)^k` for `k`
//!   cheated results.
//! - Gain: skipping work saves at most what the work earns (compute valued at its whole
//!   reward, an upper bound); inflating fuel by `x` moves the worker pot towards the
//!   cheater (`x / (n - 1 + x)` of it instead of `1 / n`).
//! - Loss when caught: the whole stake (slashed) and the rewards not yet vested
//!   (`vesting_epochs` epochs of earnings, forfeited). Expected loss = `p_caught` × that.
//!   Transaction fees are not counted (they only add to the loss).
//! - A validator majority: buying more stake than the honest active stake; the most it can
//!   take is the escrow (capped at `max_escrow_bps` of the active stake, its own included)
//!   plus one epoch's pot. A theft is an executed summary, public: `p_caught = 1`, and the
//!   loss is the stake bought, under the assumption that the network stops following a
//!   captured contract (the contract cannot slash the majority that judges; what it does is
//!   delay votes by `activation_epochs`, bound joins per epoch and cap the escrow so that
//!   this row's gain stays below the stake).

use anyhow::{Context, Result};
use smartnodes_contracts::{Chain, Endpoint, Params, PrivateKeySigner, SNO, U256};
use std::io::Write as _;
use std::path::PathBuf;

/// `smartnodes economics`.
#[derive(Debug, clap::Args)]
pub struct EconomicsArgs {
    /// One JSON array: an object per strategy with `strategy`, `gain_sno`, `loss_sno`,
    /// `p_caught` (and `note`).
    #[arg(long)]
    pub json: bool,
    /// Read the parameters (and the active validator stake) of a deployment on this
    /// JSON-RPC chain instead of the defaults. Needs --deployment.
    #[arg(long, value_name = "URL", requires = "deployment")]
    pub rpc_url: Option<String>,
    /// The deployment file (`{"core": "0x…", "token": "0x…"}`, as `smartnodes chain deploy`
    /// writes it). Needs --rpc-url.
    #[arg(long, value_name = "FILE", requires = "rpc_url")]
    pub deployment: Option<PathBuf>,
}

/// What the table is computed from.
#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    /// The contract's parameters.
    pub params: Params,
    /// The epoch whose emission is at stake.
    pub epoch: u64,
    /// Share of results re-executed for an established worker (0..=1).
    pub sample_rate: f64,
    /// Workers sharing the worker pot.
    pub workers: u32,
    /// Results one worker delivers per epoch.
    pub tasks_per_epoch: u32,
    /// The honest validators' active stake (SNO wei).
    pub honest_stake: U256,
}

/// Validators the default model assumes, each at the minimum collateral.
pub const DEFAULT_VALIDATORS: u64 = 10;

impl Model {
    /// The defaults: `params`, the first epoch, the validator's default sample rate
    /// ([`crate::roles::DEFAULT_SAMPLE_PPM`]), 10 workers of 100 results per epoch each, and
    /// [`DEFAULT_VALIDATORS`] honest validators at the minimum collateral.
    pub fn defaults(params: Params) -> Model {
        let honest_stake = params.min_validator_collateral * U256::from(DEFAULT_VALIDATORS);
        Model {
            params,
            epoch: 1,
            sample_rate: f64::from(crate::roles::DEFAULT_SAMPLE_PPM) / 1e6,
            workers: 10,
            tasks_per_epoch: 100,
            honest_stake,
        }
    }
}

/// One strategy's expected outcome.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Row {
    /// What the cheater does.
    pub strategy: String,
    /// What it can gain (SNO).
    pub gain_sno: f64,
    /// What it can expect to lose (SNO): `p_caught` times what being caught costs.
    pub loss_sno: f64,
    /// The probability of being caught.
    pub p_caught: f64,
    /// How the row is computed.
    pub note: String,
}

fn to_sno(v: U256) -> f64 {
    let whole: u128 = (v / SNO).try_into().unwrap_or(u128::MAX);
    let frac: u128 = (v % SNO).try_into().unwrap_or(0);
    whole as f64 + frac as f64 / 1e18
}

/// The strategy table for `m`: pure arithmetic, no I/O.
pub fn strategy_table(m: &Model) -> Vec<Row> {
    let p = &m.params;
    let bps = |v: u16| f64::from(v) / 10_000.0;
    let emission = to_sno(p.emission_at(m.epoch));
    let worker_pot = emission * bps(p.worker_bps);
    let workers = f64::from(m.workers.max(1));
    let tasks = m.tasks_per_epoch.max(1);
    // What an honest worker earns per epoch, and what being caught costs it.
    let earned = worker_pot / workers;
    let stake = to_sno(p.min_worker_collateral);
    let unvested = earned * f64::from(p.vesting_epochs);
    let at_risk = stake + unvested;
    let caught = |cheated: u32| 1.0 - (1.0 - m.sample_rate.clamp(0.0, 1.0)).powi(cheated as i32);
    let mut rows = Vec::new();
    let mut worker_row = |strategy: String, gain: f64, cheated: u32, how: &str| {
        let p_caught = caught(cheated);
        rows.push(Row {
            strategy,
            gain_sno: gain,
            loss_sno: p_caught * at_risk,
            p_caught,
            note: format!(
                "{how}; caught: {stake:.0} SNO stake slashed + {unvested:.1} SNO unvested \
                 ({} epochs) forfeited",
                p.vesting_epochs
            ),
        });
    };
    for pct in [1u32, 10, 100] {
        let cheated = (tasks * pct).div_ceil(100).max(1);
        worker_row(
            format!("wrong outputs on {pct}% of tasks"),
            earned * f64::from(cheated) / f64::from(tasks),
            cheated,
            &format!(
                "{cheated} of {tasks} results wrong, the work they skip worth at most its reward"
            ),
        );
    }
    for x in [2u32, 50] {
        let share = f64::from(x) / (workers - 1.0 + f64::from(x));
        worker_row(
            format!("fuel inflated x{x}"),
            worker_pot * (share - 1.0 / workers),
            tasks,
            &format!(
                "every result's fuel x{x}: {:.1} % of the worker pot instead of {:.1} %",
                share * 100.0,
                100.0 / workers
            ),
        );
    }
    worker_row(
        "lazy (skip the work)".into(),
        earned,
        tasks,
        "made-up outputs and fuel on every task, saving all its work",
    );
    worker_row(
        "copy (another task's output)".into(),
        earned,
        tasks,
        "replays outputs of other tasks: wrong for these, saving all its work",
    );
    // A validator majority bought at the current stake.
    let honest = to_sno(m.honest_stake);
    let bought = honest; // strictly more is needed; the loss is at least this
    let escrow = (honest + bought) * bps(p.max_escrow_bps);
    rows.push(Row {
        strategy: "validator majority bought at the current stake".into(),
        gain_sno: escrow + emission,
        loss_sno: bought,
        p_caught: 1.0,
        note: format!(
            "more than the honest {honest:.0} SNO of stake, joining at most {:.0} % of the \
             active stake per epoch and voting {} epochs after registering; takes at most the \
             escrow ({:.0} % of the active stake) and one epoch's {emission:.0} SNO pot, in a \
             public summary; loses the stake bought if the network stops following a captured \
             contract",
            bps(p.max_join_bps) * 100.0,
            p.activation_epochs,
            bps(p.max_escrow_bps) * 100.0
        ),
    });
    rows
}

/// Runs `smartnodes economics`.
pub fn run(args: EconomicsArgs) -> Result<u8> {
    let model = match (&args.rpc_url, &args.deployment) {
        (Some(url), Some(file)) => {
            let deployment = crate::commands::chain::read_deployment(file)?;
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("starting the async runtime")?;
            runtime.block_on(async {
                let chain = Chain::connect(
                    &Endpoint::Rpc(url.clone()),
                    PrivateKeySigner::random(),
                    deployment,
                )
                .await
                .context("connecting to the contracts")?;
                let params = chain.params().await.context("reading the parameters")?;
                let epoch = chain.current_epoch().await?;
                let stake = chain.active_stake().await?;
                let mut m = Model::defaults(params);
                m.epoch = epoch;
                m.honest_stake = stake;
                anyhow::Ok(m)
            })?
        }
        _ => Model::defaults(Params::new(smartnodes_contracts::Address::ZERO)),
    };
    let rows = strategy_table(&model);
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&rows)?)?;
    } else {
        write!(out, "{}", table(&model, &rows))?;
    }
    Ok(0)
}

/// The rows as a text table (the README shows it).
pub fn table(m: &Model, rows: &[Row]) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "sample rate {:.1} %, {} workers x {} results per epoch, stake {} SNO, vesting {} epochs",
        m.sample_rate * 100.0,
        m.workers,
        m.tasks_per_epoch,
        to_sno(m.params.min_worker_collateral),
        m.params.vesting_epochs
    );
    let _ = writeln!(
        s,
        "{:<48} {:>12} {:>12} {:>9}  verdict",
        "strategy", "gain SNO", "loss SNO", "p_caught"
    );
    for r in rows {
        let _ = writeln!(
            s,
            "{:<48} {:>12.2} {:>12.2} {:>9.4}  {}",
            r.strategy,
            r.gain_sno,
            r.loss_sno,
            r.p_caught,
            if r.loss_sno > r.gain_sno {
                "does not pay"
            } else {
                "PAYS"
            }
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use smartnodes_contracts::{sno, Address};

    fn defaults() -> Model {
        Model::defaults(Params::new(Address::ZERO))
    }

    #[test]
    fn at_the_defaults_no_strategy_pays() {
        let rows = strategy_table(&defaults());
        assert_eq!(rows.len(), 8, "every strategy of the issue has a row");
        for r in &rows {
            assert!(
                r.loss_sno > r.gain_sno,
                "{}: gain {} >= loss {}",
                r.strategy,
                r.gain_sno,
                r.loss_sno
            );
            assert!((0.0..=1.0).contains(&r.p_caught), "{}", r.strategy);
        }
    }

    #[test]
    fn the_numbers_follow_the_sampling_rule_and_the_parameters() {
        let m = defaults();
        let rows = strategy_table(&m);
        // 1 % of 100 results: one result, sampled with p = 5 %.
        assert!((rows[0].p_caught - 0.05).abs() < 1e-12);
        // 10 %: ten results.
        assert!((rows[1].p_caught - (1.0 - 0.95f64.powi(10))).abs() < 1e-12);
        // An honest worker earns 1,000 * 85 % / 10 = 85 SNO an epoch; 1 % of that work.
        assert!((rows[0].gain_sno - 0.85).abs() < 1e-9);
        // Caught: 500 SNO stake + 6 epochs * 85 SNO unvested.
        assert!((rows[0].loss_sno - 0.05 * (500.0 + 6.0 * 85.0)).abs() < 1e-9);
        // Fuel x2 among 10 workers: 2/11 of 850 instead of 1/10.
        assert!((rows[3].gain_sno - 850.0 * (2.0 / 11.0 - 0.1)).abs() < 1e-9);
        // The majority: 25 % of 20,000 SNO of stake in escrow + 1,000 SNO emission.
        assert!((rows[7].gain_sno - 6_000.0).abs() < 1e-9);
        assert!((rows[7].loss_sno - 10_000.0).abs() < 1e-9);
    }

    #[test]
    fn weaker_parameters_make_cheating_pay_and_the_table_says_so() {
        let mut m = defaults();
        m.params.min_worker_collateral = sno(1);
        m.params.vesting_epochs = 1;
        m.sample_rate = 0.001;
        let rows = strategy_table(&m);
        assert!(rows.iter().any(|r| r.gain_sno >= r.loss_sno));
        assert!(table(&m, &rows).contains("PAYS"));
        let mut m = defaults();
        m.params.max_escrow_bps = 10_000;
        let rows = strategy_table(&m);
        assert!(rows[7].gain_sno >= rows[7].loss_sno);
    }

    #[test]
    fn json_rows_carry_the_keys_the_issue_names() {
        let rows = strategy_table(&defaults());
        let v = serde_json::to_value(&rows).unwrap();
        for r in v.as_array().unwrap() {
            for key in ["strategy", "gain_sno", "loss_sno", "p_caught"] {
                assert!(r.get(key).is_some(), "{key} missing in {r}");
            }
        }
    }
}
