//! Verification: sampled re-execution, fraud proofs, reputation and the blacklist.
//!
//! - **Sampling** happens after the worker has signed its receipt: the draw is
//!   `sha256(secret ‖ receipt hash)` against the rate, with a secret the validator never
//!   shows, so the worker cannot know which of its receipts will be checked. The rate is
//!   the highest of the validator's default, the job's own (a job may ask for more) and
//!   the worker's: `2^-(streak / 10)`, where `streak` counts its verified results since its
//!   last timeout, so a new worker is checked every time, then half the time after 10
//!   verified results, and so on down to the default (BOINC's adaptive replication, with
//!   trust earned by a run of verified results and lost at once).
//! - **Re-execution** runs on one background lane (a sled queue, `checks`, so nothing is
//!   lost in a crash) with the same module, input, limits and seed, off the async threads,
//!   and compares `(verdict, output_hash, fuel_used)`; the delivered output was already
//!   checked against `output_hash` on arrival.
//! - **Every verdict is judged.** The network runs one engine, the in-wasm meter, under
//!   which a too-deep recursion is the meter's deterministic depth limit: no verdict is
//!   "not reproducible". A receipt that is false by its form (signed for another engine,
//!   or claiming more fuel than the task's limit: [`ReceiptBody::form_fault`]) is refused
//!   before it is acknowledged and is itself the evidence: the fraud proof needs no
//!   re-execution, by its prover or by anyone else.
//! - A mismatch becomes a **fraud proof** signed by this validator, stored, gossiped; the
//!   worker is blacklisted (no more tasks, results refused), every result it delivered in
//!   jobs this validator holds is withdrawn and its task runs again on another worker.
//! - A proof gossiped by another validator is acted on only after this validator has
//!   re-run the task itself and got the proof's observation; a forged proof is refused.

use super::*;
use crate::store::Refusal;
use smartnodes_runtime::TaskInput;

/// Refused proofs remembered at most (beyond that they are re-checked when they come
/// again, which costs a re-execution but nothing else).
const MAX_REFUSED: usize = 10_000;

/// A job's re-execution so far: the fuel of its accepted results and of those sampled
/// for a check (as their receipts claim it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Budget {
    /// Fuel of the accepted results.
    pub accepted: u64,
    /// Fuel of the results sampled for a check.
    pub sampled: u64,
}

/// The probability that a worker's accepted result is re-executed — the whole rule, pure.
///
/// - `base` is the job's sample rate (the highest of the validator's default and the
///   job's own): every result, any worker's, is checked at least this often. This is the
///   rate `smartnodes economics` prices cheating at.
/// - A worker earns trust with its run of verified results (`streak`): its *wanted* rate
///   is `0.5^(streak / 10)` — every result of a new worker, half of them after 10 verified.
/// - The part of the wanted rate above `base` is paid from the job's check budget: it
///   applies only while the fuel sampled so far is under `budget` × the job's accepted fuel
///   (this result's included); beyond it, the result is checked at `base`. So however many
///   new workers a job meets, the share of its fuel re-executed stays near
///   `max(base, budget)` (over it by one result at most, while sampled fuel catches up),
///   and a job among trusted workers costs `base`.
///
/// A cheater is caught on each wrong result with probability at least `base`, and with its
/// wanted rate (1 for a new worker) while the job's budget lasts: a new worker among a few
/// is checked on nearly everything, one in a crowd of new workers on about `budget` of its
/// results.
pub(crate) fn check_rate(base: f64, streak: u64, budget: f64, spent: Budget, fuel: u64) -> f64 {
    let base = base.clamp(0.0, 1.0);
    let wanted = 0.5f64.powf(streak as f64 / 10.0).max(base);
    let limit = budget.clamp(0.0, 1.0) * spent.accepted.saturating_add(fuel) as f64;
    if (spent.sampled as f64) < limit {
        wanted
    } else {
        base
    }
}

/// What a check concluded.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Finding {
    /// The receipt is right.
    Verified(Observed),
    /// The receipt is wrong: here is what the task really gives.
    Mismatch(Observed),
}

impl Validator {
    /// Whether `peer` is blacklisted; the proof id if it is.
    pub(super) fn blacklisted(&self, peer: &PeerId) -> Option<Hash> {
        self.state
            .lock()
            .expect("poisoned")
            .blacklist
            .get(peer)
            .copied()
    }

    /// The sampling draw for an accepted receipt, under the state lock: the rate is
    /// [`check_rate`] of the worker's streak and the job's budget, which the draw updates.
    pub(super) fn sample(
        &self,
        st: &mut State,
        receipt: &Receipt,
        spec: &JobSpec,
        worker: &PeerId,
    ) -> bool {
        let streak = self
            .store
            .reputation_of(&worker.to_bytes())
            .map_or(0, |r| r.streak);
        let base = f64::from(self.sample_ppm.max(spec.sample_ppm)) / 1e6;
        let budget = f64::from(self.check_budget_ppm) / 1e6;
        let fuel = receipt.body.fuel_used;
        let mut spent = st
            .jobs
            .get(&receipt.body.job_id)
            .map(|m| m.budget)
            .unwrap_or_default();
        let rate = check_rate(base, streak, budget, spent, fuel);
        let mut bytes = self.secret.to_vec();
        bytes.extend_from_slice(&receipt.hash());
        let h = sha256(&bytes);
        let draw = u64::from_be_bytes(h[..8].try_into().expect("8 bytes")) as f64 / u64::MAX as f64;
        let sampled = draw < rate;
        spent.accepted = spent.accepted.saturating_add(fuel);
        if sampled {
            spent.sampled = spent.sampled.saturating_add(fuel);
        }
        if let Some(meta) = st.jobs.get_mut(&receipt.body.job_id) {
            meta.budget = spent;
        }
        sampled
    }

    /// A job's budget as the store knows it (on recovery): its accepted fuel, and the fuel
    /// of its re-executions plus that of the receipts still waiting for theirs.
    pub(super) fn budget_of(
        &self,
        job: &Hash,
        pending_fuel: &HashMap<Hash, u64>,
    ) -> Result<Budget, StoreError> {
        let stats = self.store.jobstats.get(job)?.unwrap_or_default();
        Ok(Budget {
            accepted: stats.total_fuel,
            sampled: stats
                .verify_fuel
                .saturating_add(pending_fuel.get(job).copied().unwrap_or(0)),
        })
    }

    /// The verification lane: re-executes sampled receipts one at a time, oldest job first.
    pub(super) async fn check_lane(self: Arc<Self>) {
        loop {
            let next = match self.store.checks.first() {
                Ok(n) => n,
                Err(e) => {
                    tracing::error!("reading the checks queue: {e}");
                    None
                }
            };
            let Some((key, receipt)) = next else {
                self.checks.notified().await;
                continue;
            };
            if let Err(e) = self.check(&key, &receipt).await {
                // A host failure (disk, missing blob): try again later, never a verdict.
                tracing::warn!("checking a receipt failed, retrying: {e}");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }

    /// Runs `task` in this validator's sandbox.
    async fn reexecute(&self, task: &TaskSpec) -> Result<Observed, String> {
        let local = |id: &Hash, what: &str| -> Result<Vec<u8>, String> {
            Ok(self
                .store
                .blob(id)
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("the {what} is not here"))?
                .to_vec())
        };
        let module = local(&task.module, "module")?;
        let input = local(&task.input, "input")?;
        let seed = JobSpec::seed(&task.job_id, task.index);
        let limits = task.limits.to_runtime();
        let runtime = self.runtime.clone();
        let outcome = tokio::task::spawn_blocking(move || {
            runtime.run(&module, &TaskInput::new(input).with_seed(seed), &limits)
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
        Ok(Observed {
            verdict: outcome.verdict.code(),
            output_hash: outcome.output_hash,
            fuel_used: outcome.fuel_used,
            engine: self.runtime.fingerprint().0,
        })
    }

    /// The network's engine (this validator's: a node with another one cannot join).
    pub(super) fn engine(&self) -> Hash {
        self.runtime.fingerprint().0
    }

    /// Re-runs the task of `receipt` and compares (engine included: a receipt accepted
    /// here is for the network's engine, `on_result` refuses the others).
    async fn judge(&self, task: &TaskSpec, receipt: &Receipt) -> Result<Finding, String> {
        let observed = self.reexecute(task).await?;
        Ok(if observed == Observed::claimed(&receipt.body) {
            Finding::Verified(observed)
        } else {
            Finding::Mismatch(observed)
        })
    }

    /// Checks one sampled receipt and records the conclusion.
    async fn check(self: &Arc<Self>, key: &[u8], receipt: &Receipt) -> Result<(), String> {
        let fail = |e: StoreError| e.to_string();
        let (job_id, index) = split_task_key(key).ok_or("a bad key in the checks queue")?;
        let spec = self
            .store
            .jobs
            .get(&job_id)
            .map_err(fail)?
            .ok_or("a check for an unknown job")?
            .spec;
        let task = TaskSpec::of(&spec, job_id, index).ok_or("a check for no task")?;
        let worker = receipt.verify().map_err(|e| e.to_string())?;
        // Still the task's accepted result? (It may have been withdrawn meanwhile.)
        let current = self.store.receipts.get(key).map_err(fail)?;
        let finding = if current.as_ref() == Some(receipt) {
            Some(self.judge(&task, receipt).await?)
        } else {
            None
        };
        let worker_key = worker.to_bytes();
        // A re-execution that concluded counts as a sample, whichever way it went.
        if let Some(Finding::Verified(observed) | Finding::Mismatch(observed)) = &finding {
            let outcome = match &finding {
                Some(Finding::Verified(_)) => "verified",
                _ => "fraud",
            };
            self.metrics.verified(outcome, observed.fuel_used);
            self.bump_stats(&job_id, |s| {
                s.sampled += 1;
                s.verify_fuel = s.verify_fuel.saturating_add(observed.fuel_used);
            })
            .map_err(fail)?;
        }
        match &finding {
            Some(Finding::Verified(_)) => {
                self.store
                    .update_reputation(&worker_key, |r| {
                        r.verified += 1;
                        r.streak += 1;
                        r.score += 5;
                    })
                    .map_err(fail)?;
                if let Some(w) = self
                    .state
                    .lock()
                    .expect("poisoned")
                    .workers
                    .get_mut(&worker)
                {
                    w.reputation += 5;
                }
            }
            Some(Finding::Mismatch(observed)) => {
                self.prove(task, receipt.clone(), *observed, worker)
                    .await
                    .map_err(fail)?;
            }
            None => {}
        }
        // Done with this check (unless a newer receipt for the task took its place in the
        // queue meanwhile): the job may be finished now.
        let finished = {
            let mut st = self.state.lock().expect("poisoned");
            if self.store.checks.get(key).map_err(fail)?.as_ref() == Some(receipt) {
                self.store.checks.remove(key).map_err(fail)?;
                Self::uncount_check(&mut st, &job_id);
            }
            let left = st.pending_checks.get(&job_id).copied().unwrap_or(0);
            let mut progress = self.store.progress.get(&job_id).map_err(fail)?;
            let finished = left == 0
                && progress.as_ref().is_some_and(|p| {
                    p.state == JobState::Running && p.done as usize >= spec.inputs.len()
                });
            if finished {
                if let Some(p) = progress.as_mut() {
                    p.state = JobState::Done;
                    self.store.progress.insert(&job_id, p).map_err(fail)?;
                }
                st.jobs.remove(&job_id);
            }
            finished
        };
        // A verified check need not wait for the disk: lost in a crash, the receipt is
        // still in `checks` and is simply checked again.
        if finished {
            tracing::info!(job = %hex::encode(job_id), "job done (its sampled results checked)");
        }
        self.schedule();
        Ok(())
    }

    /// Signs, stores and gossips a fraud proof that `receipt` (by `worker`) is false, and
    /// convicts the worker: `observed` is what re-running `task` gave, or for a receipt
    /// false by its form ([`ReceiptBody::form_fault`]) the receipt restated on the
    /// network's engine. Returns the proof's id.
    pub(super) async fn prove(
        self: &Arc<Self>,
        task: TaskSpec,
        receipt: Receipt,
        observed: Observed,
        worker: PeerId,
    ) -> Result<Hash, StoreError> {
        tracing::warn!(
            %worker,
            job = %hex::encode(task.job_id),
            index = task.index,
            claimed = ?Observed::claimed(&receipt.body),
            ?observed,
            "FRAUD: a receipt is false"
        );
        let proof = FraudProof::sign(
            FraudClaim {
                task,
                receipt,
                observed,
                validator: self.client.peer_id().to_bytes(),
            },
            &self.keypair,
        );
        self.convict(worker, &proof)?;
        // On disk before anyone hears of it.
        self.store.flush().await?;
        let id = proof.id();
        let client = self.client.clone();
        tokio::spawn(async move {
            client
                .publish(protocols::TOPIC_FRAUD, Gossip::Fraud(Box::new(proof)))
                .await;
        });
        Ok(id)
    }

    /// One check fewer pending for `job` (called with the state locked, with the removal of
    /// its key from the `checks` tree).
    fn uncount_check(st: &mut State, job: &Hash) {
        if let Some(n) = st.pending_checks.get_mut(job) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                st.pending_checks.remove(job);
            }
        }
    }

    fn bump_stats(&self, job: &Hash, f: impl FnMut(&mut JobStats)) -> Result<(), StoreError> {
        self.store.jobstats.update(job, f).map(|_| ())
    }

    /// Acts on a proven fraud: stores the proof, blacklists the worker, drops it and
    /// withdraws every result it delivered in the jobs this validator holds.
    fn convict(self: &Arc<Self>, worker: PeerId, proof: &FraudProof) -> Result<(), StoreError> {
        let id = proof.id();
        self.store.frauds.insert(&id, proof)?;
        self.metrics.frauds_proven.inc();
        // Epochs: the worker's uncounted receipts are forfeited and the next summary
        // blacklists it on chain (with the smallest proof id known, so that validators
        // that caught it separately agree).
        if let Some(e) = &self.epochs {
            e.blacklist(worker, id);
        }
        if self.blacklisted(&worker).is_some() {
            return Ok(());
        }
        self.store.update_reputation(&worker.to_bytes(), |r| {
            r.blacklisted = Some(id);
            r.streak = 0;
        })?;
        self.state
            .lock()
            .expect("poisoned")
            .blacklist
            .insert(worker, id);
        tracing::warn!(%worker, proof = %hex::encode(id), "worker blacklisted");
        self.drop_worker(&worker, "blacklisted");
        // Every result of the cheat, in every job here (finished ones too), runs again.
        let mut tasks = Vec::new();
        let worker_bytes = worker.to_bytes();
        for (key, receipt) in self.store.receipts.scan(&[])? {
            if receipt.body.worker == worker_bytes {
                if let Some(id) = split_task_key(&key) {
                    tasks.push(id);
                }
            }
        }
        self.withdraw(&tasks, true)?;
        Ok(())
    }

    /// Withdraws the accepted results of `tasks` (moving their receipts to `revoked` when
    /// `fraud`) and queues the tasks again; reopens their jobs.
    fn withdraw(self: &Arc<Self>, tasks: &[TaskId], fraud: bool) -> Result<(), StoreError> {
        let mut st = self.state.lock().expect("poisoned");
        let mut count = 0;
        for &(job_id, index) in tasks {
            let key = task_key(&job_id, index);
            let Some(receipt) = self.store.receipts.get(&key)? else {
                continue;
            };
            let Some(record) = self.store.jobs.get(&job_id)? else {
                continue;
            };
            self.store.receipts.remove(&key)?;
            // Its check, if one is queued, is moot now.
            if self.store.checks.get(&key)?.is_some() {
                self.store.checks.remove(&key)?;
                Self::uncount_check(&mut st, &job_id);
            }
            if fraud {
                let mut rkey = job_id.to_vec();
                rkey.extend_from_slice(&receipt.hash());
                self.store.revoked.insert(&rkey, &receipt)?;
                self.bump_stats(&job_id, |s| s.revoked += 1)?;
            }
            let attempts = self.store.tasks.get(&key)?.map_or(0, |t| t.attempts);
            self.store.tasks.insert(
                &key,
                &TaskRecord {
                    state: TaskState::Queued,
                    attempts,
                },
            )?;
            if let Some(mut p) = self.store.progress.get(&job_id)? {
                p.done = p.done.saturating_sub(1);
                p.state = JobState::Running;
                self.store.progress.insert(&job_id, &p)?;
            }
            st.jobs.entry(job_id).or_insert_with(|| JobMeta {
                owner: peer_of(&record.spec.owner),
                spec: Arc::new(record.spec.clone()),
                // Counted afresh: the reopened job's checks start within its budget.
                budget: Budget::default(),
            });
            st.queue.push_front((job_id, index));
            count += 1;
        }
        drop(st);
        if count > 0 {
            tracing::info!(count, fraud, "results withdrawn; their tasks run again");
        }
        Ok(())
    }

    /// A fraud proof from another validator: acted on only if it re-checks here.
    pub(super) async fn on_fraud_gossip(self: Arc<Self>, proof: FraudProof) {
        let id = proof.id();
        if matches!(self.store.frauds.get(&id), Ok(Some(_)))
            || matches!(self.store.refused.get(&id), Ok(Some(_)))
        {
            return;
        }
        match self.recheck(&proof).await {
            Ok(worker) => {
                tracing::warn!(%worker, proof = %hex::encode(id), "a fraud proof from another validator re-checks");
                if let Err(e) = self.convict(worker, &proof) {
                    tracing::error!("recording a fraud: {e}");
                }
                let _ = self.store.flush().await;
                self.schedule();
            }
            Err(why) => {
                tracing::warn!(proof = %hex::encode(id), "a fraud proof was refused: {why}");
                // Remembered (so it is not re-run again), within a bound.
                if self.store.refused.len() < MAX_REFUSED {
                    let refusal = Refusal { proof, reason: why };
                    if let Err(e) = self.store.refused.insert(&id, &refusal) {
                        tracing::error!("recording a refused proof: {e}");
                    }
                }
            }
        }
    }

    /// Checks a fraud proof by re-running its task: it holds only if this validator gets
    /// exactly the proof's observation (and so not the receipt's). Returns the worker.
    pub(crate) async fn recheck(&self, proof: &FraudProof) -> Result<PeerId, String> {
        let (validator, worker) = proof.check_form()?;
        let task = &proof.claim.task;
        // False by its form: the worker's own signature is the evidence.
        if let Some(why) = proof
            .claim
            .receipt
            .body
            .form_fault(task.limits.fuel, &self.engine())
        {
            tracing::info!(%worker, "a fraud proof holds by the receipt's form: {why}");
            return Ok(worker);
        }
        if task.limits.check().is_err() {
            return Err("the task's limits are invalid".into());
        }
        let max_module = smartnodes_runtime::Limits::DEFAULT.max_module_bytes;
        for (blob, max) in [(task.module, max_module), (task.input, limits::MAX_BLOB)] {
            if !self.store.has_blob(&blob).map_err(|e| e.to_string())? {
                self.blobs
                    .fetch(validator, blob, max)
                    .await
                    .map_err(|e| format!("fetching the task's blobs from the prover: {e}"))?;
            }
        }
        let observed = self.reexecute(task).await?;
        if observed != proof.claim.observed {
            return Err(format!(
                "re-running the task gives {observed:?}, not the proof's {:?}",
                proof.claim.observed
            ));
        }
        Ok(worker)
    }
}

#[cfg(test)]
mod tests {
    use super::{check_rate, Budget};
    use rand::{Rng, SeedableRng};

    #[test]
    fn a_new_worker_is_checked_on_everything_while_the_budget_lasts() {
        let fresh = Budget::default();
        assert_eq!(check_rate(0.05, 0, 0.2, fresh, 100), 1.0);
        // Half its results after 10 verified, never below the sample rate.
        assert!((check_rate(0.05, 10, 0.2, fresh, 100) - 0.5).abs() < 1e-12);
        assert_eq!(check_rate(0.05, 1000, 0.2, fresh, 100), 0.05);
        // A job asking for more than the wanted rate gets it.
        assert_eq!(check_rate(0.8, 10, 0.2, fresh, 100), 0.8);
    }

    #[test]
    fn past_the_budget_a_new_worker_is_checked_at_the_sample_rate() {
        // 200 of 1,000 fuel sampled with a budget of 20 % (this result's 100 included:
        // 200 < 0.2 * 1,100 = 220): still within.
        let spent = Budget {
            accepted: 1_000,
            sampled: 200,
        };
        assert_eq!(check_rate(0.05, 0, 0.2, spent, 100), 1.0);
        let spent = Budget {
            accepted: 1_000,
            sampled: 220,
        };
        assert_eq!(check_rate(0.05, 0, 0.2, spent, 100), 0.05);
        // A zero budget: the sample rate only.
        assert_eq!(check_rate(0.05, 0, 0.0, Budget::default(), 100), 0.05);
    }

    /// One job of `tasks` equal tasks spread over `workers` new workers, one of them
    /// cheating on `cheat_share` of its tasks: (share of fuel re-executed, whether a wrong
    /// result was sampled).
    fn job(rng: &mut impl Rng, workers: usize, tasks: usize, cheat_share: f64) -> (f64, bool) {
        let (base, budget) = (0.05, 0.2);
        let mut spent = Budget::default();
        let mut streak = vec![0u64; workers];
        let mut caught = false;
        for _ in 0..tasks {
            let w = rng.gen_range(0..workers);
            let rate = check_rate(base, streak[w], budget, spent, 1_000);
            spent.accepted += 1_000;
            if rng.gen::<f64>() < rate {
                spent.sampled += 1_000;
                if w == 0 && rng.gen::<f64>() < cheat_share {
                    caught = true;
                } else {
                    streak[w] += 1;
                }
            }
        }
        (spent.sampled as f64 / spent.accepted as f64, caught)
    }

    /// 2,000 jobs with a 30 % cheater among `workers`: (mean cost, worst cost, share of
    /// jobs in which it was caught).
    fn trials(rng: &mut impl Rng, workers: usize, tasks: usize) -> (f64, f64, f64) {
        let n = 2_000;
        let (mut caught, mut worst, mut mean) = (0, 0.0f64, 0.0);
        for _ in 0..n {
            let (share, c) = job(rng, workers, tasks, 0.3);
            worst = worst.max(share);
            mean += share / n as f64;
            caught += usize::from(c);
        }
        (mean, worst, caught as f64 / n as f64)
    }

    #[test]
    fn a_crowd_of_new_workers_costs_the_budget_and_a_cheater_among_them_is_still_caught() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(22);
        // 50 new workers, 256 tasks: about 5 tasks each, all of them "new".
        let (mean, worst, rate) = trials(&mut rng, 50, 256);
        // The cost: the budget on average (measured 20.3 %), over it by a few results at
        // worst (sampled at the base rate after the budget ran out; measured 21.1 %).
        assert!(mean < 0.2 + 1.0 / 256.0, "mean cost {mean}");
        assert!(worst < 0.2 + 4.0 / 256.0, "worst cost {worst}");
        // The cheater's ~5 results, 30 % of them wrong (~1.5), each checked with about the
        // budget's probability: caught in a job about 1 - (1 - 0.2)^1.5 = 28 % of the time
        // (measured 27.6 %); over the 20 results it delivers in the 5 x 50 devnet's four
        // jobs, about 1 - 0.8^6 = 74 %. Far above the sample-rate bound (7 % a job).
        assert!(rate > 0.24, "caught in {rate} of jobs");
        // Three new workers, 64 tasks: the cost is the budget too, but each worker's share
        // of it is larger.
        let (mean, worst, rate) = trials(&mut rng, 3, 64);
        // Measured: mean 20.6 %, worst 25 % (3 results over, on 64).
        assert!(mean < 0.2 + 1.0 / 64.0, "mean cost {mean}");
        assert!(worst < 0.2 + 4.0 / 64.0, "worst cost {worst}");
        // ~21 results, ~6 wrong, most of the budget spent on them early: measured 77 %.
        assert!(rate > 0.7, "caught in {rate} of jobs");
    }
}
