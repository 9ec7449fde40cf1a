// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {SmartnodesToken} from "./SmartnodesToken.sol";

/// @title SmartnodesCore: registry, job escrow, epochs, votes, rewards, reputation and blacklist.
/// @notice Where results, reputations and rewards become final.
///
/// An epoch is the period between two executions. Once `epochDuration` has passed since the
/// last execution, proposals for the current epoch open. Proposers are drawn per round from
/// the validator set with a seed every validator can compute (`lastSummaryHash`, epoch,
/// round). A proposal is `(epoch, summaryHash)` where `summaryHash = keccak256(abi.encode(s))`
/// commits to the whole `EpochSummary` that will be executed. Every active validator has one
/// vote per epoch at a time. A proposal executes, with the full summary as calldata, once the
/// votes of still-active voters pass `thresholdNumerator / thresholdDenominator` of the active
/// validator set. Rounds decide who may propose, and when a vote may move: a validator may
/// move its vote to another proposal in a later round than the one it was cast in (a vote
/// given before its validator learnt something, a fraud proof say, would otherwise split the
/// votes for good and stall the epoch). Proposals are never deleted, so an expired round never
/// wipes an honest pending proposal.
///
/// Per-worker and per-job data lives in Merkle roots (sorted-pair keccak, OpenZeppelin
/// `MerkleProof` compatible), so executing an epoch costs the same for 10 or 10,000 workers.
/// Leaves (all `keccak256(abi.encodePacked(...))`):
/// - worker reward: `(address worker, uint256 amount, uint256 epoch)` (84 bytes)
/// - job result: `(bytes32 jobId, uint8 result, uint256 epoch)` (65 bytes), result 1 completed,
///   2 failed, 3 expired
/// - reputation: `(address worker, uint64 score, uint256 epoch)` (60 bytes)
/// None is 64 bytes long, so no leaf can be confused with an inner node.
contract SmartnodesCore {
    // ------------------------------------------------------------------ types

    /// @notice The three roles an address can register for (one registration per role).
    enum Role {
        User,
        Worker,
        Validator
    }

    /// @notice Everything the contract is configured with. Fixed at deployment.
    struct Params {
        /// Seconds from the last execution until proposals for the next epoch open.
        uint64 epochDuration;
        /// Seconds a proposer round lasts; a new set of proposers is drawn each round.
        uint64 roundDuration;
        /// Proposers drawn per round (capped by the validator count).
        uint32 proposersPerRound;
        /// A proposal executes when `votes * denominator > validators * numerator`.
        uint32 thresholdNumerator;
        uint32 thresholdDenominator;
        /// Upper bound on the validator set, which bounds every loop over it.
        uint32 maxValidators;
        /// Seconds between an unlock request and the collateral being withdrawable.
        uint64 unlockDelay;
        uint256 minValidatorCollateral;
        uint256 minUserCollateral;
        /// SNO minted per executed epoch during era 0.
        uint256 initialEmission;
        /// Emission never decays below this (the tail).
        uint256 tailEmission;
        /// Executed epochs per era.
        uint64 epochsPerEra;
        /// Each era the emission is multiplied by `eraDecayBps / 10_000`.
        uint16 eraDecayBps;
        /// Shares of (emission + released job payments), in basis points. The treasury gets
        /// the rest, plus whatever the workers' committed total leaves unassigned.
        uint16 workerBps;
        uint16 validatorBps;
        address treasury;
    }

    /// @notice A worker proven to have cheated, with the hash of the fraud proof.
    struct BlacklistEntry {
        address worker;
        bytes32 evidence;
    }

    /// @notice Everything an executed epoch changes. Its keccak256(abi.encode(...)) is the
    /// summary hash that proposals and votes are about, so nothing here can differ from
    /// what the voters agreed on.
    struct EpochSummary {
        uint256 epoch;
        /// Root over job-result leaves (completed, failed, expired).
        bytes32 jobResultsRoot;
        /// Sum of the escrowed payments of the jobs completed in this epoch; moved from
        /// escrow into this epoch's reward pot.
        uint256 releasedPayments;
        /// Root over worker reward leaves.
        bytes32 workerRewardRoot;
        /// Sum of all worker reward leaves: claims of this epoch can never exceed it.
        uint256 workerRewardTotal;
        /// Root over the full worker reputation table after this epoch.
        bytes32 reputationRoot;
        BlacklistEntry[] blacklist;
        address[] removeValidators;
    }

    struct Registration {
        bytes32 nodeKeyHash;
        uint256 collateral;
        uint64 unlockAt;
        bool active;
    }

    enum JobState {
        None,
        Escrowed,
        Refunded
    }

    struct Job {
        address user;
        uint64 deadline;
        JobState state;
        uint256 payment;
        uint256 requestedInEpoch;
    }

    struct Proposal {
        address proposer;
        uint32 round;
        address[] voters;
    }

    struct EpochRecord {
        bytes32 summaryHash;
        bytes32 jobResultsRoot;
        bytes32 workerRewardRoot;
        bytes32 reputationRoot;
        uint256 workerRewardTotal;
        uint256 claimed;
        uint256 emission;
        uint256 releasedPayments;
        uint64 executedAt;
        uint32 votes;
    }

    uint8 public constant RESULT_COMPLETED = 1;
    uint8 public constant RESULT_FAILED = 2;
    uint8 public constant RESULT_EXPIRED = 3;
    uint256 public constant MAX_BLACKLIST_PER_EPOCH = 256;
    /// Bounds the emission loop: from this era on the emission is the tail.
    uint256 public constant MAX_ERAS = 256;
    uint16 internal constant BPS = 10_000;

    // ------------------------------------------------------------------ state

    SmartnodesToken public immutable token;
    Params internal _params;

    mapping(address => Registration)[3] internal _registrations;
    address[] internal _validatorSet;
    /// index + 1 into `_validatorSet`; 0 when absent
    mapping(address => uint256) internal _validatorIndex;
    mapping(address => bool) public blacklisted;
    mapping(address => bool) public validatorBanned;

    mapping(bytes32 => Job) internal _jobs;
    uint256 public totalEscrowed;

    /// The epoch the next execution will finalise (epochs start at 1).
    uint256 public currentEpoch;
    uint64 public epochStartedAt;
    /// Summary hash of the last executed epoch (zero before the first): the proposer seed.
    bytes32 public lastSummaryHash;

    mapping(uint256 => mapping(bytes32 => Proposal)) internal _proposals;
    mapping(uint256 => bytes32[]) internal _proposalHashes;
    mapping(uint256 => mapping(address => bytes32)) public voteOf;
    /// The round in which each validator's current vote of the epoch was cast.
    mapping(uint256 => mapping(address => uint32)) public voteRoundOf;

    mapping(uint256 => EpochRecord) internal _epochs;
    mapping(bytes32 => bool) public rewardLeafClaimed;

    // ------------------------------------------------------------------ events

    event Registered(Role indexed role, address indexed account, bytes32 nodeKeyHash, uint256 collateral);
    event UnlockRequested(Role indexed role, address indexed account, uint64 unlockAt);
    event CollateralWithdrawn(Role indexed role, address indexed account, uint256 amount);
    event JobRequested(
        bytes32 indexed jobId, address indexed user, uint256 payment, uint64 deadline, uint256 epoch
    );
    event JobRefunded(bytes32 indexed jobId, address indexed user, uint256 amount, uint8 result);
    event Proposed(uint256 indexed epoch, bytes32 indexed summaryHash, address indexed proposer, uint32 round);
    event Voted(uint256 indexed epoch, bytes32 indexed summaryHash, address indexed validator, uint256 votes);
    event VoteWithdrawn(uint256 indexed epoch, bytes32 indexed summaryHash, address indexed validator, uint256 votes);
    event EpochExecuted(
        uint256 indexed epoch,
        bytes32 indexed summaryHash,
        bytes32 jobResultsRoot,
        bytes32 workerRewardRoot,
        uint256 workerRewardTotal,
        bytes32 reputationRoot,
        uint256 emission,
        uint256 releasedPayments
    );
    event ValidatorRewarded(uint256 indexed epoch, address indexed validator, uint256 amount);
    event TreasuryPaid(uint256 indexed epoch, uint256 amount);
    event Blacklisted(address indexed worker, bytes32 evidence, uint256 indexed epoch);
    event ValidatorRemoved(address indexed validator, uint256 indexed epoch);
    event RewardClaimed(uint256 indexed epoch, address indexed worker, uint256 amount);

    // ------------------------------------------------------------------ errors

    error InvalidParams();
    error GenesisLengthMismatch();
    error ZeroNodeKey();
    error AlreadyRegistered(Role role, address account);
    error CollateralPending(Role role, address account);
    error NotRegistered(Role role, address account);
    error InsufficientCollateral(uint256 given, uint256 required);
    error UnexpectedCollateral();
    error AccountBlacklisted(address account);
    error ValidatorIsBanned(address account);
    error ValidatorSetFull();
    error NothingToWithdraw();
    error UnlockNotReady(uint64 unlockAt);
    error InvalidJob();
    error JobExists(bytes32 jobId);
    error NotJobOwner(bytes32 jobId, address caller);
    error JobNotEscrowed(bytes32 jobId);
    error NotRefundable(uint8 result);
    error EpochNotExecuted(uint256 epoch);
    error InvalidProof();
    error NotValidator(address caller);
    error WrongEpoch(uint256 given, uint256 current);
    error ProposalsNotOpen(uint64 opensAt);
    error NotProposer(address caller, uint32 round);
    error AlreadyVoted(address validator, uint256 epoch);
    error ProposalExists(bytes32 summaryHash);
    error UnknownProposal(uint256 epoch, bytes32 summaryHash);
    error ThresholdNotReached(uint256 votes, uint256 validators);
    error ReleaseExceedsEscrow(uint256 released, uint256 escrowed);
    error RewardTotalTooHigh(uint256 total, uint256 workerPot);
    error TooManyEntries();
    error AlreadyClaimed();
    error ClaimExceedsTotal(uint256 claimed, uint256 total);
    error TransferFailed();

    // ------------------------------------------------------------------ setup

    /// @param initialParams Fixed configuration (see `Params`).
    /// @param genesisHolders Accounts that receive the genesis SNO allocation.
    /// @param genesisAmounts Their amounts (same length).
    constructor(Params memory initialParams, address[] memory genesisHolders, uint256[] memory genesisAmounts) {
        if (
            initialParams.thresholdDenominator == 0 || initialParams.thresholdNumerator >= initialParams.thresholdDenominator
                || uint256(initialParams.thresholdNumerator) * 2 < initialParams.thresholdDenominator
                || initialParams.epochDuration == 0 || initialParams.roundDuration == 0 || initialParams.proposersPerRound == 0
                || initialParams.maxValidators == 0 || initialParams.epochsPerEra == 0 || initialParams.eraDecayBps > BPS
                || uint256(initialParams.workerBps) + initialParams.validatorBps > BPS || initialParams.treasury == address(0)
                || initialParams.minValidatorCollateral == 0
        ) revert InvalidParams();
        if (genesisHolders.length != genesisAmounts.length) revert GenesisLengthMismatch();
        _params = initialParams;
        token = new SmartnodesToken();
        for (uint256 i = 0; i < genesisHolders.length; ++i) {
            token.mint(genesisHolders[i], genesisAmounts[i]);
        }
        currentEpoch = 1;
        epochStartedAt = uint64(block.timestamp);
    }

    // ------------------------------------------------------------------ registry

    /// @notice Register the caller as a user, locking `collateral` SNO (approve it first).
    function registerUser(bytes32 nodeKeyHash, uint256 collateral) external {
        if (collateral < _params.minUserCollateral) {
            revert InsufficientCollateral(collateral, _params.minUserCollateral);
        }
        _register(Role.User, nodeKeyHash, collateral);
    }

    /// @notice Register the caller as a worker. Workers lock no collateral; a blacklisted
    /// address can never register as a worker again.
    function registerWorker(bytes32 nodeKeyHash) external {
        _register(Role.Worker, nodeKeyHash, 0);
    }

    /// @notice Register the caller as a validator, locking `collateral` SNO (approve it first).
    function registerValidator(bytes32 nodeKeyHash, uint256 collateral) external {
        if (collateral < _params.minValidatorCollateral) {
            revert InsufficientCollateral(collateral, _params.minValidatorCollateral);
        }
        if (validatorBanned[msg.sender]) revert ValidatorIsBanned(msg.sender);
        if (_validatorSet.length >= _params.maxValidators) revert ValidatorSetFull();
        _register(Role.Validator, nodeKeyHash, collateral);
        _validatorSet.push(msg.sender);
        _validatorIndex[msg.sender] = _validatorSet.length;
    }

    function _register(Role role, bytes32 nodeKeyHash, uint256 collateral) internal {
        if (nodeKeyHash == bytes32(0)) revert ZeroNodeKey();
        if (role != Role.User && blacklisted[msg.sender]) revert AccountBlacklisted(msg.sender);
        Registration storage r = _registrations[uint8(role)][msg.sender];
        if (r.active) revert AlreadyRegistered(role, msg.sender);
        if (r.collateral != 0) revert CollateralPending(role, msg.sender);
        r.nodeKeyHash = nodeKeyHash;
        r.collateral = collateral;
        r.unlockAt = 0;
        r.active = true;
        if (collateral != 0) _pull(msg.sender, collateral);
        emit Registered(role, msg.sender, nodeKeyHash, collateral);
    }

    /// @notice Leave a role. The registration stops counting at once (a validator leaves the
    /// set and can no longer propose or vote); its collateral can be withdrawn after
    /// `unlockDelay`.
    function requestUnlock(Role role) external {
        Registration storage r = _registrations[uint8(role)][msg.sender];
        if (!r.active) revert NotRegistered(role, msg.sender);
        uint64 unlockAt = uint64(block.timestamp) + _params.unlockDelay;
        r.active = false;
        r.unlockAt = unlockAt;
        if (role == Role.Validator) _removeFromSet(msg.sender);
        // Nothing locked (a worker): nothing to wait for.
        if (r.collateral == 0) delete _registrations[uint8(role)][msg.sender];
        emit UnlockRequested(role, msg.sender, unlockAt);
    }

    /// @notice Withdraw collateral once the unlock delay has passed.
    function withdrawCollateral(Role role) external {
        Registration storage r = _registrations[uint8(role)][msg.sender];
        if (r.active || r.collateral == 0) revert NothingToWithdraw();
        if (block.timestamp < r.unlockAt) revert UnlockNotReady(r.unlockAt);
        uint256 amount = r.collateral;
        delete _registrations[uint8(role)][msg.sender];
        _push(msg.sender, amount);
        emit CollateralWithdrawn(role, msg.sender, amount);
    }

    // ------------------------------------------------------------------ jobs

    /// @notice Escrow `payment` SNO for job `jobId` (approve it first). Only active users.
    function requestJob(bytes32 jobId, uint256 payment, uint64 deadline) external {
        if (!_registrations[uint8(Role.User)][msg.sender].active) revert NotRegistered(Role.User, msg.sender);
        if (jobId == bytes32(0) || payment == 0 || deadline <= block.timestamp) revert InvalidJob();
        Job storage j = _jobs[jobId];
        if (j.state != JobState.None) revert JobExists(jobId);
        j.user = msg.sender;
        j.deadline = deadline;
        j.state = JobState.Escrowed;
        j.payment = payment;
        j.requestedInEpoch = currentEpoch;
        totalEscrowed += payment;
        _pull(msg.sender, payment);
        emit JobRequested(jobId, msg.sender, payment, deadline, currentEpoch);
    }

    /// @notice Refund a job that an executed epoch recorded as failed or expired.
    /// Only the job's user; once per job.
    function refundJob(bytes32 jobId, uint256 epoch, uint8 result, bytes32[] calldata proof) external {
        Job storage j = _jobs[jobId];
        if (j.user != msg.sender) revert NotJobOwner(jobId, msg.sender);
        if (j.state != JobState.Escrowed) revert JobNotEscrowed(jobId);
        if (result != RESULT_FAILED && result != RESULT_EXPIRED) revert NotRefundable(result);
        EpochRecord storage e = _epochs[epoch];
        if (e.executedAt == 0) revert EpochNotExecuted(epoch);
        bytes32 leaf = keccak256(abi.encodePacked(jobId, result, epoch));
        if (!MerkleProof.verifyCalldata(proof, e.jobResultsRoot, leaf)) revert InvalidProof();
        j.state = JobState.Refunded;
        uint256 amount = j.payment;
        totalEscrowed -= amount;
        _push(msg.sender, amount);
        emit JobRefunded(jobId, msg.sender, amount, result);
    }

    // ------------------------------------------------------------------ epochs

    /// @notice Propose summary `s` for the current epoch. Only a proposer drawn for the current
    /// round; the proposal counts as the proposer's vote. The summary is checked against the
    /// rules execution enforces (bounded lists, released payments within escrow, the workers'
    /// total within their share), so votes are never spent on a proposal that cannot execute.
    /// Only its hash is stored; the full summary stays in this call's calldata for anyone
    /// to read, and must be supplied again to `executeEpoch`. A proposer that already voted
    /// in an earlier round moves its vote to its proposal.
    function propose(EpochSummary calldata s) external returns (bytes32 summaryHash) {
        _requireValidator();
        uint256 epoch = currentEpoch;
        if (s.epoch != epoch) revert WrongEpoch(s.epoch, epoch);
        uint64 opensAt = proposalsOpenAt();
        if (block.timestamp < opensAt) revert ProposalsNotOpen(opensAt);
        uint32 round = _roundSince(opensAt);
        if (!_isProposer(msg.sender, epoch, round)) revert NotProposer(msg.sender, round);
        _checkSummary(s);
        summaryHash = keccak256(abi.encode(s));
        Proposal storage p = _proposals[epoch][summaryHash];
        if (p.proposer != address(0)) revert ProposalExists(summaryHash);
        _withdrawVote(epoch, round);
        p.proposer = msg.sender;
        p.round = round;
        p.voters.push(msg.sender);
        voteOf[epoch][msg.sender] = summaryHash;
        voteRoundOf[epoch][msg.sender] = round;
        _proposalHashes[epoch].push(summaryHash);
        emit Proposed(epoch, summaryHash, msg.sender, round);
        emit Voted(epoch, summaryHash, msg.sender, 1);
    }

    /// @notice Vote for an existing proposal of the current epoch. One vote per validator per
    /// epoch at a time: a validator that voted may move its vote to another proposal in a
    /// later round than the one it voted in.
    function vote(uint256 epoch, bytes32 summaryHash) external {
        _requireValidator();
        if (epoch != currentEpoch) revert WrongEpoch(epoch, currentEpoch);
        Proposal storage p = _proposals[epoch][summaryHash];
        if (p.proposer == address(0)) revert UnknownProposal(epoch, summaryHash);
        // A proposal exists, so proposals are open.
        uint32 round = _roundSince(proposalsOpenAt());
        if (voteOf[epoch][msg.sender] == summaryHash) revert AlreadyVoted(msg.sender, epoch);
        _withdrawVote(epoch, round);
        voteOf[epoch][msg.sender] = summaryHash;
        voteRoundOf[epoch][msg.sender] = round;
        p.voters.push(msg.sender);
        emit Voted(epoch, summaryHash, msg.sender, p.voters.length);
    }

    /// Takes the caller's vote of `epoch`, if any, off its proposal; only in a later `round`
    /// than it was cast in.
    function _withdrawVote(uint256 epoch, uint32 round) internal {
        bytes32 previous = voteOf[epoch][msg.sender];
        if (previous == bytes32(0)) return;
        if (round <= voteRoundOf[epoch][msg.sender]) revert AlreadyVoted(msg.sender, epoch);
        // Each validator is on at most one voter list per epoch: bounded by maxValidators.
        address[] storage voters = _proposals[epoch][previous].voters;
        uint256 n = voters.length;
        for (uint256 i = 0; i < n; ++i) {
            if (voters[i] == msg.sender) {
                voters[i] = voters[n - 1];
                voters.pop();
                break;
            }
        }
        delete voteOf[epoch][msg.sender];
        emit VoteWithdrawn(epoch, previous, msg.sender, voters.length);
    }

    /// @notice Execute the current epoch with the full summary. Only active validators. The
    /// summary's hash must be a proposal whose still-active voters pass the threshold.
    function executeEpoch(EpochSummary calldata s) external {
        _requireValidator();
        uint256 epoch = currentEpoch;
        if (s.epoch != epoch) revert WrongEpoch(s.epoch, epoch);
        bytes32 hash = keccak256(abi.encode(s));
        Proposal storage p = _proposals[epoch][hash];
        if (p.proposer == address(0)) revert UnknownProposal(epoch, hash);

        // Votes of validators that are still active. Bounded by maxValidators.
        address[] memory voters = p.voters;
        uint256 votes = 0;
        for (uint256 i = 0; i < voters.length; ++i) {
            if (_validatorIndex[voters[i]] != 0) voters[votes++] = voters[i];
        }
        if (!_passes(votes, _validatorSet.length)) revert ThresholdNotReached(votes, _validatorSet.length);

        currentEpoch = epoch + 1;
        epochStartedAt = uint64(block.timestamp);
        lastSummaryHash = hash;
        uint256 emission = _recordAndPay(s, hash, voters, votes);
        _applyBlacklist(s.blacklist, epoch);
        _applyRemovals(s.removeValidators, epoch);

        emit EpochExecuted(
            epoch,
            hash,
            s.jobResultsRoot,
            s.workerRewardRoot,
            s.workerRewardTotal,
            s.reputationRoot,
            emission,
            s.releasedPayments
        );
    }

    /// Record the epoch and pay its pot: emission + released payments, split between the
    /// workers' committed total (kept here for claims), the active voters and the treasury.
    function _recordAndPay(EpochSummary calldata s, bytes32 hash, address[] memory voters, uint256 votes)
        internal
        returns (uint256 emission)
    {
        uint256 epoch = s.epoch;
        if (s.releasedPayments > totalEscrowed) revert ReleaseExceedsEscrow(s.releasedPayments, totalEscrowed);
        totalEscrowed -= s.releasedPayments;
        emission = emissionAt(epoch);
        uint256 pot = emission + s.releasedPayments;
        uint256 workerPot = pot * _params.workerBps / BPS;
        if (s.workerRewardTotal > workerPot) revert RewardTotalTooHigh(s.workerRewardTotal, workerPot);
        uint256 perVoter = pot * _params.validatorBps / BPS / votes;

        EpochRecord storage e = _epochs[epoch];
        e.summaryHash = hash;
        e.jobResultsRoot = s.jobResultsRoot;
        e.workerRewardRoot = s.workerRewardRoot;
        e.reputationRoot = s.reputationRoot;
        e.workerRewardTotal = s.workerRewardTotal;
        e.emission = emission;
        e.releasedPayments = s.releasedPayments;
        e.executedAt = uint64(block.timestamp);
        e.votes = uint32(votes);

        if (emission != 0) token.mint(address(this), emission);
        if (perVoter != 0) {
            for (uint256 i = 0; i < votes; ++i) {
                _push(voters[i], perVoter);
                emit ValidatorRewarded(epoch, voters[i], perVoter);
            }
        }
        uint256 toTreasury = pot - s.workerRewardTotal - perVoter * votes;
        if (toTreasury != 0) _push(_params.treasury, toTreasury);
        emit TreasuryPaid(epoch, toTreasury);
    }

    function _applyBlacklist(BlacklistEntry[] calldata entries, uint256 epoch) internal {
        for (uint256 i = 0; i < entries.length; ++i) {
            address w = entries[i].worker;
            if (blacklisted[w]) continue;
            blacklisted[w] = true;
            if (_registrations[uint8(Role.Worker)][w].active) delete _registrations[uint8(Role.Worker)][w];
            emit Blacklisted(w, entries[i].evidence, epoch);
        }
    }

    function _applyRemovals(address[] calldata removed, uint256 epoch) internal {
        for (uint256 i = 0; i < removed.length; ++i) {
            address v = removed[i];
            if (validatorBanned[v]) continue;
            validatorBanned[v] = true;
            Registration storage r = _registrations[uint8(Role.Validator)][v];
            if (r.active) {
                r.active = false;
                r.unlockAt = uint64(block.timestamp) + _params.unlockDelay;
                _removeFromSet(v);
            }
            emit ValidatorRemoved(v, epoch);
        }
    }

    /// @notice Claim the caller's worker reward for `epoch`. The leaf binds caller, amount and
    /// epoch; each leaf pays once, and an epoch never pays more than its committed total.
    /// Claims for `epoch` open once the next epoch has executed: a worker proven a fraud
    /// meanwhile is blacklisted by that execution, and a blacklisted worker claims nothing,
    /// so work it was credited for before it was caught is forfeited.
    function claim(uint256 epoch, uint256 amount, bytes32[] calldata proof) external {
        EpochRecord storage e = _epochs[epoch];
        if (e.executedAt == 0) revert EpochNotExecuted(epoch);
        bytes32 leaf = keccak256(abi.encodePacked(msg.sender, amount, epoch));
        if (rewardLeafClaimed[leaf]) revert AlreadyClaimed();
        if (!MerkleProof.verifyCalldata(proof, e.workerRewardRoot, leaf)) revert InvalidProof();
        if (currentEpoch < epoch + 2) revert EpochNotExecuted(epoch + 1);
        if (blacklisted[msg.sender]) revert AccountBlacklisted(msg.sender);
        uint256 claimed = e.claimed + amount;
        if (claimed > e.workerRewardTotal) revert ClaimExceedsTotal(claimed, e.workerRewardTotal);
        rewardLeafClaimed[leaf] = true;
        e.claimed = claimed;
        _push(msg.sender, amount);
        emit RewardClaimed(epoch, msg.sender, amount);
    }

    // ------------------------------------------------------------------ views

    function params() external view returns (Params memory) {
        return _params;
    }

    function validators() external view returns (address[] memory) {
        return _validatorSet;
    }

    function registration(Role role, address account) external view returns (Registration memory) {
        return _registrations[uint8(role)][account];
    }

    function job(bytes32 jobId) external view returns (Job memory) {
        return _jobs[jobId];
    }

    function epochRecord(uint256 epoch) external view returns (EpochRecord memory) {
        return _epochs[epoch];
    }

    function proposal(uint256 epoch, bytes32 summaryHash)
        external
        view
        returns (address proposer, uint32 round, address[] memory voters)
    {
        Proposal storage p = _proposals[epoch][summaryHash];
        return (p.proposer, p.round, p.voters);
    }

    function proposalHashes(uint256 epoch) external view returns (bytes32[] memory) {
        return _proposalHashes[epoch];
    }

    /// @notice When proposals for the current epoch open.
    function proposalsOpenAt() public view returns (uint64) {
        return epochStartedAt + _params.epochDuration;
    }

    /// @notice The current round and its proposers. `open` is false (and the list empty)
    /// before proposals open.
    function currentProposers() external view returns (bool open, uint32 round, address[] memory list) {
        uint64 opensAt = proposalsOpenAt();
        if (block.timestamp < opensAt) return (false, 0, new address[](0));
        round = _roundSince(opensAt);
        return (true, round, proposersFor(currentEpoch, round));
    }

    /// @notice The proposers of `round` in `epoch` for the current validator set: `k` distinct
    /// validators drawn with `keccak256(abi.encode(lastSummaryHash, epoch, round, i))`.
    function proposersFor(uint256 epoch, uint32 round) public view returns (address[] memory list) {
        uint256 n = _validatorSet.length;
        uint256 k = _params.proposersPerRound < n ? _params.proposersPerRound : n;
        list = new address[](k);
        bool[] memory taken = new bool[](n);
        bytes32 seed = keccak256(abi.encode(lastSummaryHash, epoch, round));
        for (uint256 i = 0; i < k; ++i) {
            uint256 j = uint256(keccak256(abi.encode(seed, i))) % n;
            while (taken[j]) j = (j + 1) % n;
            taken[j] = true;
            list[i] = _validatorSet[j];
        }
    }

    /// @notice SNO minted when `epoch` executes: `initialEmission`, times `eraDecayBps/10_000`
    /// per completed era, never below `tailEmission`; from era `MAX_ERAS` on, the tail.
    function emissionAt(uint256 epoch) public view returns (uint256 amount) {
        uint256 era = epoch == 0 ? 0 : (epoch - 1) / _params.epochsPerEra;
        uint256 tail = _params.tailEmission;
        if (era >= MAX_ERAS) return tail;
        amount = _params.initialEmission;
        for (uint256 i = 0; i < era && amount > tail; ++i) {
            amount = amount * _params.eraDecayBps / BPS;
        }
        if (amount < tail) amount = tail;
    }

    /// @notice The canonical summary hash: `keccak256(abi.encode(s))`.
    function hashSummary(EpochSummary calldata s) external pure returns (bytes32) {
        return keccak256(abi.encode(s));
    }

    /// @notice Whether `votes` active votes pass the threshold for `validatorCount` validators.
    function thresholdPasses(uint256 votes, uint256 validatorCount) external view returns (bool) {
        return _passes(votes, validatorCount);
    }

    /// @notice Check a worker's reputation against the root recorded by `epoch`.
    function verifyReputation(address worker, uint64 score, uint256 epoch, bytes32[] calldata proof)
        external
        view
        returns (bool)
    {
        EpochRecord storage e = _epochs[epoch];
        if (e.executedAt == 0) return false;
        bytes32 leaf = keccak256(abi.encodePacked(worker, score, epoch));
        return MerkleProof.verifyCalldata(proof, e.reputationRoot, leaf);
    }

    // ------------------------------------------------------------------ internals

    /// The rules a summary must satisfy to execute, checked when it is proposed.
    /// (`executeEpoch` re-checks escrow and the worker share as it pays.)
    function _checkSummary(EpochSummary calldata s) internal view {
        if (s.blacklist.length > MAX_BLACKLIST_PER_EPOCH || s.removeValidators.length > _params.maxValidators) {
            revert TooManyEntries();
        }
        if (s.releasedPayments > totalEscrowed) revert ReleaseExceedsEscrow(s.releasedPayments, totalEscrowed);
        uint256 workerPot = (emissionAt(s.epoch) + s.releasedPayments) * _params.workerBps / BPS;
        if (s.workerRewardTotal > workerPot) revert RewardTotalTooHigh(s.workerRewardTotal, workerPot);
    }

    /// The current round of proposals that opened at `opensAt` (not in the future).
    function _roundSince(uint64 opensAt) internal view returns (uint32) {
        return uint32((block.timestamp - opensAt) / _params.roundDuration);
    }

    function _passes(uint256 votes, uint256 validatorCount) internal view returns (bool) {
        return votes != 0
            && votes * _params.thresholdDenominator > validatorCount * _params.thresholdNumerator;
    }

    function _requireValidator() internal view {
        if (_validatorIndex[msg.sender] == 0) revert NotValidator(msg.sender);
    }

    function _isProposer(address account, uint256 epoch, uint32 round) internal view returns (bool) {
        address[] memory list = proposersFor(epoch, round);
        for (uint256 i = 0; i < list.length; ++i) {
            if (list[i] == account) return true;
        }
        return false;
    }

    function _removeFromSet(address v) internal {
        uint256 idx = _validatorIndex[v];
        if (idx == 0) return;
        uint256 last = _validatorSet.length;
        if (idx != last) {
            address moved = _validatorSet[last - 1];
            _validatorSet[idx - 1] = moved;
            _validatorIndex[moved] = idx;
        }
        _validatorSet.pop();
        delete _validatorIndex[v];
    }

    function _pull(address from, uint256 amount) internal {
        if (!token.transferFrom(from, address(this), amount)) revert TransferFailed();
    }

    function _push(address to, uint256 amount) internal {
        if (!token.transfer(to, amount)) revert TransferFailed();
    }
}
