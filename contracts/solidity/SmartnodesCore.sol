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

    /// @notice Everything the contract is configured with. Fixed at deployment; every field
    /// is bounded by the constructor (see `_checkParams`).
    struct Params {
        /// Seconds from the last execution until proposals for the next epoch open.
        uint64 epochDuration;
        /// Seconds a proposer round lasts; a new set of proposers is drawn each round.
        uint64 roundDuration;
        /// Proposers drawn per round (capped by the validator count).
        uint32 proposersPerRound;
        /// A proposal executes when `voteStake * denominator > activeStake * numerator`.
        uint32 thresholdNumerator;
        uint32 thresholdDenominator;
        /// Upper bound on the validator set (active and pending), which bounds every loop
        /// over it.
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
        /// Stake, slashing, vesting, the validator set and escrow bounds (issue 16).
        Economics econ;
        address treasury;
    }

    /// @notice The part of `Params` that makes cheating cost more than it pays.
    struct Economics {
        /// SNO a worker stakes; slashed when a fraud proof against it executes.
        uint256 minWorkerCollateral;
        /// Share of a slashed worker stake paid to the voters of the summary that carried
        /// the fraud proof; the rest goes to the treasury.
        uint16 slashProverBps;
        /// A worker reward of epoch `e` vests (becomes claimable) with the execution of epoch
        /// `e + W`; a worker blacklisted by it or earlier forfeits it.
        uint32 vestingEpochs;
        /// Epochs after vesting during which a reward can be claimed; then anyone may sweep
        /// what is left of that epoch (unclaimed and forfeited) to the treasury.
        uint32 claimWindowEpochs;
        /// A validator registered in epoch `e` (after genesis) votes from epoch
        /// `e + activationEpochs` on.
        uint32 activationEpochs;
        /// Stake that may become active in one epoch, in basis points of the active stake
        /// (at least one minimum collateral).
        uint16 maxJoinBps;
        /// Seconds without proposing or voting after which anyone may drop a validator
        /// from the active set (its stake unlocks normally; it is not slashed).
        uint64 idleTimeout;
        /// Seconds after a job's deadline after which its user may reclaim an escrow that
        /// no executed epoch released or refunded.
        uint64 jobGracePeriod;
        /// Escrow held for jobs never exceeds this share of the active validator stake, in
        /// basis points: whoever buys a majority of the stake locks more than it can release.
        uint16 maxEscrowBps;
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
        /// Sum of the escrowed payments of `releasedJobs`; moved from escrow into this
        /// epoch's reward pot.
        uint256 releasedPayments;
        /// Root over worker reward leaves.
        bytes32 workerRewardRoot;
        /// Sum of all worker reward leaves: claims of this epoch can never exceed it.
        uint256 workerRewardTotal;
        /// Root over the full worker reputation table after this epoch.
        bytes32 reputationRoot;
        BlacklistEntry[] blacklist;
        address[] removeValidators;
        /// Keys (`jobKey(user, jobId)`) of the completed jobs whose escrow this epoch
        /// releases; each leaves escrow once (at most `MAX_RELEASED_PER_EPOCH`).
        bytes32[] releasedJobs;
    }

    struct Registration {
        /// keccak256 of the libp2p peer id of the account's own secp256k1 key.
        bytes32 nodeKeyHash;
        uint256 collateral;
        uint64 unlockAt;
        bool active;
        /// Validators: the first epoch in which it votes (0 for other roles).
        uint64 activeFrom;
    }

    enum JobState {
        None,
        Escrowed,
        Refunded,
        Released
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
        bool swept;
    }

    uint8 public constant RESULT_COMPLETED = 1;
    uint8 public constant RESULT_FAILED = 2;
    uint8 public constant RESULT_EXPIRED = 3;
    uint256 public constant MAX_BLACKLIST_PER_EPOCH = 256;
    uint256 public constant MAX_RELEASED_PER_EPOCH = 256;
    /// Bounds the emission loop: from this era on the emission is the tail.
    uint256 public constant MAX_ERAS = 256;
    /// Bounds of the parameters (see `_checkParams`).
    uint256 public constant MAX_VALIDATORS = 256;
    uint256 public constant MAX_DURATION = 10 * 365 days;
    uint256 public constant MAX_AMOUNT = 1e27; // one billion SNO
    uint256 public constant MAX_EPOCH_COUNT = 1_000_000;
    uint16 internal constant BPS = 10_000;

    // ------------------------------------------------------------------ state

    SmartnodesToken public immutable token;
    Params internal _params;

    mapping(address => Registration)[3] internal _registrations;
    /// Validators that vote in the current epoch.
    address[] internal _validatorSet;
    /// index + 1 into `_validatorSet`; 0 when absent
    mapping(address => uint256) internal _validatorIndex;
    /// Validators registered and waiting for their activation epoch.
    address[] internal _pendingValidators;
    /// Total collateral of `_validatorSet`: the denominator of the threshold. Joins only
    /// take effect when an epoch opens, so during an epoch this is the stake at its opening
    /// less whoever left since.
    uint256 public activeStake;
    /// Collateral scheduled to become active in each epoch (the join bound).
    mapping(uint256 => uint256) public joiningStake;
    /// Last time each validator proposed or voted (or became active).
    mapping(address => uint64) public lastActiveAt;
    /// The epoch whose execution blacklisted an account (0: never).
    mapping(address => uint256) public blacklistedIn;
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
        bytes32 indexed jobKey, address indexed user, bytes32 jobId, uint256 payment, uint64 deadline, uint256 epoch
    );
    event JobRefunded(bytes32 indexed jobKey, address indexed user, uint256 amount, uint8 result);
    event JobReleased(bytes32 indexed jobKey, uint256 amount, uint256 indexed epoch);
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
    event Slashed(Role indexed role, address indexed account, uint256 amount, uint256 toVoters, uint256 indexed epoch);
    event ValidatorRemoved(address indexed validator, uint256 indexed epoch);
    event ValidatorActivated(address indexed validator, uint256 indexed epoch);
    event ValidatorDropped(address indexed validator, uint64 lastActiveAt);
    event RewardClaimed(uint256 indexed epoch, address indexed worker, uint256 amount);
    event RewardsSwept(uint256 indexed epoch, uint256 amount);

    // ------------------------------------------------------------------ errors

    error InvalidParams();
    error GenesisLengthMismatch();
    error BadNodeKey();
    error AlreadyRegistered(Role role, address account);
    error CollateralPending(Role role, address account);
    error NotRegistered(Role role, address account);
    error InsufficientCollateral(uint256 given, uint256 required);
    error AccountBlacklisted(address account);
    error ValidatorIsBanned(address account);
    error ValidatorSetFull();
    error JoinLimitReached(uint256 epoch, uint256 joining, uint256 limit);
    error NotIdle(address validator, uint64 idleAt);
    error NothingToWithdraw();
    error UnlockNotReady(uint64 unlockAt);
    error InvalidJob();
    error JobExists(bytes32 jobKey);
    error EscrowCapReached(uint256 escrowed, uint256 cap);
    error NotJobOwner(bytes32 jobKey, address caller);
    error JobNotEscrowed(bytes32 jobKey);
    error NotRefundable(uint8 result);
    error ResultBeforeRequest(uint256 epoch, uint256 requestedInEpoch);
    error ReclaimNotReady(uint256 reclaimableAt);
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
    error ReleaseMismatch(uint256 declared, uint256 listed);
    error RewardTotalTooHigh(uint256 total, uint256 workerPot);
    error TooManyEntries();
    error AlreadyClaimed();
    error NotVested(uint256 vestsWithEpoch);
    error Forfeited(uint256 blacklistedIn);
    error ClaimWindowClosed(uint256 epoch);
    error ClaimWindowOpen(uint256 sweepableAfterEpoch);
    error ClaimExceedsTotal(uint256 claimed, uint256 total);
    error TransferFailed();

    // ------------------------------------------------------------------ setup

    /// @param initialParams Fixed configuration (see `Params`), bounded by `_checkParams`.
    /// @param genesisHolders Accounts that receive the genesis SNO allocation.
    /// @param genesisAmounts Their amounts (same length).
    constructor(Params memory initialParams, address[] memory genesisHolders, uint256[] memory genesisAmounts) {
        _checkParams(initialParams);
        if (genesisHolders.length != genesisAmounts.length) revert GenesisLengthMismatch();
        _params = initialParams;
        token = new SmartnodesToken();
        for (uint256 i = 0; i < genesisHolders.length; ++i) {
            token.mint(genesisHolders[i], genesisAmounts[i]);
        }
        currentEpoch = 1;
        epochStartedAt = uint64(block.timestamp);
    }

    /// Every parameter within bounds: no overflow in the emission schedule, in timestamps or
    /// in epoch arithmetic, and no configuration in which stake does not outlive a vote.
    function _checkParams(Params memory p) internal pure {
        bool ok = p.thresholdDenominator != 0 && p.thresholdNumerator < p.thresholdDenominator
            && uint256(p.thresholdNumerator) * 2 >= p.thresholdDenominator && p.epochDuration != 0
            && p.epochDuration <= MAX_DURATION && p.roundDuration != 0 && p.roundDuration <= MAX_DURATION
            && p.maxValidators != 0 && p.maxValidators <= MAX_VALIDATORS && p.proposersPerRound != 0
            && p.proposersPerRound <= p.maxValidators && p.unlockDelay >= p.epochDuration
            && p.unlockDelay <= MAX_DURATION && p.minValidatorCollateral != 0
            && p.minValidatorCollateral <= MAX_AMOUNT && p.minUserCollateral <= MAX_AMOUNT
            && p.econ.minWorkerCollateral != 0 && p.econ.minWorkerCollateral <= MAX_AMOUNT && p.initialEmission <= MAX_AMOUNT
            && p.tailEmission <= p.initialEmission && p.epochsPerEra != 0 && p.epochsPerEra <= MAX_EPOCH_COUNT
            && p.eraDecayBps <= BPS && uint256(p.workerBps) + p.validatorBps <= BPS && p.econ.slashProverBps <= BPS
            && p.econ.vestingEpochs != 0 && p.econ.vestingEpochs <= MAX_EPOCH_COUNT && p.econ.claimWindowEpochs != 0
            && p.econ.claimWindowEpochs <= MAX_EPOCH_COUNT && p.econ.activationEpochs != 0
            && p.econ.activationEpochs <= MAX_EPOCH_COUNT && p.econ.maxJoinBps != 0 && p.econ.maxJoinBps <= BPS
            && p.econ.idleTimeout >= p.epochDuration && p.econ.idleTimeout <= MAX_DURATION
            && p.econ.jobGracePeriod >= p.epochDuration && p.econ.jobGracePeriod <= MAX_DURATION && p.econ.maxEscrowBps != 0
            && p.econ.maxEscrowBps <= BPS && p.treasury != address(0);
        if (!ok) revert InvalidParams();
    }

    // ------------------------------------------------------------------ registry

    /// @notice Register the caller as a user, locking `collateral` SNO (approve it first).
    /// `nodePublicKey` is the caller's own uncompressed secp256k1 public key (64 bytes, x||y):
    /// see `_register`.
    function registerUser(bytes calldata nodePublicKey, uint256 collateral) external {
        if (collateral < _params.minUserCollateral) {
            revert InsufficientCollateral(collateral, _params.minUserCollateral);
        }
        _register(Role.User, nodePublicKey, collateral);
    }

    /// @notice Register the caller as a worker, staking `collateral` SNO. The stake is
    /// slashed when a fraud proof against the worker executes; a blacklisted address can
    /// never register as a worker again.
    function registerWorker(bytes calldata nodePublicKey, uint256 collateral) external {
        if (collateral < _params.econ.minWorkerCollateral) {
            revert InsufficientCollateral(collateral, _params.econ.minWorkerCollateral);
        }
        _register(Role.Worker, nodePublicKey, collateral);
    }

    /// @notice Register the caller as a validator, locking `collateral` SNO. Before the first
    /// execution (genesis) a validator is active at once; after it, it votes from epoch
    /// `currentEpoch + activationEpochs` on, and the stake activating in one epoch is
    /// bounded by `maxJoinBps` of the active stake (at least one minimum collateral).
    function registerValidator(bytes calldata nodePublicKey, uint256 collateral) external {
        if (collateral < _params.minValidatorCollateral) {
            revert InsufficientCollateral(collateral, _params.minValidatorCollateral);
        }
        if (validatorBanned[msg.sender]) revert ValidatorIsBanned(msg.sender);
        if (_validatorSet.length + _pendingValidators.length >= _params.maxValidators) revert ValidatorSetFull();
        Registration storage r = _register(Role.Validator, nodePublicKey, collateral);
        if (lastSummaryHash == bytes32(0)) {
            r.activeFrom = 1;
            _activate(msg.sender, collateral);
        } else {
            uint256 from = currentEpoch + _params.econ.activationEpochs;
            uint256 limit = activeStake * _params.econ.maxJoinBps / BPS;
            if (limit < _params.minValidatorCollateral) limit = _params.minValidatorCollateral;
            uint256 joining = joiningStake[from] + collateral;
            if (joining > limit) revert JoinLimitReached(from, joining, limit);
            joiningStake[from] = joining;
            r.activeFrom = uint64(from);
            _pendingValidators.push(msg.sender);
        }
    }

    /// One node key per account, proven: the node key is the account's own secp256k1 key.
    /// `nodePublicKey` must hash to `msg.sender` (so only the key's owner can present it),
    /// and the registration records `keccak256(peerId)` of the libp2p secp256k1 identity of
    /// that key, which the node uses on the network. A second account cannot register the
    /// same node key, and a blacklisted account's node key stays blacklisted with it.
    function _register(Role role, bytes calldata nodePublicKey, uint256 collateral)
        internal
        returns (Registration storage r)
    {
        bytes32 nodeKeyHash = nodeKeyHashOf(nodePublicKey);
        if (address(uint160(uint256(keccak256(nodePublicKey)))) != msg.sender) revert BadNodeKey();
        if (role != Role.User && blacklistedIn[msg.sender] != 0) revert AccountBlacklisted(msg.sender);
        r = _registrations[uint8(role)][msg.sender];
        if (r.active) revert AlreadyRegistered(role, msg.sender);
        if (r.collateral != 0) revert CollateralPending(role, msg.sender);
        r.nodeKeyHash = nodeKeyHash;
        r.collateral = collateral;
        r.unlockAt = 0;
        r.active = true;
        if (collateral != 0) _pull(msg.sender, collateral);
        emit Registered(role, msg.sender, nodeKeyHash, collateral);
    }

    /// @notice `keccak256` of the libp2p peer id of a secp256k1 public key (64 bytes, x||y):
    /// the identity multihash of its protobuf encoding, `00 25 08 02 12 21 || compressed`.
    function nodeKeyHashOf(bytes calldata nodePublicKey) public pure returns (bytes32) {
        if (nodePublicKey.length != 64) revert BadNodeKey();
        bytes1 prefix = uint8(nodePublicKey[63]) & 1 == 0 ? bytes1(0x02) : bytes1(0x03);
        return keccak256(abi.encodePacked(bytes6(0x002508021221), prefix, nodePublicKey[:32]));
    }

    /// @notice Leave a role. The registration stops counting at once (a validator leaves the
    /// set and can no longer propose or vote); its collateral can be withdrawn after
    /// `unlockDelay`, and stays slashable until then.
    function requestUnlock(Role role) external {
        Registration storage r = _registrations[uint8(role)][msg.sender];
        if (!r.active) revert NotRegistered(role, msg.sender);
        uint64 unlockAt = uint64(block.timestamp) + _params.unlockDelay;
        r.active = false;
        r.unlockAt = unlockAt;
        if (role == Role.Validator) _leaveSet(msg.sender, r);
        // Nothing locked (a user with a zero minimum): nothing to wait for.
        if (r.collateral == 0) delete _registrations[uint8(role)][msg.sender];
        emit UnlockRequested(role, msg.sender, unlockAt);
    }

    /// @notice Drop a validator that has neither proposed nor voted for `idleTimeout`
    /// seconds: idle seats cannot stall the threshold for longer than that. Anyone may call
    /// it. The validator is not slashed; its collateral unlocks as after `requestUnlock`.
    function dropIdle(address validator) external {
        if (_validatorIndex[validator] == 0) revert NotValidator(validator);
        uint64 idleAt = lastActiveAt[validator] + _params.econ.idleTimeout;
        if (block.timestamp <= idleAt) revert NotIdle(validator, idleAt);
        Registration storage r = _registrations[uint8(Role.Validator)][validator];
        r.active = false;
        r.unlockAt = uint64(block.timestamp) + _params.unlockDelay;
        _leaveSet(validator, r);
        emit ValidatorDropped(validator, lastActiveAt[validator]);
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

    /// @notice The storage key of `user`'s job `jobId`: job ids are namespaced by their user,
    /// so nobody can take another user's id first.
    function jobKey(address user, bytes32 jobId) public pure returns (bytes32) {
        return keccak256(abi.encode(user, jobId));
    }

    /// @notice Escrow `payment` SNO for job `jobId` (approve it first). Only active users; the
    /// total escrow stays within `maxEscrowBps` of the active validator stake.
    function requestJob(bytes32 jobId, uint256 payment, uint64 deadline) external {
        if (!_registrations[uint8(Role.User)][msg.sender].active) revert NotRegistered(Role.User, msg.sender);
        if (
            jobId == bytes32(0) || payment == 0 || payment > MAX_AMOUNT || deadline <= block.timestamp
                || deadline > block.timestamp + MAX_DURATION
        ) revert InvalidJob();
        bytes32 key = jobKey(msg.sender, jobId);
        Job storage j = _jobs[key];
        if (j.state != JobState.None) revert JobExists(key);
        j.user = msg.sender;
        j.deadline = deadline;
        j.state = JobState.Escrowed;
        j.payment = payment;
        j.requestedInEpoch = currentEpoch;
        uint256 escrowed = totalEscrowed + payment;
        uint256 cap = activeStake * _params.econ.maxEscrowBps / BPS;
        if (escrowed > cap) revert EscrowCapReached(escrowed, cap);
        totalEscrowed = escrowed;
        _pull(msg.sender, payment);
        emit JobRequested(key, msg.sender, jobId, payment, deadline, currentEpoch);
    }

    /// @notice Refund a job that an executed epoch, at or after the one it was requested in,
    /// recorded as failed or expired. Only the job's user; only while still escrowed (a
    /// released job never comes back).
    function refundJob(bytes32 jobId, uint256 epoch, uint8 result, bytes32[] calldata proof) external {
        bytes32 key = jobKey(msg.sender, jobId);
        Job storage j = _escrowedJobOf(key);
        if (result != RESULT_FAILED && result != RESULT_EXPIRED) revert NotRefundable(result);
        if (epoch < j.requestedInEpoch) revert ResultBeforeRequest(epoch, j.requestedInEpoch);
        EpochRecord storage e = _epochs[epoch];
        if (e.executedAt == 0) revert EpochNotExecuted(epoch);
        bytes32 leaf = keccak256(abi.encodePacked(key, result, epoch));
        if (!MerkleProof.verifyCalldata(proof, e.jobResultsRoot, leaf)) revert InvalidProof();
        _refund(key, j, result);
    }

    /// @notice Take back the escrow of a job nobody reported: `jobGracePeriod` after its
    /// deadline, a job still escrowed (neither released nor refunded) returns to its user.
    function reclaimJob(bytes32 jobId) external {
        bytes32 key = jobKey(msg.sender, jobId);
        Job storage j = _escrowedJobOf(key);
        uint256 reclaimableAt = uint256(j.deadline) + _params.econ.jobGracePeriod;
        if (block.timestamp <= reclaimableAt) revert ReclaimNotReady(reclaimableAt);
        _refund(key, j, RESULT_EXPIRED);
    }

    function _escrowedJobOf(bytes32 key) internal view returns (Job storage j) {
        j = _jobs[key];
        if (j.user != msg.sender) revert NotJobOwner(key, msg.sender);
        if (j.state != JobState.Escrowed) revert JobNotEscrowed(key);
    }

    function _refund(bytes32 key, Job storage j, uint8 result) internal {
        j.state = JobState.Refunded;
        uint256 amount = j.payment;
        totalEscrowed -= amount;
        _push(msg.sender, amount);
        emit JobRefunded(key, msg.sender, amount, result);
    }

    // ------------------------------------------------------------------ epochs

    /// @notice Propose summary `s` for the current epoch. Only a proposer drawn for the current
    /// round; the proposal counts as the proposer's vote. The summary is checked against the
    /// rules execution enforces (bounded lists, released jobs escrowed and summing to
    /// `releasedPayments`, the workers' total within their share), so votes are never spent
    /// on a proposal that cannot execute. Only its hash is stored; the full summary stays in
    /// this call's calldata for anyone to read, and must be supplied again to
    /// `executeEpoch`. A proposer that already voted in an earlier round moves its vote to
    /// its proposal.
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
        lastActiveAt[msg.sender] = uint64(block.timestamp);
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
        lastActiveAt[msg.sender] = uint64(block.timestamp);
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
    /// summary's hash must be a proposal whose still-active voters hold more than the
    /// threshold of the active stake.
    function executeEpoch(EpochSummary calldata s) external {
        _requireValidator();
        uint256 epoch = currentEpoch;
        if (s.epoch != epoch) revert WrongEpoch(s.epoch, epoch);
        bytes32 hash = keccak256(abi.encode(s));
        Proposal storage p = _proposals[epoch][hash];
        if (p.proposer == address(0)) revert UnknownProposal(epoch, hash);

        // Votes (and their stake) of validators that are still active. Bounded by
        // maxValidators.
        address[] memory voters = p.voters;
        uint256 votes = 0;
        uint256 stake = 0;
        for (uint256 i = 0; i < voters.length; ++i) {
            if (_validatorIndex[voters[i]] != 0) {
                stake += _registrations[uint8(Role.Validator)][voters[i]].collateral;
                voters[votes++] = voters[i];
            }
        }
        if (!_passes(stake, activeStake)) revert ThresholdNotReached(stake, activeStake);

        currentEpoch = epoch + 1;
        epochStartedAt = uint64(block.timestamp);
        lastSummaryHash = hash;
        if (_releaseJobs(s.releasedJobs, epoch) != s.releasedPayments) {
            revert ReleaseMismatch(s.releasedPayments, _releaseTotalOf(s.releasedJobs));
        }
        _recordAndPay(s, hash, voters, votes);
        _applyBlacklist(s.blacklist, epoch, voters, votes);
        _applyRemovals(s.removeValidators, epoch);
        _activatePending(epoch + 1);
        _emitExecuted(s, hash);
    }

    /// Each listed job leaves escrow once: marked released; returns their payments.
    function _releaseJobs(bytes32[] calldata keys, uint256 epoch) internal returns (uint256 total) {
        for (uint256 i = 0; i < keys.length; ++i) {
            Job storage j = _jobs[keys[i]];
            if (j.state != JobState.Escrowed) revert JobNotEscrowed(keys[i]);
            j.state = JobState.Released;
            total += j.payment;
            emit JobReleased(keys[i], j.payment, epoch);
        }
        totalEscrowed -= total;
    }

    /// Record the epoch and pay its pot: emission + released payments, split between the
    /// workers' committed total (kept here for claims), the active voters and the treasury.
    function _recordAndPay(EpochSummary calldata s, bytes32 hash, address[] memory voters, uint256 votes) internal {
        uint256 epoch = s.epoch;
        uint256 released = s.releasedPayments;
        uint256 emission = emissionAt(epoch);
        uint256 pot = emission + released;
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
        e.releasedPayments = released;
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

    function _emitExecuted(EpochSummary calldata s, bytes32 hash) internal {
        emit EpochExecuted(
            s.epoch,
            hash,
            s.jobResultsRoot,
            s.workerRewardRoot,
            s.workerRewardTotal,
            s.reputationRoot,
            _epochs[s.epoch].emission,
            s.releasedPayments
        );
    }

    /// The payments the listed jobs were escrowed with (for the error message).
    function _releaseTotalOf(bytes32[] calldata keys) internal view returns (uint256 total) {
        for (uint256 i = 0; i < keys.length; ++i) {
            total += _jobs[keys[i]].payment;
        }
    }

    /// Blacklist each worker and slash its stake (active or still unlocking): a
    /// `slashProverBps` share to the voters that executed the fraud proof, the rest to the
    /// treasury. Its unvested rewards are forfeited (see `claim`).
    function _applyBlacklist(BlacklistEntry[] calldata entries, uint256 epoch, address[] memory voters, uint256 votes)
        internal
    {
        for (uint256 i = 0; i < entries.length; ++i) {
            address w = entries[i].worker;
            if (blacklistedIn[w] != 0) continue;
            blacklistedIn[w] = epoch;
            Registration storage r = _registrations[uint8(Role.Worker)][w];
            uint256 stake = r.collateral;
            delete _registrations[uint8(Role.Worker)][w];
            emit Blacklisted(w, entries[i].evidence, epoch);
            if (stake == 0) continue;
            uint256 perVoter = stake * _params.econ.slashProverBps / BPS / votes;
            for (uint256 k = 0; k < votes; ++k) {
                _push(voters[k], perVoter);
            }
            _push(_params.treasury, stake - perVoter * votes);
            emit Slashed(Role.Worker, w, stake, perVoter * votes, epoch);
        }
    }

    /// Remove each validator (active, pending or unlocking), ban its address and slash its
    /// whole collateral to the treasury: nobody, the majority that removed it included,
    /// profits from a removal.
    function _applyRemovals(address[] calldata removed, uint256 epoch) internal {
        for (uint256 i = 0; i < removed.length; ++i) {
            address v = removed[i];
            if (validatorBanned[v]) continue;
            validatorBanned[v] = true;
            Registration storage r = _registrations[uint8(Role.Validator)][v];
            uint256 stake = r.collateral;
            if (r.active) _leaveSet(v, r);
            delete _registrations[uint8(Role.Validator)][v];
            emit ValidatorRemoved(v, epoch);
            if (stake != 0) {
                _push(_params.treasury, stake);
                emit Slashed(Role.Validator, v, stake, 0, epoch);
            }
        }
    }

    /// Validators whose activation epoch has come join the set.
    function _activatePending(uint256 epoch) internal {
        uint256 i = 0;
        while (i < _pendingValidators.length) {
            address v = _pendingValidators[i];
            Registration storage r = _registrations[uint8(Role.Validator)][v];
            if (r.activeFrom <= epoch) {
                _removePending(i);
                _activate(v, r.collateral);
                emit ValidatorActivated(v, epoch);
            } else {
                ++i;
            }
        }
        delete joiningStake[epoch];
    }

    function _activate(address v, uint256 collateral) internal {
        _validatorSet.push(v);
        _validatorIndex[v] = _validatorSet.length;
        activeStake += collateral;
        lastActiveAt[v] = uint64(block.timestamp);
    }

    /// Take `v` out of the active set, or out of the pending list (freeing its join slot).
    function _leaveSet(address v, Registration storage r) internal {
        uint256 idx = _validatorIndex[v];
        if (idx != 0) {
            uint256 last = _validatorSet.length;
            if (idx != last) {
                address moved = _validatorSet[last - 1];
                _validatorSet[idx - 1] = moved;
                _validatorIndex[moved] = idx;
            }
            _validatorSet.pop();
            delete _validatorIndex[v];
            activeStake -= r.collateral;
            return;
        }
        for (uint256 i = 0; i < _pendingValidators.length; ++i) {
            if (_pendingValidators[i] == v) {
                _removePending(i);
                if (r.activeFrom > currentEpoch) joiningStake[r.activeFrom] -= r.collateral;
                return;
            }
        }
    }

    function _removePending(uint256 i) internal {
        uint256 last = _pendingValidators.length - 1;
        if (i != last) _pendingValidators[i] = _pendingValidators[last];
        _pendingValidators.pop();
    }

    /// @notice Claim the caller's worker reward for `epoch`. The leaf binds caller, amount and
    /// epoch; each leaf pays once, and an epoch never pays more than its committed total.
    /// A reward vests with the execution of epoch `epoch + vestingEpochs`; a worker
    /// blacklisted by that execution or an earlier one forfeits it (rewards that vested
    /// before stay claimable).
    /// Claims close `claimWindowEpochs` after vesting; the rest is swept to the treasury.
    function claim(uint256 epoch, uint256 amount, bytes32[] calldata proof) external {
        EpochRecord storage e = _epochs[epoch];
        if (e.executedAt == 0) revert EpochNotExecuted(epoch);
        bytes32 leaf = keccak256(abi.encodePacked(msg.sender, amount, epoch));
        if (rewardLeafClaimed[leaf]) revert AlreadyClaimed();
        if (!MerkleProof.verifyCalldata(proof, e.workerRewardRoot, leaf)) revert InvalidProof();
        uint256 vestsWith = epoch + _params.econ.vestingEpochs;
        uint256 caught = blacklistedIn[msg.sender];
        if (caught != 0 && caught <= vestsWith) revert Forfeited(caught);
        if (currentEpoch <= vestsWith) revert NotVested(vestsWith);
        if (e.swept) revert ClaimWindowClosed(epoch);
        uint256 claimed = e.claimed + amount;
        if (claimed > e.workerRewardTotal) revert ClaimExceedsTotal(claimed, e.workerRewardTotal);
        rewardLeafClaimed[leaf] = true;
        e.claimed = claimed;
        _push(msg.sender, amount);
        emit RewardClaimed(epoch, msg.sender, amount);
    }

    /// @notice Once `epoch`'s claim window has closed (epoch `epoch + vestingEpochs +
    /// claimWindowEpochs` executed), send what its workers did not claim (forfeited or
    /// never claimed) to the treasury. Anyone may call it; once per epoch.
    function sweepRewards(uint256 epoch) external {
        EpochRecord storage e = _epochs[epoch];
        if (e.executedAt == 0) revert EpochNotExecuted(epoch);
        uint256 closesWith = epoch + _params.econ.vestingEpochs + _params.econ.claimWindowEpochs;
        if (currentEpoch <= closesWith) revert ClaimWindowOpen(closesWith);
        if (e.swept) revert ClaimWindowClosed(epoch);
        e.swept = true;
        uint256 amount = e.workerRewardTotal - e.claimed;
        if (amount != 0) _push(_params.treasury, amount);
        emit RewardsSwept(epoch, amount);
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

    /// @notice A job by its key (`jobKey(user, jobId)`).
    function job(bytes32 key) external view returns (Job memory) {
        return _jobs[key];
    }

    /// @notice Validators registered and waiting for their activation epoch.
    function pendingValidators() external view returns (address[] memory) {
        return _pendingValidators;
    }

    /// @notice Whether `account` was blacklisted by an executed epoch.
    function blacklisted(address account) external view returns (bool) {
        return blacklistedIn[account] != 0;
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

    /// @notice Whether voters holding `stake` pass the threshold over `total` active stake.
    function thresholdPasses(uint256 stake, uint256 total) external view returns (bool) {
        return _passes(stake, total);
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
        if (
            s.blacklist.length > MAX_BLACKLIST_PER_EPOCH || s.removeValidators.length > _params.maxValidators
                || s.releasedJobs.length > MAX_RELEASED_PER_EPOCH
        ) {
            revert TooManyEntries();
        }
        // Released jobs: strictly ascending keys (so none twice), each still escrowed,
        // summing to the declared total.
        uint256 released = 0;
        bytes32 previous = bytes32(0);
        for (uint256 i = 0; i < s.releasedJobs.length; ++i) {
            bytes32 key = s.releasedJobs[i];
            if (key <= previous || _jobs[key].state != JobState.Escrowed) revert JobNotEscrowed(key);
            previous = key;
            released += _jobs[key].payment;
        }
        if (released != s.releasedPayments) revert ReleaseMismatch(s.releasedPayments, released);
        uint256 workerPot = (emissionAt(s.epoch) + s.releasedPayments) * _params.workerBps / BPS;
        if (s.workerRewardTotal > workerPot) revert RewardTotalTooHigh(s.workerRewardTotal, workerPot);
    }

    /// The current round of proposals that opened at `opensAt` (not in the future).
    function _roundSince(uint64 opensAt) internal view returns (uint32) {
        return uint32((block.timestamp - opensAt) / _params.roundDuration);
    }

    function _passes(uint256 stake, uint256 total) internal view returns (bool) {
        return stake != 0 && stake * _params.thresholdDenominator > total * _params.thresholdNumerator;
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

    function _pull(address from, uint256 amount) internal {
        if (!token.transferFrom(from, address(this), amount)) revert TransferFailed();
    }

    function _push(address to, uint256 amount) internal {
        if (!token.transfer(to, amount)) revert TransferFailed();
    }
}
